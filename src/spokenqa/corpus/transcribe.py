"""Transcribe many recordings into one JSONL file (`spokenqa transcribe FILE... --out OUT.jsonl`),
on this machine's processes or on a Ray cluster (``spokenqa.corpus.runner``), resumable.

One JSON object per recording: ``{"file", "text", "duration", "engine", "words"}``, the fields of
``Transcript.to_dict()`` (so ``Transcript.from_dict(row)`` gives the transcript back, ready for
``QA.answer(transcript=...)``) plus ``file``, the recording's absolute path, which is the key: on
this machine lines come in input order, on Ray in completion order, so sort by ``file`` to compare
runs. A recording that cannot be read or decoded gets ``{"file", "engine", "error"}`` instead,
and the run goes on. A rerun with the same output skips every file that already has a line,
error lines included (delete those lines to try the files again).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokenqa.corpus.runner import Executor, Outcome, RunStats, drive, read_jsonl
from spokenqa.errors import ConfigError, DataError

# What a folder contributes: the formats libsndfile reads (spokenqa.audio.asr.load_audio).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au")
# A FILE with one of these names is a list of recordings, one path per line.
LIST_SUFFIXES = (".txt", ".lst", ".list")


def collect_files(args: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Absolute paths of the recordings named by ``args``, each once, in order: a sound file as
    it is; a folder gives its files with an audio suffix (recursively, sorted); a list file
    (``.txt``, ``.lst``, ``.list``) gives its lines (blank lines and ``#`` comments skipped,
    relative paths taken from the list's folder). A missing argument is a ConfigError; a missing
    file inside a list becomes that file's error line."""
    out: dict[str, None] = {}
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
            )
            if not found:
                raise ConfigError(
                    f"{path}: no audio files in this folder ({', '.join(AUDIO_SUFFIXES)})"
                )
            out.update((os.path.abspath(p), None) for p in found)
        elif not path.exists():
            raise ConfigError(f"{path}: no such file or folder")
        elif path.suffix.lower() in LIST_SUFFIXES:
            out.update((os.path.abspath(p), None) for p in _read_list(path))
        else:
            out[os.path.abspath(path)] = None
    return list(out)


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the list of recordings: {exc}") from None
    entries = [line.strip() for line in lines]
    return [path.parent / e for e in entries if e and not e.startswith("#")]


def _warm(cfg: Mapping[str, Any]) -> None:
    from spokenqa.audio import asr

    asr.warm_up(cfg["engine"])


def _work(path: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    from spokenqa.audio import asr

    tr = asr.transcribe(path, cfg["engine"], max_seconds=cfg["max_seconds"], segment=cfg["segment"])
    return {"file": path, **tr.to_dict()}


@dataclass
class TranscribeStats(RunStats):
    skipped_errors: int = 0  # of the skipped: error lines of an earlier run

    def summary(self) -> str:
        rate = self.audio_s / self.wall_s if self.wall_s > 0 else 0.0
        return (
            f"{self.written} recording{'' if self.written == 1 else 's'} transcribed, {self.skipped} already done"
            f"{f' ({self.skipped_errors} of them error lines)' if self.skipped_errors else ''}, "
            f"{self.failed} "
            f"failed (error lines), {self.retried} retried; "
            f"{self.audio_s / 3600:.2f} h audio in {self.wall_s:.1f} s wall ({rate:.1f} s of audio "
            f"per s) with {self.ran_on or 'nothing to do'}"
        )


def transcribe_files(
    files: Iterable[str | os.PathLike[str]],
    out_jsonl: str | os.PathLike[str],
    *,
    engine: str = "auto",
    max_seconds: float | None = None,
    segment: bool = True,
    workers: int | None = None,
    ray: str | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> TranscribeStats:
    """Transcribe the recordings named by ``files`` (see ``collect_files``) into ``out_jsonl``
    (see the module docstring), skipping those already there. ``workers``, ``ray`` and
    ``batch_size`` choose where they run (``spokenqa.corpus.runner.Executor``; on a Ray cluster every
    node must see the files at the same paths). ``max_seconds``: longer recordings become error
    lines (default: no limit). ``engine``: as ``spokenqa.audio.asr.transcribe`` takes it, auto
    resolved here once for every recording, after the input checks."""
    from spokenqa.audio.asr import check_engine, resolve_engine

    check_engine(engine)
    executor = Executor(workers=workers, ray=ray, batch_size=batch_size)
    executor.check()
    paths = collect_files(files)
    out_path = Path(out_jsonl)
    if out_path.is_dir():
        raise ConfigError(f"{out_path}: is a folder; --out takes a file name")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{out_path.parent}: cannot create the output folder ({exc.strerror})"
        ) from None
    done = read_jsonl(out_path, lambda row: str(row["file"]), "transcribe result")
    engine = resolve_engine(engine)
    for row in done.values():
        if row.get("engine") != engine:
            raise DataError(
                f"{out_path}: {row['file']} was transcribed with engine {row.get('engine')!r}, not "
                f"{engine!r}: use another output file (or --engine {row.get('engine')} to go on with this one)"
            )
    todo = [p for p in paths if p not in done]
    stats = TranscribeStats(selected=len(paths), skipped=len(paths) - len(todo))
    stats.skipped_errors = sum(1 for p in paths if "error" in done.get(p, {}))
    cfg = {"engine": engine, "max_seconds": max_seconds, "segment": segment}

    def add(row: dict[str, Any]) -> None:
        stats.audio_s += row["duration"]

    def failure(outcome: Outcome) -> tuple[dict[str, Any], str]:
        message = outcome.error if outcome.item in outcome.error else f"{outcome.item}: {outcome.error}"
        return {"file": outcome.item, "engine": engine, "error": outcome.error}, message

    drive(executor, todo, _work, _warm, cfg, out_path, stats, on_row=add, on_failure=failure,
          unit="file", desc="transcribe", progress=progress)
    return stats


__all__ = [
    "AUDIO_SUFFIXES",
    "LIST_SUFFIXES",
    "TranscribeStats",
    "collect_files",
    "transcribe_files",
]
