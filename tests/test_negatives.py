"""No-answer training: SQuAD 2.0 `is_impossible` questions, the `data negatives` tool, continued
training from a checkpoint (`--init-from`) and weight snapshots along the way."""

import json

import torch
from conftest import SAMPLE
from safetensors.torch import load_file
from test_train import tiny_cfg

from spokenqa.cli import main
from spokenqa.config import preset
from spokenqa.corpus.negatives import add_negatives
from spokenqa.data import load_squad
from spokenqa.features import prepare_train_features
from spokenqa.train import train

ARTICLE = {"title": "bridges", "paragraphs": [
    {"context": "the old bridge was built in nineteen thirty two by the city.",
     "qas": [{"id": "q1", "question": "when was the old bridge built",
              "answers": [{"text": "nineteen thirty two", "answer_start": 28}]}]},
    {"context": "the new bridge over the river opened to traffic last spring.", "qas": []},
    {"context": "a ferry crossed the river before any bridge was there.", "qas": []},
    {"context": "in nineteen thirty two the bridge was also painted.", "qas": []},
]}


def test_negative_goes_to_the_most_similar_paragraph_without_the_answer():
    data, stats = add_negatives({"data": [ARTICLE]}, rate=1.0, seed=0)
    assert stats.questions == 1 and stats.negatives == 1 and stats.no_candidate == 0
    paragraphs = data["data"][0]["paragraphs"]
    # paragraph 3 shares more words but holds the answer text; paragraph 1 shares "bridge"
    assert paragraphs[3]["qas"] == [] and paragraphs[2]["qas"] == []
    (neg,) = paragraphs[1]["qas"]
    assert neg == {"id": "q1-neg", "question": "when was the old bridge built", "answers": [],
                   "is_impossible": True}
    assert ARTICLE["paragraphs"][1]["qas"] == [], "the input is not changed"
    assert add_negatives({"data": [ARTICLE]}, rate=0.0, seed=0)[1].negatives == 0


def test_impossible_questions_load_for_training_and_label_every_window_at_cls(tmp_path, tokenizer):
    data, _ = add_negatives({"data": [ARTICLE]}, rate=1.0, seed=0)
    path = tmp_path / "neg.json"
    path.write_text(json.dumps({"version": "2.0", **data}))
    examples, stats = load_squad(path)
    assert [e.id for e in examples] == ["q1"] and stats.questions_without_answers == 1
    examples, stats = load_squad(path, keep_impossible=True)
    assert [e.id for e in examples] == ["q1", "q1-neg"] and stats.questions_impossible == 1
    assert examples[1].answers == ()
    cfg = preset("cpu").replace(max_length=48, doc_stride=16, max_question_tokens=16)
    feats, align = prepare_train_features(examples, tokenizer, cfg)
    negative = [i for i, e in enumerate(feats.example_index) if e == 1]
    assert negative and all(feats.start_positions[i] == feats.end_positions[i] == 0 for i in negative)
    assert align.no_answer_windows == len(negative)
    assert align.answers == 1 and align.aligned == 1, "the no-answer question is not a failed alignment"


def test_data_negatives_command(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["data", "negatives", str(SAMPLE), str(out), "--rate", "1", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "questions copied onto a paragraph without their answer" in printed
    examples, stats = load_squad(out, keep_impossible=True)
    assert stats.questions_impossible > 0
    for e in examples:
        if not e.answers:  # the copy's question, over a context that lacks every answer text
            original = next(x for x in examples if x.id == e.id.removesuffix("-neg"))
            assert e.question == original.question and e.context != original.context
            assert not any(a.text in e.context for a in original.answers)
    assert main(["data", "negatives", str(SAMPLE), str(out), "--rate", "2"]) == 2


def test_init_from_continues_a_checkpoint_and_keeps_snapshots(tmp_path, tiny_model_dir):
    first = train(tiny_cfg(tiny_model_dir, tmp_path / "first", epochs=1))
    assert first["status"] == "finished"
    start = load_file(str(tmp_path / "first" / "best" / "model.safetensors"))
    # no steps at learning rate ~0: the continued run starts from exactly the checkpoint's weights
    cfg = tiny_cfg(tiny_model_dir, tmp_path / "cont", epochs=1, init_from=str(tmp_path / "first" / "best"),
                   snapshot_every=2, learning_rate=1e-30, baseline=True)
    summary = train(cfg)
    history = json.loads((tmp_path / "cont" / "history.json").read_text())
    first_scores = json.loads((tmp_path / "first" / "history.json").read_text())[-1]["scores"]
    assert history[0]["scores"]["official"] == first_scores["official"], "epoch 0 is the checkpoint"
    snaps = sorted((tmp_path / "cont" / "snapshots").iterdir())
    assert [s.name for s in snaps] == [f"step_{n}" for n in range(2, summary["steps"] + 1, 2)]
    weights = load_file(str(snaps[0] / "model.safetensors"))
    assert all(torch.allclose(weights[k], start[k], atol=1e-6) for k in start)
    bad = tiny_cfg(tiny_model_dir, tmp_path / "bad", init_from=str(tmp_path / "first" / "best"), head="reference")
    assert main(["train", "--model", str(tiny_model_dir), "--out", str(tmp_path / "bad"), "--head", "reference",
                 "--init-from", str(tmp_path / "first" / "best")]) == 2
    assert bad.init_from


def test_average_of_snapshots_is_the_mean_of_their_weights(tmp_path, tiny_model_dir, capsys):
    train(tiny_cfg(tiny_model_dir, tmp_path / "run", epochs=1, snapshot_every=2))
    snaps = sorted((tmp_path / "run" / "snapshots").iterdir())[-2:]
    assert main(["average", *map(str, snaps), "--out", str(tmp_path / "avg")]) == 0
    assert "the mean of 2 checkpoints' weights" in capsys.readouterr().out
    a, b = (load_file(str(s / "model.safetensors")) for s in snaps)
    mean = load_file(str(tmp_path / "avg" / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a), "two different snapshots"
    assert all(torch.allclose(mean[k], (a[k] + b[k]) / 2, atol=1e-7) for k in a)
    info = json.loads((tmp_path / "avg" / "spokenqa.json").read_text())["checkpoint"]
    assert info["averaged"] == [str(s) for s in snaps]
    assert main(["evaluate", "--checkpoint", str(tmp_path / "avg"), "--max-eval-examples", "2", "--backend", "torch"]) == 0
    assert main(["average", str(snaps[0]), "--out", str(tmp_path / "one")]) == 2
    assert "at least 2 checkpoints" in capsys.readouterr().err
