"""Building and changing an archive index: `build`, `add`, `remove`, `stats`.

Inputs, by what they are:

- a sound file, a folder (its sound files) or a list file (``.lst``/``.list``, or a ``.txt`` whose
  every line names a sound file): transcribed with ``spokenqa.corpus.transcribe.transcribe_files``
  (process pool, or Ray with ``ray=``) in chunks, each chunk indexed before the next starts;
  kind ``audio``, content hash of the audio file;
- the JSONL that ``spokenqa transcribe --out`` writes: one document per transcript line (kind
  ``jsonl``, hash of its text and word times); its error lines become failure rows;
- any other ``.txt``: a plain UTF-8 transcript, indexed as given (kind ``text``);
- a ``.json`` in SQuAD format: each paragraph one document named ``FILE#ARTICLE/PARAGRAPH`` (0-based,
  kind ``squad``); paragraphs the file no longer has are dropped when it is added again.

A document is indexed once per content: the same path with the same content hash is skipped, a
changed one is replaced (its old passages go). Every input is read and checked before the index
is touched, so bad input is one error and leaves the index as it was.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spokenqa.archive.passages import Passage, cut_passages
from spokenqa.archive.store import Document, Store, StoreStats, check_index_file, open_store
from spokenqa.config import SHIPPED_ENCODER
from spokenqa.errors import ConfigError, DataError

# Passages embedded together (from one or more documents) and then written in one transaction:
# enough that sorting them by length leaves batches little padding (~1% more tokens than they
# hold at 512, ~6% at 256, 20% at 64; Spoken-SQuAD test), few enough that an interrupted build
# loses little work (about 20 s of one core's encoding).
EMBED_GROUP = 512


@dataclass(frozen=True)
class Failure:
    path: str
    source: str
    kind: str
    error: str


@dataclass
class Source:
    """One input of a build: what it is, and (for all but audio) its documents, read and checked."""

    kind: str  # audio, jsonl, text, squad
    path: str  # absolute: the file, the folder or the list
    audio: list[str] = field(default_factory=list)
    items: list[Document | Failure] = field(default_factory=list)


@dataclass
class RunStats:
    """What one build/add did."""

    index: str
    added: int = 0  # new documents
    replaced: int = 0  # documents whose content changed
    unchanged: int = 0  # same path, same content: skipped
    dropped: int = 0  # SQuAD paragraphs the file no longer has
    failed: int = 0  # failure rows written (undecodable audio, JSONL error lines)
    passages: int = 0  # passages written
    audio_s: float = 0.0  # audio of the documents written
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (f"{self.index}: {self.added:,} documents added, {self.replaced:,} re-indexed, "
                f"{self.unchanged:,} unchanged, {self.dropped:,} dropped, {self.failed:,} failed; "
                f"{self.passages:,} passages, {self.audio_s / 3600:.2f} h of audio, in {self.wall_s:.1f} s")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Reading the inputs


def _is_list_of_recordings(path: Path) -> bool:
    """A .txt whose non-blank, non-comment lines all name sound files is a list of recordings."""
    from spokenqa.corpus.transcribe import AUDIO_SUFFIXES
    from spokenqa.files import read_text

    lines = [ln.strip() for ln in read_text(path, "text").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    return bool(lines) and all(Path(ln).suffix.lower() in AUDIO_SUFFIXES for ln in lines)


def classify(arg: str | os.PathLike[str]) -> Source:
    """What an input argument is (see the module docstring); its documents are read by `read`."""
    from spokenqa.corpus.transcribe import AUDIO_SUFFIXES, collect_files

    path = Path(arg)
    full = os.path.abspath(path)
    if path.is_dir():
        return Source("audio", full, audio=collect_files([path]))
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return Source("jsonl", full)
    if suffix == ".json":
        return Source("squad", full)
    if suffix in (".lst", ".list") or (suffix == ".txt" and _is_list_of_recordings(path)):
        return Source("audio", full, audio=collect_files([path]))
    if suffix == ".txt":
        return Source("text", full)
    if suffix in AUDIO_SUFFIXES:
        return Source("audio", full, audio=[full])
    raise ConfigError(f"{path}: not an input the index takes (a sound file, a folder of them, a "
                      "list file, a transcribe .jsonl, a .txt transcript or a SQuAD .json)")


def read_squad_documents(path: str) -> list[Document | Failure]:
    """One document per paragraph of a SQuAD-format file (checked by `validate_squad`)."""
    from spokenqa.data import validate_squad
    from spokenqa.files import read_json

    data = read_json(path)
    validate_squad(data, path, require_answers=False)
    docs: list[Document | Failure] = []
    for a, article in enumerate(data["data"]):
        title = article.get("title")
        for p, paragraph in enumerate(article["paragraphs"]):
            text = paragraph["context"]
            docs.append(Document(f"{path}#{a}/{p}", path, "squad", sha256_text(text), text,
                                 title=title if isinstance(title, str) else None))
    return docs


def read_text_document(path: str) -> list[Document | Failure]:
    from spokenqa.files import read_text

    text = read_text(path, "text")
    return [Document(path, path, "text", sha256_text(text), text, title=Path(path).stem)]


def transcript_document(row: Any, where: str, source: str, kind: str, content_hash: str | None
                        ) -> Document | Failure:
    """A `spokenqa transcribe --out` line as a document, or a Failure for its error lines; a line
    that is neither is a DataError naming `where`."""
    from spokenqa.audio.asr import Transcript

    if not isinstance(row, dict) or not isinstance(row.get("file"), str):
        raise DataError(f"{where}: not a transcribe line (a JSON object with 'file')")
    if "error" in row:
        return Failure(row["file"], source, kind, str(row["error"]))
    try:
        tr = Transcript.from_dict(row)
        words = [[w.start_char, w.end_char, float(w.start_s), float(w.end_s)] for w in tr.words]
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: not a transcribe line ({type(e).__name__}: {e})") from None
    if not isinstance(tr.text, str) or any(not 0 <= s < e <= len(tr.text) for s, e, _, _ in words) \
            or any(a[0] > b[0] for a, b in itertools.pairwise(words)):
        raise DataError(f"{where}: its words' character spans do not fit its text in order")
    if content_hash is None:
        content_hash = sha256_text(json.dumps([tr.text, words]))
    return Document(row["file"], source, kind, content_hash, tr.text, title=Path(row["file"]).stem,
                    words=words, duration_s=tr.duration, asr_engine=tr.engine or None)


def read_jsonl_documents(path: str) -> list[Document | Failure]:
    from spokenqa.files import read_text

    out: list[Document | Failure] = []
    for lineno, line in enumerate(read_text(path, "JSONL").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        out.append(transcript_document(row, f"{path}:{lineno}", path, "jsonl", None))
    return out


def read(source: Source) -> Source:
    """Read and check a source's documents (audio is read when it is transcribed)."""
    readers = {"squad": read_squad_documents, "text": read_text_document, "jsonl": read_jsonl_documents}
    if source.kind in readers:
        source.items = readers[source.kind](source.path)
    return source


def plan(inputs: Sequence[str | os.PathLike[str]], engine: str, workers: int | None,
         ray: str | None, batch_size: int | None) -> list[Source]:
    """Every input classified and read (audio settings checked when there is audio): all the
    input errors come here, before the index is opened."""
    if not inputs:
        raise ConfigError("no inputs given")
    sources = [read(classify(arg)) for arg in inputs]
    if any(s.kind == "audio" for s in sources):
        from spokenqa.audio.asr import check_engine
        from spokenqa.corpus.runner import Executor

        check_engine(engine)
        Executor(workers=workers, ray=ray, batch_size=batch_size).check()
    return sources


# --------------------------------------------------------------------------------------------
# Writing


class Writer:
    """Puts documents into a store: skips unchanged ones, embeds passages in groups across
    documents (`EMBED_GROUP`), writes each group in one transaction."""

    def __init__(self, store: Store, encoder: Any, stats: RunStats, progress: Any = None) -> None:
        self.store, self.encoder, self.stats, self.progress = store, encoder, stats, progress
        self.pending: list[tuple[Document, list[Passage], bool]] = []
        self.pending_passages = 0

    def put(self, item: Document | Failure) -> None:
        if isinstance(item, Failure):
            self.store.put_failure(item.path, item.source, item.kind, item.error)
            self.stats.failed += 1
            self._tick()
            return
        old = self.store.document_hash(item.path)
        if old == item.content_hash:
            self.stats.unchanged += 1
            self._tick()
            return
        words = _words(item.words)
        passages = cut_passages(item.text, words)
        self.pending.append((item, passages, old is not None))
        self.pending_passages += len(passages)
        if self.pending_passages >= EMBED_GROUP:
            self.flush()

    def flush(self) -> None:
        texts = [p.text for _, passages, _ in self.pending for p in passages]
        vectors = self.encoder.encode(texts) if texts else _empty(self.store)
        items, at = [], 0
        for doc, passages, _ in self.pending:
            items.append((doc, passages, vectors[at:at + len(passages)]))
            at += len(passages)
        if items:
            self.store.put_documents(items)
        for doc, passages, replacing in self.pending:
            self.stats.replaced += replacing
            self.stats.added += not replacing
            self.stats.passages += len(passages)
            self.stats.audio_s += doc.duration_s or 0.0
            self._tick()
        self.pending, self.pending_passages = [], 0

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress.update(1)


def _words(words: list[list[float]] | None) -> list[Any] | None:
    from spokenqa.audio.asr import Word

    if not words:
        return None
    return [Word("", int(s), int(e), float(a), float(b)) for s, e, a, b in words]


def _empty(store: Store) -> Any:
    import numpy as np

    return np.zeros((0, store.encoder_dim), dtype=np.float16)


def _put_source(writer: Writer, source: Source) -> None:
    if source.kind == "squad":  # paragraphs the file no longer has go
        keep = {d.path for d in source.items}
        stale = [p for p in writer.store.matching([source.path])[source.path] if p not in keep]
        if stale:
            writer.stats.dropped += writer.store.remove(stale)
    for item in source.items:
        writer.put(item)


def _transcribed(source: Source, store: Store, stats: RunStats, cfg: dict[str, Any]
                 ) -> Iterator[Document | Failure]:
    """The source's recordings that are new or changed, transcribed chunk by chunk."""
    from spokenqa.corpus.transcribe import transcribe_files
    from spokenqa.files import file_sha256

    hashes = {}
    for path in source.audio:
        try:
            hashes[path] = file_sha256(path)
        except OSError as e:
            yield Failure(path, source.path, "audio", f"cannot read ({e.strerror})")
            continue
        if store.document_hash(path) == hashes[path]:
            stats.unchanged += 1
            del hashes[path]
    todo = list(hashes)
    chunk = 1024 if cfg["ray"] else max(32, 8 * (cfg["workers"] or 1))
    for lo in range(0, len(todo), chunk):
        with tempfile.TemporaryDirectory(prefix="spokenqa-index-") as tmp:
            out = Path(tmp) / "transcripts.jsonl"
            transcribe_files(todo[lo:lo + chunk], out, **cfg)
            for lineno, line in enumerate(out.read_text(encoding="utf-8").splitlines(), 1):
                row = json.loads(line)
                yield transcript_document(row, f"{out}:{lineno}", source.path, "audio",
                                          hashes.get(row.get("file")))


def _write_all(store: Store, encoder: Any, sources: Sequence[Source], stats: RunStats,
               cfg: dict[str, Any], progress: bool) -> None:
    from spokenqa.corpus.runner import progress_bar

    total = sum(len(s.items) for s in sources if s.kind != "audio")
    bar = progress_bar(total, progress and total > 0, "doc", "index")
    writer = Writer(store, encoder, stats, bar)
    try:
        for source in sources:
            if source.kind == "audio":
                for item in _transcribed(source, store, stats, cfg):
                    writer.put(item)
            else:
                _put_source(writer, source)
        writer.flush()
    finally:
        if bar is not None:
            bar.close()


def add(index: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]], *,
        encoder: str | None = None, create: bool = False, engine: str = "auto",
        workers: int | None = None, ray: str | None = None, batch_size: int | None = None,
        progress: bool = False, timeout: float | None = None, threads: int | None = None) -> RunStats:
    """Index `inputs` into the index file `index` (which must exist unless `create`); returns
    what was done. `encoder`: for a new index, its sentence encoder (default: the shipped one);
    for an existing one, it must be the one it was built with. `threads`: torch's CPU threads
    for the encoder (default: torch's setting)."""
    from spokenqa.archive.embed import Encoder, encoder_name

    start = time.perf_counter()
    new = check_index_file(index, create)
    sources = plan(inputs, engine, workers, ray, batch_size)
    kw = {} if timeout is None else {"timeout": timeout}
    wanted = None if encoder is None else encoder_name(encoder)
    if new:
        model = Encoder(encoder or SHIPPED_ENCODER, threads=threads)
        store = open_store(index, create=True, encoder=model.name, encoder_dim=model.dim, **kw)
    else:
        store = open_store(index, write=True, encoder=wanted, **kw)
        model = Encoder(store.encoder, threads=threads)
        if model.dim != store.encoder_dim:
            store.close()
            raise ConfigError(f"{index}: encoder {store.encoder!r} gives {model.dim} dimensions now, "
                              f"the index holds {store.encoder_dim}")
    stats = RunStats(str(index))
    cfg = {"engine": engine, "workers": workers, "ray": ray, "batch_size": batch_size,
           "progress": progress}
    with store:
        _write_all(store, model, sources, stats, cfg, progress)
    stats.wall_s = time.perf_counter() - start
    return stats


def build(index: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]], **kw: Any) -> RunStats:
    """`add`, creating the index when it does not exist yet (a rerun resumes an interrupted build)."""
    return add(index, inputs, create=True, **kw)


def _document_name(name: str) -> str:
    """A path as the index keeps it: absolute (FILE#A/P: FILE made absolute)."""
    file, sep, rest = name.partition("#")
    return os.path.abspath(file) + sep + rest


def remove(index: str | os.PathLike[str], names: Iterable[str], timeout: float | None = None) -> int:
    """Drop the documents named (their own path, or the input file they were added from), with
    their passages and vectors; returns how many. A name that matches nothing is a ConfigError
    and nothing is removed."""
    names = [_document_name(str(n)) for n in names]
    if not names:
        raise ConfigError("no paths given")
    with open_store(index, write=True, **({} if timeout is None else {"timeout": timeout})) as store:
        found = store.matching(names)
        missing = [n for n, paths in found.items() if not paths]
        if missing:
            raise ConfigError(f"{missing[0]}: not in the index {index} (give a document's path or "
                              "the file it was added from); nothing removed")
        return store.remove(sorted({p for paths in found.values() for p in paths}))


def stats(index: str | os.PathLike[str]) -> StoreStats:
    with open_store(index) as store:
        return store.stats()


__all__ = ["Failure", "RunStats", "Source", "Writer", "add", "build", "classify", "plan", "read",
           "remove", "stats", "transcript_document"]
