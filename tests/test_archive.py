"""spokenqa.corpus.transcribe: many recordings -> one resumable JSONL, on this machine's processes.

The Ray path of the same function is in tests/test_runner.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from spokenqa.audio.asr import Transcript
from spokenqa.cli import main
from spokenqa.corpus.transcribe import collect_files, transcribe_files
from spokenqa.errors import ConfigError, DataError

BRIDGE_WAV = Path(__file__).parent / "data" / "bridge_1932.wav"
BRIDGE_TEXT = "the bridge was built in nineteen thirty two."

needs_sphinx = pytest.mark.skipif(
    importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed"
)


@pytest.fixture()
def recordings(tmp_path: Path) -> Path:
    """Two copies of the checked-in recording and a text file named .wav."""
    folder = tmp_path / "rec"
    folder.mkdir()
    shutil.copy(BRIDGE_WAV, folder / "a.wav")
    shutil.copy(BRIDGE_WAV, folder / "b.wav")
    (folder / "notes.wav").write_text("not audio\n")
    return folder


def test_collect_files(tmp_path: Path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.wav", "d/sub/a.FLAC", "d/readme.md", "x.wav"):
        (tmp_path / name).write_bytes(b"")
    lst = tmp_path / "d" / "list.txt"
    lst.write_text("# recordings\n\nsub/a.FLAC\n../x.wav\nmissing.wav\n")
    files = collect_files([tmp_path / "d", lst, tmp_path / "x.wav"])
    d = os.path.abspath(tmp_path / "d")
    # folder: audio suffixes only, sorted, recursive; list: relative to its folder, comments and
    # blank lines skipped, a missing entry kept (it becomes an error line); each file once
    assert files == [
        f"{d}/b.wav", f"{d}/sub/a.FLAC", os.path.abspath(tmp_path / "x.wav"), f"{d}/missing.wav"
    ]
    with pytest.raises(ConfigError, match="nope.wav: no such file or folder"):
        collect_files([tmp_path / "nope.wav"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: no audio files"):
        collect_files([tmp_path / "empty"])


@needs_sphinx
def test_transcribe_files_error_line_and_resume(recordings: Path, tmp_path: Path):
    out = tmp_path / "out.jsonl"
    stats = transcribe_files([recordings], out, engine="pocketsphinx", progress=False)
    assert (stats.written, stats.failed, stats.skipped, stats.retried) == (2, 1, 0, 0)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # this machine: input order (the folder's files, sorted)
    assert [Path(r["file"]).name for r in rows] == ["a.wav", "b.wav", "notes.wav"]
    good, bad = rows[0], rows[2]
    assert list(good) == ["file", "text", "duration", "engine", "words"]
    assert good["text"] == BRIDGE_TEXT and good["engine"] == "pocketsphinx"
    tr = Transcript.from_dict(good)  # a line is a transcript, ready for QA.answer(transcript=...)
    assert tr.time_span(0, 3)[0] == good["words"][0]["start_s"]
    assert set(bad) == {"file", "engine", "error"}
    assert bad["error"].startswith(f"{recordings / 'notes.wav'}: not a readable audio file")
    assert "\n" not in bad["error"]

    # A killed run left a torn line: the rerun drops it and does the missing file only; the
    # error line counts as done (delete it to try the file again).
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[2] + lines[1][:40])
    stats = transcribe_files([recordings], out, engine="pocketsphinx", progress=False)
    assert (stats.written, stats.failed, stats.skipped, stats.skipped_errors) == (1, 0, 2, 1)
    assert sorted(out.read_text().splitlines()) == sorted(line.rstrip("\n") for line in lines)

    with pytest.raises(DataError, match=r"with engine 'pocketsphinx', not 'whisper': use another output file "
                                        r"\(or --engine pocketsphinx to go on with this one\)"):
        transcribe_files([recordings], out, engine="whisper", progress=False)


@needs_sphinx
def test_cli_transcribe_batch(recordings: Path, tmp_path: Path, capsys):
    out = tmp_path / "out.jsonl"
    listing = tmp_path / "files.txt"
    listing.write_text(f"{recordings / 'a.wav'}\n{recordings / 'notes.wav'}\n")
    assert main(["transcribe", str(listing), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "1 recording transcribed, 0 already done, 1 failed" in err
    assert f"see their error lines in {out}" in err
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["transcribe", "a.wav", "b.wav"], "several FILEs: give --out OUT.jsonl"),
        (["transcribe", "a.wav", "--workers", "2"], "--workers: give --out OUT.jsonl"),
        (["transcribe", "a.wav", "--ray", "auto"], "--ray: give --out OUT.jsonl"),
        (["transcribe", "a.wav", "--out", "o.jsonl", "--json"], "--json prints one transcript"),
        (["transcribe", str(BRIDGE_WAV), "--out", "o.jsonl", "--batch-size", "2"],
         "--batch-size applies to Ray tasks"),
    ],
)
def test_cli_transcribe_usage_errors(argv: list[str], message: str, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "o.jsonl").exists()
