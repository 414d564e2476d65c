"""`spokenqa data ...` through its own parser (spokenqa.cli hooks it in separately)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from spokenqa.cli.data import add_data_parser, spokenize_command
from spokenqa.corpus.noise import Lexicon
from spokenqa.errors import ConfigError, DataError

CMU = "the DH AH0\na AH0\nteam T IY1 M\nteem T IY1 M\nwon W AH1 N\none W AH1 N\n" \
      "played P L EY1 D\nplate P L EY1 T\nfoot F UH1 T\nball B AO1 L\n" \
      "football F UH1 T B AO2 L\nin IH0 N\nand AH0 N D\n"
RECORD = {
    "title": "Reform",
    "context": "The Great Reform Bill changed voting. It took a long fight.",
    "transcript": "the great reform bell change voting. it took a lung file.",
    "qas": [{"id": "bill", "question": "What?",
             "answers": [{"text": "Great Reform Bill", "answer_start": 4}]},
            {"id": "vote", "question": "What changed?",
             "answers": [{"text": "voting", "answer_start": 30}]},
            {"id": "gone", "question": "How long?",
             "answers": [{"text": "a long fight", "answer_start": 46}]}],
}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spokenqa")
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_parser(sub)
    return parser.parse_args(argv)


def _run(argv: list[str]) -> int:
    """Parse, then run the subcommand's own function, as spokenqa.cli.main does."""
    args = _parse(argv)
    return args.func(args)


SQUAD = {"version": "1.1", "data": [{"title": "Bowl", "paragraphs": [{
    "context": "In 2015, the Broncos won $5 million. The team played football in Denver.",
    "qas": [{"id": "q1", "question": "Who won?",
             "answers": [{"text": "the Broncos", "answer_start": 9}]},
            {"id": "q2", "question": "How much?",
             "answers": [{"text": "$5 million", "answer_start": 25}]}]}]}]}


@pytest.fixture()
def tiny_lexicon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tiny.dict"
    path.write_text(CMU, encoding="utf-8")
    lex = Lexicon.from_file(path)
    monkeypatch.setattr("spokenqa.corpus.noise.load_lexicon", lambda path=None: lex)


def test_spokenize_with_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              tiny_lexicon: None) -> None:
    src, dst, stats = tmp_path / "in.json", tmp_path / "out" / "o.json", tmp_path / "s.json"
    src.write_text(json.dumps(SQUAD), encoding="utf-8")
    args = _parse(["data", "spokenize", str(src), str(dst), "--noise-rate", "0.3",
                   "--seed", "2", "--stats", str(stats)])
    assert args.func is spokenize_command
    assert args.func(args) == 0
    out = json.loads(dst.read_text(encoding="utf-8"))
    par = out["data"][0]["paragraphs"][0]
    for qa in par["qas"]:
        a = qa["answers"][0]
        assert par["context"][a["answer_start"]:][:len(a["text"])] == a["text"]
    assert [qa["answers"][0]["text"] for qa in par["qas"]] == ["the broncos",
                                                               "five million dollars"]
    printed = capsys.readouterr().out
    assert "2 questions -> 2 kept" in printed and "measured WER" in printed
    summary = json.loads(stats.read_text(encoding="utf-8"))
    assert summary["spokenize"]["answers_exact"] == 2 and summary["noise"]["seed"] == 2


def test_noise_requires_rate_and_checks_it(tmp_path: Path, tiny_lexicon: None) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps(SQUAD), encoding="utf-8")
    with pytest.raises(SystemExit):
        _parse(["data", "noise", str(src), str(tmp_path / "o.json")])
    with pytest.raises(ConfigError, match="--noise-rate 1.5"):
        _run(["data", "noise", str(src), str(tmp_path / "o.json"), "--noise-rate", "1.5"])
    assert _run(["data", "noise", str(src), str(tmp_path / "o.json"), "--noise-rate", "0.2"]) == 0
    written = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    (par,) = written["data"][0]["paragraphs"]
    (before,) = SQUAD["data"][0]["paragraphs"]
    assert par["context"] != before["context"], "a noise rate of 0.2 must change some word"
    assert [qa["id"] for qa in par["qas"]] == ["q1", "q2"]
    for qa in par["qas"]:
        for a in qa["answers"]:
            assert par["context"][a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]


def test_convert_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "s.jsonl", tmp_path / "o.json"
    src.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    assert _run(["data", "convert-synth", str(src), str(dst)]) == 0
    out = json.loads(dst.read_text(encoding="utf-8"))
    (par,) = out["data"][0]["paragraphs"]
    assert [(qa["id"], qa["answers"][0]["text"]) for qa in par["qas"]] == [
        ("bill", "great reform bell"), ("vote", "voting")]
    printed = capsys.readouterr().out
    assert "3 questions -> 2 kept" in printed and "1 exact, 1 fuzzy" in printed


@pytest.mark.parametrize("content, message", [
    ("{nope", r"in\.json: not valid JSON \(line 1, column 2"),
    ("[1, 2]", r"in\.json: expected a JSON object with a 'data' list"),
    ('{"data": [{"paragraphs": [{"context": 3, "qas": []}]}]}',
     r"in\.json: article 0, paragraph 0: 'context' must be str, got int"),
])
def test_bad_input_raises_data_error(tmp_path: Path, content: str, message: str) -> None:
    src = tmp_path / "in.json"
    src.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        _run(["data", "spokenize", str(src), str(tmp_path / "o.json")])
    assert not (tmp_path / "o.json").exists()


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        _run(["data", "spokenize", str(tmp_path / "x.json"), str(tmp_path / "o.json")])


def test_holdout_drops_the_synth_paragraphs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The synth set's paragraphs leave the training file (matched by text); the rest stays."""
    other = {"context": "Another paragraph.", "qas": [{"id": "keep", "question": "q?",
                                                        "answers": [{"text": "Another", "answer_start": 0}]}]}
    spoken = {"context": RECORD["context"], "qas": RECORD["qas"]}
    squad = {"version": "1.1", "data": [
        {"title": "A", "paragraphs": [spoken, other]},
        {"title": "B", "paragraphs": [spoken]},  # an article left empty goes
    ]}
    src, synth, dst = tmp_path / "train.json", tmp_path / "s.jsonl", tmp_path / "o.json"
    src.write_text(json.dumps(squad), encoding="utf-8")
    synth.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    assert _run(["data", "holdout", str(src), str(dst), "--synth", str(synth)]) == 0
    out = json.loads(dst.read_text(encoding="utf-8"))
    assert [a["title"] for a in out["data"]] == ["A"]
    assert [p["context"] for p in out["data"][0]["paragraphs"]] == ["Another paragraph."]
    assert f"dropped 2 paragraphs ({2 * len(RECORD['qas'])} questions) of the 1" in capsys.readouterr().out
