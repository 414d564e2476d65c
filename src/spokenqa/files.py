"""Files in and out, each written one way: reading text and JSON with one-line errors, writing a
file or a folder atomically, hashing, and the one cache folder.

Atomic means a crash or a full disk at any moment leaves either the old complete file or the new
complete one, never half of it: write a temp sibling, fsync it, rename it over the target, fsync
the folder (the rename is only durable once the folder is).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spokenqa.errors import DataError


def cache_dir(*parts: str) -> Path:
    """spokenqa's cache folder (ONNX graphs, the parsed pronouncing dictionary): `$SPOKENQA_CACHE`,
    else `$XDG_CACHE_HOME/spokenqa`, else `~/.cache/spokenqa`; `parts` name a sub-folder."""
    root = os.environ.get("SPOKENQA_CACHE")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spokenqa"
    return Path(root).joinpath(*parts)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write `data` (str: UTF-8) to `path` atomically, with the mode a plain `open` would give."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2, ensure_ascii: bool = True) -> None:
    """`obj` as JSON with a newline at the end, written atomically (`indent`, `ensure_ascii` as
    `json.dumps` takes them: data sets keep their non-ASCII text as UTF-8)."""
    atomic_write(path, json.dumps(obj, indent=indent, ensure_ascii=ensure_ascii) + "\n")


def atomic_folder(target: str | Path, write: Callable[[Path], None]) -> None:
    """Write a folder by `write(tmp)` into a temp sibling, fsync it, then rename it over `target`.

    A crash at any moment leaves either the old complete folder or the new complete folder; a
    crash between the two renames leaves the old one as `.NAME.old-PID` beside it (training's
    resume puts it back).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
        # the modes a plain mkdir/open would give: mkdtemp makes 0700 and safetensors writes 0600
        umask = _umask()
        tmp.chmod(0o777 & ~umask)
        for path in tmp.rglob("*"):
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_folder(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_text(path: str | Path, kind: str = "JSON") -> str:
    """A UTF-8 text file's content, with one-line errors for missing, unreadable and non-UTF-8 files."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise DataError(f"{path}: is a folder, expected a {kind} file") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from e


def read_json(path: str | Path) -> Any:
    """Read a JSON file with one-line errors for missing, empty, non-UTF-8 and malformed files."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: empty file, expected JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    except RecursionError as e:
        raise DataError(f"{path}: not usable JSON (nested too deeply)") from e
    if _SURROGATE_ESCAPE.search(text):  # only \u escapes can make strings that are not Unicode
        where = _lone_surrogate(data)
        if where is not None:
            raise DataError(f"{path}: {where}: not Unicode text (a \\u escape gives half a surrogate pair)")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(root: Any) -> str | None:
    """JSON path of a string (or key) holding a lone surrogate code point, or None."""
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return where or "the top level"
        elif isinstance(value, dict):
            for key, item in value.items():
                name = key.encode("utf-8", "backslashreplace").decode("utf-8")
                stack.append((key, f"{where}.{name} (the key)" if where else f"{name} (the key)"))
                stack.append((item, f"{where}.{name}" if where else name))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
    return None
