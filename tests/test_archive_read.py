"""spokenqa.archive.read: asking a whole archive. A real SQLite index of the built-in sample (five
SQuAD-format paragraphs) with the shipped sentence encoder, read by the shipped model; the CLI's
`ask --index`; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenqa.archive import index
from spokenqa.archive.calibrate import (
    Calibration,
    expected_calibration_error,
    fit_logistic,
    threshold_for,
    uncalibrated,
)
from spokenqa.archive.read import ArchiveQA, seconds
from spokenqa.cli import main
from spokenqa.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "spokenqa" / "sample" / "sample_spoken.json"
JSONL_TEXT = "the old bridge was built in nineteen thirty two. it was painted red in nineteen fifty."

pytestmark = pytest.mark.slow  # the shipped encoder and reader


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory) -> Path:
    """The sample's five paragraphs, and one transcript with word times (a `transcribe` line)."""
    folder = tmp_path_factory.mktemp("archive")
    words, pos, t = [], 0, 0.0
    for w in JSONL_TEXT.split(" "):
        words.append({"text": w.rstrip("."), "start_char": pos, "end_char": pos + len(w.rstrip(".")),
                      "start_s": round(t, 2), "end_s": round(t + 0.4, 2)})
        pos, t = pos + len(w) + 1, t + 0.5
    (folder / "talk.jsonl").write_text(json.dumps({"file": "/rec/talk.wav", "text": JSONL_TEXT, "duration": t,
                                                   "engine": "pocketsphinx", "words": words}) + "\n")
    path = folder / "sample.sqlite"
    index.build(path, [SAMPLE, folder / "talk.jsonl"], progress=False, threads=1)
    return path


@pytest.fixture(scope="module")
def qa():
    from spokenqa.qa import QA

    return QA.load()


@pytest.fixture(scope="module")
def archive(sample_index, qa):
    with ArchiveQA.open(sample_index, qa) as a:
        yield a


def test_answer_from_the_right_document_with_text_and_seconds(archive):
    result = archive.ask("who built the harbor lighthouse", top_k=2)[0]
    assert not result.abstained and len(result.answers) == 2
    best = result.answers[0]
    assert best.text == "thomas reed"
    assert best.document["path"] == f"{SAMPLE}#0/0" and best.document["title"] == "harbor lighthouse"
    assert best.passage["text"][best.start:best.end] == best.text
    assert 0.0 <= best.probability <= 1.0 and best.start_s is None  # a text document has no times
    assert best.probability >= result.answers[1].probability
    assert {"span", "no_answer", "margin", "rank", "fused", "bm25", "dense"} <= set(best.features)
    assert result.hits[0].passage.path == f"{SAMPLE}#0/0"
    payload = json.loads(json.dumps(result.to_dict()))
    assert set(payload) == {"question", "answers", "abstained", "threshold", "hits"}
    assert set(payload["answers"][0]) >= {"text", "probability", "start", "end", "start_s", "end_s", "document",
                                          "passage", "features"}

    timed = archive.ask("when was the old bridge painted red")[0].answers[0]
    assert timed.document["path"] == "/rec/talk.wav" and timed.text == "nineteen fifty"
    at = JSONL_TEXT.index("nineteen fifty")  # words every 0.5 s, 0.4 s long
    n = JSONL_TEXT[:at].count(" ")
    assert (timed.start_s, timed.end_s) == (pytest.approx(0.5 * n), pytest.approx(0.5 * (n + 1) + 0.4))


def test_the_shipped_calibration_is_the_shipped_readers(archive):
    from spokenqa.archive.calibrate import FILENAME, weights_sha256
    from spokenqa.checkpoint import RELEASE_MODEL

    cal = Calibration.load(RELEASE_MODEL / FILENAME)
    # a new shipped reader needs its own calibration: `spokenqa index calibrate --data VAL.json`
    assert cal.reader["sha256"] == weights_sha256(RELEASE_MODEL)
    assert archive.calibration.path == str(RELEASE_MODEL / FILENAME)
    assert 0.0 < cal.threshold < 1.0 and cal.fusion in ("rrf", "score") and 0.0 <= cal.weight <= 1.0
    assert "test" not in Path(cal.fit["data"]).name  # fit on validation data, never the test set


def test_a_question_whose_answer_is_absent_is_refused(archive):
    present, absent = archive.ask(["who built the harbor lighthouse",
                                   "who won the football world cup in nineteen ninety eight"])
    assert not present.abstained and present.answers[0].text == "thomas reed"
    assert absent.abstained and absent.answers == [] and absent.hits  # passages read, none held it
    assert absent.threshold == archive.calibration.threshold


def test_a_batch_answers_as_one_by_one(archive):
    questions = ["how many eggs does the queen lay a day", "when was the railway opened",
                 "who donated the old maps"]
    together = archive.ask(questions, passages=3)
    alone = [archive.ask(q, passages=3)[0] for q in questions]
    # ONNX Runtime int8 (`auto` on a CPU without native bf16) quantises each batch's activations
    # with one scale, so a probability moves with the batch (by 0.015 here); fp32/bf16 do not
    tolerance = 0.05 if archive.qa.precision == "int8" else 1e-3
    for a, b in zip(together, alone, strict=True):
        assert [x.text for x in a.answers] == [x.text for x in b.answers]
        assert [x.document["path"] for x in a.answers] == [x.document["path"] for x in b.answers]
        assert a.answers[0].probability == pytest.approx(b.answers[0].probability, abs=tolerance)
    assert together[0].answers[0].text == "two thousand"


def test_modes_settings_and_bad_input(archive):
    for mode in ("bm25", "dense", "hybrid"):
        result = archive.ask("how tall is the lighthouse", mode=mode, passages=2)[0]
        assert len(result.hits) == 2 and result.answers[0].document["title"] == "harbor lighthouse"
        assert result.answers[0].features["dense"] is not None or mode == "bm25"
    assert archive.ask("?!", threshold=0.0)[0].abstained  # no words: no passage, nothing to read
    never = archive.ask("who built the lighthouse", threshold=1.0)[0]
    assert never.abstained and never.answers == [] and never.threshold == 1.0
    for bad, message in (({"passages": 0}, "passages"), ({"top_k": 0}, "top_k"), ({"threshold": 2}, "threshold"),
                         ({"mode": "x"}, "mode"), ({"weight": 3.0}, "weight")):
        with pytest.raises(ConfigError, match=message):
            archive.ask("who built it", **bad)
    with pytest.raises(ConfigError, match="question 1 is 501 characters"):
        archive.ask("x" * 501)


def test_open_errors(tmp_path, qa):
    with pytest.raises(ConfigError, match="no such index"):
        ArchiveQA.open(tmp_path / "none.sqlite", qa)
    (tmp_path / "text.sqlite").write_text("hello")
    with pytest.raises(DataError, match="not a SQLite database"):
        ArchiveQA.open(tmp_path / "text.sqlite", qa)
    (tmp_path / "cal.json").write_text('{"format": "other"}')
    with pytest.raises(DataError, match="not a spokenqa archive calibration"):
        Calibration.load(tmp_path / "cal.json")


def test_cli_ask_index(sample_index, capsys):
    argv = ["ask", "--index", str(sample_index), "--question", "who built the harbor lighthouse"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("Q: who built the harbor lighthouse\n  1. ") and "#0/0: thomas reed  (p=" in out
    assert main([*argv, "--threshold", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"][0]["abstained"] is True and payload["results"][0]["answers"] == []
    assert main([*argv, "--threshold", "1"]) == 0
    assert "not in this archive" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--index", "/nonexistent/a.sqlite"], "no such index"),
    (["--index", str(SAMPLE)], "not a SQLite database"),
    (["--index", "{index}", "--threshold", "1.5"], "--threshold must be in [0, 1]"),
    (["--index", "{index}", "--calibration", "/nonexistent.json"], "no such calibration file"),
    (["--index", "{index}", "--passages", "0"], "must be more than 0"),
])
def test_cli_ask_index_bad_input_is_one_line(sample_index, capsys, extra, message):
    argv = ["ask", "--question", "who built it", *(a.replace("{index}", str(sample_index)) for a in extra)]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err  # argparse: usage, then the line


def run(argv: list[str]) -> int:
    """main's exit status, argparse's usage errors (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


# --------------------------------------------------------------------------------------------
# calibration pieces (numpy only)


def test_logistic_fit_recovers_a_known_model_and_ece_of_calibrated_scores():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))
    y = rng.random(4000) < p
    model = fit_logistic(["a", "b"], x, y, l2=0.0)
    coef = np.array(model.coef) / np.array(model.scale)
    assert coef == pytest.approx([2.0, -1.0], abs=0.2)
    fitted = 1 / (1 + np.exp(-model.logit(x)))
    assert expected_calibration_error(fitted, y) < 0.03
    assert expected_calibration_error(np.full(4000, 0.99), y) > 0.3
    assert threshold_for(np.array([0.9, 0.8, 0.7, 0.1]), 0.75) == 0.7
    with pytest.raises(DataError, match="labels are all the same"):
        fit_logistic(["a"], x[:, :1], np.ones(4000))


def test_calibration_file_round_trip(tmp_path):
    cal = uncalibrated()
    cal.threshold, cal.fusion, cal.weight = 0.37, "score", 0.3
    cal.save(tmp_path / "c.json")
    back = Calibration.load(tmp_path / "c.json")
    assert back.to_dict() == cal.to_dict() and back.path == str(tmp_path / "c.json")


def test_seconds_of_a_span():
    words = [[0, 3, 0.0, 0.4], [4, 10, 0.5, 0.9], [11, 14, 1.0, 1.3]]
    assert seconds(words, 4, 14) == (0.5, 1.3)
    assert seconds(words, 5, 6) == (0.5, 0.9)
    assert seconds(words, 20, 22) is None


# --------------------------------------------------------------------------------------------
# evaluate --index, predict --index


@pytest.fixture(scope="module")
def mixed_questions(tmp_path_factory) -> Path:
    """The sample's lighthouse questions (their paragraph is in the archive) and two questions of
    a paragraph that is not (football)."""
    data = json.loads(SAMPLE.read_text())
    football = {"title": "football", "paragraphs": [{
        "context": "the football world cup of nineteen ninety eight was won by france who beat brazil three nil "
                   "in the final at the stade de france in saint denis.",
        "qas": [{"id": "f1", "question": "who won the football world cup in nineteen ninety eight",
                 "answers": [{"text": "france", "answer_start": 66}]},
                {"id": "f2", "question": "which team lost the world cup final three nil",
                 "answers": [{"text": "brazil", "answer_start": 81}]}]}]}
    path = tmp_path_factory.mktemp("questions") / "mixed.json"
    path.write_text(json.dumps({"version": "1.1", "data": [data["data"][0], football]}))
    return path


def test_cli_evaluate_index(sample_index, mixed_questions, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", "--index", str(sample_index), "--data", str(mixed_questions), "--out", str(out)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    lighthouse = len(json.loads(SAMPLE.read_text())["data"][0]["paragraphs"][0]["qas"])
    assert metrics["official"]["questions"] == lighthouse + 2
    assert set(metrics["retrieval"]) == {"recall@1", "recall@5", "recall@20"}
    # the football paragraph is not in the archive: its questions can never be found
    assert metrics["retrieval"]["recall@20"] == pytest.approx(lighthouse / (lighthouse + 2))
    assert metrics["answered"] + metrics["abstained"] == lighthouse + 2
    assert 0 < metrics["official"]["f1"] <= 100 and metrics["latency_ms"]["p50"] > 0
    assert metrics["settings"]["mode"] == "hybrid" and metrics["backend"]
    assert {p.name for p in out.iterdir()} == {"metrics.json", "predictions.json", "answers.json"}
    answers = json.loads((out / "answers.json").read_text())
    assert answers["f1"]["found_at"] is None and answers[next(iter(answers))]["found_at"] == 1


def test_cli_predict_index_writes_empty_for_abstentions(sample_index, mixed_questions, tmp_path, capsys):
    out = tmp_path / "p.json"
    argv = ["predict", "--index", str(sample_index), "--data", str(mixed_questions), "--out", str(out)]
    assert main([*argv, "--threshold", "1"]) == 0
    assert set(json.loads(out.read_text()).values()) == {""}
    assert "not in this archive" in capsys.readouterr().out
    assert main([*argv, "--threshold", "0"]) == 0
    predictions = json.loads(out.read_text())
    assert "" not in predictions.values() and len(predictions) == len(json.loads(SAMPLE.read_text())["data"][0][
        "paragraphs"][0]["qas"]) + 2


def test_cli_evaluate_index_bad_input(sample_index, tmp_path, capsys):
    assert run(["evaluate", "--index", str(tmp_path / "none.sqlite")]) == 2
    assert "no such index" in capsys.readouterr().err
    assert run(["predict", "--index", str(sample_index), "--data", str(tmp_path / "none.json"),
                "--out", str(tmp_path / "p.json")]) == 2
    assert "none.json" in capsys.readouterr().err and not (tmp_path / "p.json").exists()
