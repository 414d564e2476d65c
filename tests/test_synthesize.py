"""spokenqa.corpus.synthesize end to end with Festival + pocketsphinx on a tiny SQuAD file."""

from __future__ import annotations

import argparse
import importlib.util
import json
import wave
from pathlib import Path

import pytest

from spokenqa.audio import tts
from spokenqa.cli import audio as cli_audio
from spokenqa.corpus.synthesize import (
    FIELDS,
    load_tasks,
    read_done,
    split_sentences,
    synthesize_squad,
    transcript_wer,
    write_squad,
)
from spokenqa.errors import DataError

needs_stack = pytest.mark.skipif(
    not tts.available()
    or not any(Path("/usr/share/festival/voices").glob("*/cmu_us_slt_arctic_hts"))
    or importlib.util.find_spec("pocketsphinx") is None,
    reason="needs Festival + sox (scripts/setup_debian.sh) and pocketsphinx",
)

SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Bridges",
            "paragraphs": [
                {
                    "context": "The bridge was built in 1932. It is made of steel.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "When was the bridge built?",
                            "answers": [{"answer_start": 24, "text": "1932"}],
                        }
                    ],
                }
            ],
        },
        {
            "title": "Cities",
            "paragraphs": [
                {
                    "context": "The capital of Norway is Oslo.",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "What is the capital of Norway?",
                            "answers": [{"answer_start": 25, "text": "Oslo"}],
                        }
                    ],
                },
                {"context": "Water boils at one hundred degrees.", "qas": []},
            ],
        },
    ],
}


@pytest.fixture()
def squad_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SQUAD))
    return path


def test_split_sentences():
    assert split_sentences("One. Two! Three? four. Five") == ["One.", "Two!", "Three? four.", "Five"]
    assert split_sentences('He said "go." Then left.') == ['He said "go." Then left.']
    assert split_sentences("  ") == []


def test_load_tasks_order_and_errors(squad_file, tmp_path):
    tasks = load_tasks(squad_file)
    assert [(t.order, t.article_index, t.paragraph_index) for t in tasks] == [(0, 0, 0), (1, 1, 0), (2, 1, 1)]
    shuffled = load_tasks(squad_file, seed=42, max_paragraphs=2)
    assert len(shuffled) == 2 and [t.order for t in shuffled] == [0, 1]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not valid JSON"):
        load_tasks(bad)
    bad.write_text('{"data": [{"paragraphs": [{"qas": []}]}]}')
    with pytest.raises(DataError, match=r"article 0, paragraph 0: missing 'context'"):
        load_tasks(bad)


def test_read_done_drops_torn_last_line(tmp_path):
    out = tmp_path / "out.jsonl"
    good = json.dumps({"article_index": 0, "paragraph_index": 1, "context": "x"})
    out.write_text(good + "\n" + '{"article_index": 0, "paragr')
    done = read_done(out)
    assert list(done) == [(0, 1)]
    assert out.read_text() == good + "\n"
    out.write_text("garbage\n" + good + "\n")
    with pytest.raises(DataError, match="out.jsonl:1"):
        read_done(out)


@needs_stack
def test_synthesize_resume_and_convert(squad_file, tmp_path):
    out = tmp_path / "out.jsonl"
    audio = tmp_path / "audio"
    stats = synthesize_squad(squad_file, out, workers=1, keep_audio_dir=audio, max_paragraphs=2, progress=False)
    assert (stats.written, stats.skipped, stats.failed) == (2, 0, 0)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [tuple(r) for r in rows] == [FIELDS, FIELDS]
    first = rows[0]
    assert first["sentences"] == 2
    assert first["transcript"].count(". ") == 1 and first["transcript"].endswith(".")
    assert "nineteen thirty two" in first["transcript"]
    assert first["qas"] == SQUAD["data"][0]["paragraphs"][0]["qas"]
    times = [t for _, s, e in first["words"] for t in (s, e)]
    assert times == sorted(times) and times[-1] <= first["audio_s"]
    assert " ".join(w for w, _, _ in first["words"]) == first["transcript"].replace(".", "")
    with wave.open(str(audio / "000_000.wav")) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(first["audio_s"], abs=0.01)
    assert transcript_wer(rows) < 0.3

    # An interrupted run left a torn line: the rerun drops it, skips the done paragraphs and
    # adds the missing one.
    with open(out, "a") as fh:
        fh.write('{"order": 2, "title": "Cit')
    stats = synthesize_squad(squad_file, out, workers=1, progress=False)
    assert (stats.written, stats.skipped) == (1, 2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["article_index"], r["paragraph_index"]) for r in rows] == [(0, 0), (1, 0), (1, 1)]
    assert rows[2]["qas"] == []

    # A different input for the same output file is refused.
    other = tmp_path / "other.json"
    changed = json.loads(json.dumps(SQUAD))
    changed["data"][0]["paragraphs"][0]["context"] = "Something else entirely."
    other.write_text(json.dumps(changed))
    with pytest.raises(DataError, match="different input"):
        synthesize_squad(other, out, progress=False)

    # the resumed file converts to SQuAD format: every transcript becomes a context
    squad_out = tmp_path / "spoken.json"
    write_squad(out, squad_out)
    data = json.loads(squad_out.read_text())
    contexts = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    assert contexts == [r["transcript"] for r in rows]


@needs_stack
@pytest.mark.slow
def test_synthesize_two_workers_matches_one(squad_file, tmp_path):
    one = tmp_path / "one.jsonl"
    two = tmp_path / "two.jsonl"
    synthesize_squad(squad_file, one, workers=1, progress=False)
    synthesize_squad(squad_file, two, workers=2, progress=False)
    strip = ("tts_s", "asr_s")
    rows1 = [{k: v for k, v in json.loads(x).items() if k not in strip} for x in one.read_text().splitlines()]
    rows2 = [{k: v for k, v in json.loads(x).items() if k not in strip} for x in two.read_text().splitlines()]
    assert rows1 == rows2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spokenqa")
    sub = p.add_subparsers(required=True)
    cli_audio.add_synthesize_parser(sub)
    cli_audio.add_transcribe_parser(sub)
    cli_audio.add_speak_parser(sub)
    return p


@pytest.mark.skipif(importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed")
def test_cli_transcribe(capsys):
    wav = Path(__file__).parent / "data" / "bridge_1932.wav"
    args = _parser().parse_args(["transcribe", str(wav), "--json"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["text"] == "the bridge was built in nineteen thirty two."
    assert [w["text"] for w in data["words"]][:2] == ["the", "bridge"]
    args = _parser().parse_args(["transcribe", str(wav)])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == data["text"] and lines[1].split()[-1] == "the"


def test_cli_synthesize_flags():
    args = _parser().parse_args(
        ["synthesize", "in.json", "out.jsonl", "--workers", "2", "--keep-audio", "a", "--max-paragraphs", "10"]
    )
    assert (args.workers, args.keep_audio, args.max_paragraphs, args.seed) == (2, "a", 10, None)
    with pytest.raises(SystemExit):
        _parser().parse_args(["synthesize", "in.json", "out.jsonl", "--workers", "0"])
