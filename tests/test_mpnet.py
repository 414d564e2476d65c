"""An MPNet encoder (all-mpnet-base-v2's architecture) through train, evaluate, export as
MPNetForQuestionAnswering (and ONNX) and QA.load, on a tiny random MPNet: MPNet has no token type
ids, its own special tokens (<s> ... </s></s> ... </s>) and position ids offset by the padding
index, so it exercises what a BERT encoder does not."""

import json

import numpy as np
import pytest
import torch
from conftest import SAMPLE

from spokenqa.checkpoint import load_checkpoint
from spokenqa.config import preset
from spokenqa.train import train


@pytest.fixture(scope="module")
def tiny_mpnet_dir(tmp_path_factory, tokenizer):
    """A 2-layer, 32-wide random MPNet with a WordPiece vocabulary: MPNet's special tokens around
    the shipped encoder's uncased vocabulary (all-mpnet-base-v2's is built the same way)."""
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-mpnet")
    bert_vocab = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    words = ["<s>", "<pad>", "</s>", "<unk>", *bert_vocab, "<mask>"]
    mp_tokenizer = MPNetTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    mp_tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=514, pad_token_id=1)
    MPNetModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def mpnet_run(tiny_mpnet_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mpnet-run")
    cfg = preset("cpu").replace(model=str(tiny_mpnet_dir), train_files=[str(SAMPLE)], eval_file=str(SAMPLE),
                                out_dir=str(out), epochs=2, train_batch_size=4, eval_batch_size=8,
                                learning_rate=3e-3, warmup_ratio=0.0, mixed_precision="no")
    return out, train(cfg)


def test_mpnet_trains_and_evaluates(mpnet_run, capsys):
    from spokenqa.cli import main

    out, summary = mpnet_run
    assert summary["status"] == "finished" and summary["epochs_done"] == 2
    history = json.loads((out / "history.json").read_text())
    assert history[1]["train_loss"] < history[0]["train_loss"]
    model, tokenizer, _ = load_checkpoint(out / "best")
    assert type(model.encoder).__name__ == "MPNetModel" and "token_type_ids" not in tokenizer.model_input_names
    assert main(["evaluate", "--checkpoint", str(out / "best"), "--data", str(SAMPLE), "--backend", "torch"]) == 0
    assert json.loads(capsys.readouterr().out)["official"]["questions"] == 27


def test_mpnet_exports_as_mpnet_for_question_answering(mpnet_run, tmp_path):
    """The exported folder is transformers' own MPNetForQuestionAnswering with spokenqa's logits,
    and spokenqa answers from it (torch and ONNX Runtime, the graph fused where the fusions fit
    MPNet) as from the run's checkpoint."""
    from transformers import AutoModelForQuestionAnswering

    from spokenqa.export import export_checkpoint
    from spokenqa.qa import QA

    out, _ = mpnet_run
    hf = export_checkpoint(out / "best", tmp_path / "hf", dtype="fp32")
    theirs = AutoModelForQuestionAnswering.from_pretrained(hf).eval()
    assert type(theirs).__name__ == "MPNetForQuestionAnswering"
    ours, tokenizer, _ = load_checkpoint(out / "best")
    batch = tokenizer(["who built the bridge"], ["the old bridge was built by a local firm."], return_tensors="pt")
    with torch.no_grad():
        start, end = ours(batch["input_ids"], batch["attention_mask"])
        hf_out = theirs(**batch)
    np.testing.assert_allclose(start.numpy(), hf_out.start_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(end.numpy(), hf_out.end_logits.numpy(), atol=1e-5)
    context = "the old bridge was built in nineteen thirty two by a local firm."
    answers = {}
    for name, folder, backend in (("run", out / "best", "torch"), ("hf", hf, "torch"), ("onnx", hf, "onnx")):
        qa = QA.load(folder, backend=backend)
        result = qa.answer(["who built the bridge", "when was it built"], context=context)
        answers[name] = [(r.answers[0].text, r.answers[0].start) for r in result]
    assert answers["run"] == answers["hf"] == answers["onnx"] and all(t for t, _ in answers["run"])
    # MPNet's relative position bias keeps its attention unfused (measured with onnxscript 0.7);
    # BiasGelu is fused, and the answers above are that graph's
    assert "BiasGelu=" in qa.model.metadata["spokenqa.fused"]
