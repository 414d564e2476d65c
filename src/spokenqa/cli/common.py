"""Helpers the command modules share: the built-in sample, output folders that a failed command
removes again, atomic writes whose failure is one line, and which checkpoint a command means.

Light imports only (no torch, no numpy): every command module imports this when the parser is
built, before any input is checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spokenqa.errors import ConfigError, notice
from spokenqa.files import atomic_write_json

if TYPE_CHECKING:
    from spokenqa.config import RunConfig

SAMPLE = Path(__file__).parents[1] / "sample" / "sample_spoken.json"  # 27 questions, written for demos
CHECKPOINT_HELP = "a folder written by `spokenqa train` (e.g. runs/NAME/best) or `export` (default: the shipped model)"


def output_folder(folder: Path) -> Path:
    """Create an output folder before any expensive step; a path that cannot be one is bad usage.
    Used inside `no_outputs_on_failure`, which removes it again if the command then fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{folder}: cannot create the output folder ({e.strerror})") from e
    return folder


@contextlib.contextmanager
def no_outputs_on_failure(folder: Path) -> Iterator[None]:
    """A command that fails leaves no output behind: the folders on the way to `folder` that did
    not exist before are removed again, if they are still empty, when the body raises."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # deepest first
            try:
                path.rmdir()
            except OSError:  # not empty (a failed run's checkpoint, kept for --resume) or gone
                break
        raise


def write_json(path: Path, obj: Any, indent: int | None = 2, ensure_ascii: bool = True) -> None:
    """`obj` as JSON (and a newline), written atomically: a failed or killed write keeps the
    previous file, so an interrupted command leaves no half file; a failure is one line."""
    try:
        atomic_write_json(path, obj, indent=indent, ensure_ascii=ensure_ascii)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write ({e.strerror})") from e


def data_or_sample(data: str | None) -> str:
    """--data, or the built-in sample (said on stderr)."""
    if data is not None:
        return data
    notice(f"no --data given: using the built-in sample {SAMPLE.name}")
    return str(SAMPLE)


def choose_checkpoint(checkpoint: str | None) -> tuple[Path, RunConfig]:
    """--checkpoint, or the shipped model (said on stderr, so a user knows which model answered),
    and the settings it answers with, read without loading the weights (a folder that is not a
    checkpoint is a one-line error here)."""
    from spokenqa.checkpoint import checkpoint_config

    if checkpoint is not None:
        folder = Path(checkpoint)
    else:
        from spokenqa.checkpoint import resolve_checkpoint

        folder = resolve_checkpoint(None)
        notice(f"no --checkpoint given: using the shipped model {folder}")
    return folder, checkpoint_config(folder).for_inference()


__all__ = [
    "CHECKPOINT_HELP",
    "SAMPLE",
    "choose_checkpoint",
    "data_or_sample",
    "no_outputs_on_failure",
    "output_folder",
    "write_json",
]
