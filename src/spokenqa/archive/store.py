"""Where the archive lives: `Store`, the operations the index and retrieval need, and
`SQLiteStore`, the one engine behind it (one SQLite file), opened by `open_store`.

The SQLite file (schema version `SCHEMA_VERSION`; docs/ARCHIVE.md draws it):

- `meta` (key, value): format = "spokenqa-archive", schema_version, encoder (name or folder),
  encoder_dim, generation (bumped by every change; readers refresh their vector cache on it),
  created_at, spokenqa_version;
- `documents`: one row per indexed document: path (an absolute file path, or FILE#A/P for a
  SQuAD paragraph), source (the input file it came from), kind (audio, jsonl, text, squad),
  content_hash, title, text, words (JSON [[char_start, char_end, start_s, end_s], ...] or NULL),
  duration_s, asr_engine, added_at;
- `passages`: id, document_id, ordinal, text, char_start, char_end (into the document's text),
  start_s, end_s (NULL without word times);
- `passages_fts`: an FTS5 index over passages.text (external content, unicode61 tokenizer,
  which folds case and diacritics), kept in step by triggers: BM25 through `bm25()`;
- `vectors`: passage_id, vector (the encoder's L2-normalised embedding, float16 little-endian);
- `failures`: inputs that could not be indexed (path, source, kind, error, added_at).

Every document is written in one transaction (document, passages, vectors, FTS rows), with the
others of its group (`put_documents`), so a build that is interrupted at any moment (Ctrl-C,
SIGKILL) leaves whole documents only and resumes without duplicates. WAL mode: readers never wait for the writer; a second writer waits up to
`timeout` seconds and then stops with "locked".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spokenqa.archive.passages import Passage
from spokenqa.errors import ConfigError, DataError

FORMAT = "spokenqa-archive"
SCHEMA_VERSION = 1
KINDS = ("audio", "jsonl", "text", "squad")
DEFAULT_TIMEOUT_S = 10.0  # how long a writer waits for another writer before "locked"
SQLITE_HEADER = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('audio', 'jsonl', 'text', 'squad')),
    content_hash TEXT NOT NULL,
    title TEXT,
    text TEXT NOT NULL,
    words TEXT,
    duration_s REAL,
    asr_engine TEXT,
    added_at TEXT NOT NULL
);
CREATE INDEX documents_source ON documents (source);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    start_s REAL,
    end_s REAL,
    UNIQUE (document_id, ordinal)
);
CREATE TABLE vectors (
    passage_id INTEGER PRIMARY KEY REFERENCES passages (id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE TABLE failures (
    path TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    error TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE VIRTUAL TABLE passages_fts USING fts5 (
    text, content='passages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""


@dataclass(frozen=True)
class Document:
    """One document to store: its text and where it came from (see the module docstring)."""

    path: str
    source: str
    kind: str
    content_hash: str
    text: str
    title: str | None = None
    words: list[list[float]] | None = None  # [[char_start, char_end, start_s, end_s], ...]
    duration_s: float | None = None
    asr_engine: str | None = None


@dataclass(frozen=True)
class StoredPassage:
    """A passage as retrieval returns it, with its document's id and path."""

    id: int
    document_id: int
    path: str
    title: str | None
    ordinal: int
    text: str
    char_start: int
    char_end: int
    start_s: float | None
    end_s: float | None


@dataclass(frozen=True)
class StoredDocument:
    """A document as readers see it (no text): what an answer names, and where its audio is."""

    id: int
    path: str
    title: str | None
    kind: str
    duration_s: float | None


@dataclass
class StoreStats:
    path: str
    documents: int
    passages: int
    failures: int
    audio_hours: float
    file_bytes: int
    encoder: str
    encoder_dim: int
    schema_version: int
    kinds: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(self.kinds.items())) or "none"
        return (f"{self.path}: {self.documents:,} documents ({kinds}), {self.passages:,} passages, "
                f"{self.failures:,} failed inputs, {self.audio_hours:.2f} h of audio, "
                f"{self.file_bytes / 1e6:.1f} MB; encoder {self.encoder} ({self.encoder_dim} dims), "
                f"schema version {self.schema_version}")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Store(ABC):
    """What the index and retrieval need from storage. `SQLiteStore` is the engine; another one
    (a server database, an ANN library beside a table) would implement these and nothing else."""

    path: str
    encoder: str
    encoder_dim: int

    def __init__(self) -> None:
        self._dense: tuple[int, np.ndarray, np.ndarray] | None = None

    # --- writing: each call is one transaction
    @abstractmethod
    def document_hash(self, path: str) -> str | None:
        """The content hash stored for the document at `path`, or None."""

    @abstractmethod
    def put_documents(self, items: Sequence[tuple[Document, Sequence[Passage], np.ndarray]]) -> list[int]:
        """Store (or replace: same path) documents with their passages and their vectors, all in
        one transaction (one commit for a group is cheaper than one per document); their ids."""

    def put_document(self, doc: Document, passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """`put_documents` of one document."""
        return self.put_documents([(doc, passages, vectors)])[0]

    @abstractmethod
    def put_failure(self, path: str, source: str, kind: str, error: str) -> None:
        """Record an input that could not be indexed (a later success at `path` clears it)."""

    @abstractmethod
    def matching(self, names: Iterable[str]) -> dict[str, list[str]]:
        """For each name, the document and failure paths it names: its own path, or the source
        file the documents came from."""

    @abstractmethod
    def remove(self, paths: Iterable[str]) -> int:
        """Drop these documents (passages, vectors) and failures; the number of documents dropped."""

    # --- reading
    @abstractmethod
    def stats(self) -> StoreStats: ...

    @abstractmethod
    def generation(self) -> int:
        """A number that changes whenever the stored data does."""

    @abstractmethod
    def bm25(self, match: str, limit: int) -> list[tuple[int, float]]:
        """(passage id, BM25 score, higher is better) of the best `limit` passages for an FTS5
        MATCH expression."""

    @abstractmethod
    def term_counts(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(passages in the store, {term: passages that hold it}) for these FTS terms."""

    @abstractmethod
    def passages(self, ids: Sequence[int]) -> dict[int, StoredPassage]: ...

    @abstractmethod
    def documents(self, ids: Sequence[int]) -> dict[int, StoredDocument]: ...

    @abstractmethod
    def document_words(self, ids: Sequence[int]) -> dict[int, list[list[float]]]:
        """The word times of these documents (those that have them): [[char_start, char_end,
        start_s, end_s], ...] in the document's text (an answer's seconds come from them)."""

    @abstractmethod
    def vector_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """All (passage ids int64 (n,), vectors float16 (n, dim)), in passage-id order."""

    def dense_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids, float32 vectors) for exact search, loaded once and again only after the
        store changed (`generation`)."""
        gen = self.generation()
        if self._dense is None or self._dense[0] != gen:
            ids, vecs = self.vector_rows()
            self._dense = (gen, ids, vecs.astype(np.float32))
        return self._dense[1], self._dense[2]

    # --- dense search: exact here; an engine with an ANN index (FAISS, hnswlib, sqlite-vec)
    # overrides these two and keeps the rest
    def nearest(self, query: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """The `limit` passages whose vectors have the largest inner product with `query` (unit
        length: cosine similarity), best first, as (passage id, score); ties: lower id first."""
        ids, matrix = self.dense_matrix()
        if len(ids) == 0:
            return []
        # einsum, not `@`: BLAS's threads wait for each other on a busy machine (8 ms for 2,809
        # passages instead of 0.2 ms); einsum runs on one thread and is as fast at 1M passages
        scores = np.einsum("ij,j->i", matrix, np.asarray(query, dtype=np.float32))
        limit = min(limit, len(ids))
        part = np.argpartition(-scores, limit - 1)[:limit]
        order = sorted(part, key=lambda i: (-scores[i], ids[i]))
        return [(int(ids[i]), float(scores[i])) for i in order]

    def similarity(self, query: np.ndarray, passage_ids: Sequence[int]) -> dict[int, float]:
        """Inner product of `query` with each of these passages' vectors (those that exist)."""
        ids, matrix = self.dense_matrix()
        at = np.searchsorted(ids, np.asarray(passage_ids, dtype=np.int64))  # ids are sorted
        found = [(int(pid), int(i)) for pid, i in zip(passage_ids, at, strict=True)
                 if i < len(ids) and ids[i] == pid]
        if not found:
            return {}
        rows = matrix[[i for _, i in found]]
        scores = np.einsum("ij,j->i", rows, np.asarray(query, dtype=np.float32))  # as `nearest`
        return {pid: float(score) for (pid, _), score in zip(found, scores, strict=True)}

    def close(self) -> None:
        """Release the engine's resources."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def sqlite_errors(path: str, timeout: float) -> Iterator[None]:
    """SQLite's errors as one-line spokenqa errors that name the index."""
    try:
        yield
    except sqlite3.OperationalError as e:
        text = str(e)
        if "locked" in text or "busy" in text:
            raise DataError(f"{path}: the index is locked by another writer (waited {timeout:g} s); "
                            "try again when it is done") from None
        if "readonly" in text or "read-only" in text:
            raise ConfigError(f"{path}: the index is read-only here; cannot change it") from None
        if "disk is full" in text or "disk I/O" in text:
            raise DataError(f"{path}: cannot write the index ({text})") from None
        raise DataError(f"{path}: not a usable spokenqa index ({text})") from None
    except sqlite3.DatabaseError as e:
        raise DataError(f"{path}: not a SQLite database, or a damaged one ({e})") from None


class SQLiteStore(Store):
    """The archive in one SQLite file (see the module docstring); made by `open_store`."""

    def __init__(self, path: str, conn: sqlite3.Connection, writable: bool, timeout: float) -> None:
        super().__init__()
        self.path, self.conn, self.writable, self.timeout = path, conn, writable, timeout
        self._terms: tuple[int, int, dict[str, int]] | None = None  # generation, passages, counts
        meta = self._meta()
        self.encoder = meta.get("encoder", "")
        self.encoder_dim = int(meta.get("encoder_dim", 0))

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return sqlite_errors(self.path, self.timeout)

    def _meta(self) -> dict[str, str]:
        with self._errors():
            return dict(self.conn.execute("SELECT key, value FROM meta"))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception, KeyboardInterrupt included),
        bumping `generation`."""
        if not self.writable:
            raise ConfigError(f"{self.path}: opened for reading; cannot change it")
        with self._errors():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                                  "WHERE key = 'generation'")
                self.conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise

    def document_hash(self, path: str) -> str | None:
        with self._errors():
            row = self.conn.execute("SELECT content_hash FROM documents WHERE path = ?", (path,)).fetchone()
        return row[0] if row else None

    def put_documents(self, items: Sequence[tuple[Document, Sequence[Passage], np.ndarray]]) -> list[int]:
        for doc, passages, vectors in items:
            if doc.kind not in KINDS:
                raise ValueError(f"kind {doc.kind!r} is not one of {KINDS}")
            if vectors.shape != (len(passages), self.encoder_dim):
                raise ValueError(f"vectors {vectors.shape} for {len(passages)} passages of dim {self.encoder_dim}")
        ids = []
        with self.transaction() as c:
            for doc, passages, vectors in items:
                ids.append(self._insert(c, doc, passages, np.ascontiguousarray(vectors, dtype="<f2")))
        return ids

    def _insert(self, c: sqlite3.Connection, doc: Document, passages: Sequence[Passage], blobs: np.ndarray) -> int:
        self._delete(c, [doc.path])
        cur = c.execute(
            "INSERT INTO documents (path, source, kind, content_hash, title, text, words, "
            "duration_s, asr_engine, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.path, doc.source, doc.kind, doc.content_hash, doc.title, doc.text,
             None if doc.words is None else json.dumps(doc.words, separators=(",", ":")),
             doc.duration_s, doc.asr_engine, now()))
        doc_id = int(cur.lastrowid)
        for p, blob in zip(passages, blobs, strict=True):
            cur = c.execute(
                "INSERT INTO passages (document_id, ordinal, text, char_start, char_end, "
                "start_s, end_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc_id, p.ordinal, p.text, p.char_start, p.char_end, p.start_s, p.end_s))
            c.execute("INSERT INTO vectors (passage_id, vector) VALUES (?, ?)",
                      (cur.lastrowid, blob.tobytes()))
        c.execute("DELETE FROM failures WHERE path = ?", (doc.path,))
        return doc_id

    def put_failure(self, path: str, source: str, kind: str, error: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO failures (path, source, kind, error, added_at) "
                      "VALUES (?, ?, ?, ?, ?)", (path, source, kind, error, now()))

    @staticmethod
    def _delete(c: sqlite3.Connection, paths: Sequence[str]) -> int:
        removed = 0
        for path in paths:
            row = c.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
            c.execute("DELETE FROM failures WHERE path = ?", (path,))
            if row is None:
                continue
            c.execute("DELETE FROM vectors WHERE passage_id IN "
                      "(SELECT id FROM passages WHERE document_id = ?)", row)
            c.execute("DELETE FROM passages WHERE document_id = ?", row)
            c.execute("DELETE FROM documents WHERE id = ?", row)
            removed += 1
        return removed

    def matching(self, names: Iterable[str]) -> dict[str, list[str]]:
        out = {}
        with self._errors():
            for name in names:
                rows = self.conn.execute(
                    "SELECT path FROM documents WHERE path = ?1 OR source = ?1 UNION "
                    "SELECT path FROM failures WHERE path = ?1 OR source = ?1 ORDER BY path",
                    (name,)).fetchall()
                out[name] = [r[0] for r in rows]
        return out

    def remove(self, paths: Iterable[str]) -> int:
        with self.transaction() as c:
            return self._delete(c, list(paths))

    def stats(self) -> StoreStats:
        with self._errors():
            c = self.conn
            kinds = dict(c.execute("SELECT kind, COUNT(*) FROM documents GROUP BY kind"))
            passages = c.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
            failures = c.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
            seconds = c.execute("SELECT TOTAL(duration_s) FROM documents").fetchone()[0]
            version = int(self._meta().get("schema_version", 0))
        size = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
        return StoreStats(self.path, sum(kinds.values()), passages, failures, seconds / 3600, size,
                          self.encoder, self.encoder_dim, version, kinds)

    def generation(self) -> int:
        with self._errors():
            return int(self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def bm25(self, match: str, limit: int) -> list[tuple[int, float]]:
        with self._errors():
            rows = self.conn.execute(
                "SELECT rowid, bm25(passages_fts) AS score FROM passages_fts "
                "WHERE passages_fts MATCH ? ORDER BY score LIMIT ?", (match, limit)).fetchall()
        return [(int(i), -float(s)) for i, s in rows]  # FTS5's bm25() is lower-is-better

    def term_counts(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """From FTS5's vocabulary (fts5vocab), cached until the store changes: counting a common
        word's passages reads its whole posting list, and questions share their common words."""
        gen = self.generation()
        if self._terms is None or self._terms[0] != gen:
            with self._errors():
                total = self.conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
            self._terms = (gen, int(total), {})
        _, total, cache = self._terms
        todo = [t for t in dict.fromkeys(terms) if t not in cache]
        if todo:
            marks = ",".join("?" * len(todo))
            with self._errors():
                found = dict(self.conn.execute(
                    f"SELECT term, doc FROM temp.passages_vocab WHERE term IN ({marks})", todo))
            cache.update({t: int(found.get(t, 0)) for t in todo})
        return total, {t: cache[t] for t in terms}

    def passages(self, ids: Sequence[int]) -> dict[int, StoredPassage]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._errors():
            rows = self.conn.execute(
                "SELECT p.id, p.document_id, d.path, d.title, p.ordinal, p.text, p.char_start, "
                "p.char_end, p.start_s, p.end_s FROM passages p JOIN documents d "
                f"ON d.id = p.document_id WHERE p.id IN ({marks})", [int(i) for i in ids]).fetchall()
        return {r[0]: StoredPassage(*r) for r in rows}

    def documents(self, ids: Sequence[int]) -> dict[int, StoredDocument]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._errors():
            rows = self.conn.execute(
                f"SELECT id, path, title, kind, duration_s FROM documents WHERE id IN ({marks})",
                [int(i) for i in ids]).fetchall()
        return {r[0]: StoredDocument(*r) for r in rows}

    def document_words(self, ids: Sequence[int]) -> dict[int, list[list[float]]]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._errors():
            rows = self.conn.execute(f"SELECT id, words FROM documents WHERE id IN ({marks}) AND words IS NOT NULL",
                                     [int(i) for i in ids]).fetchall()
        return {int(i): json.loads(w) for i, w in rows}

    def vector_rows(self) -> tuple[np.ndarray, np.ndarray]:
        with self._errors():
            rows = self.conn.execute("SELECT passage_id, vector FROM vectors ORDER BY passage_id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f2")
        if vecs.size != len(rows) * self.encoder_dim:
            raise DataError(f"{self.path}: stored vectors do not have {self.encoder_dim} dimensions")
        return ids, vecs.reshape(len(rows), self.encoder_dim)

    def close(self) -> None:
        if self.conn is None:
            return
        if self.writable:  # fold the WAL back into the file, so a closed index is one file
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()
        self.conn = None


def check_index_file(path: str | os.PathLike[str], create: bool = False) -> bool:
    """Whether `path` is a new index to create (it does not exist, or is empty, and `create`);
    one-line errors for what cannot be an index: a folder, a missing file, a file not SQLite."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; an index is one file (e.g. archive.sqlite)")
    if not path.exists():
        if not create:
            raise ConfigError(f"{path}: no such index (make one with `spokenqa index build`)")
        if not path.parent.is_dir():
            raise ConfigError(f"{path.parent}: no such folder for the index")
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if head and head != SQLITE_HEADER:
        raise DataError(f"{path}: not a SQLite database, so not a spokenqa index")
    return create and not head


def _connect(path: Path, writable: bool, timeout: float) -> sqlite3.Connection:
    # check_same_thread=False: a server opens the index once and reads it from its worker
    # threads; SQLite's serialized mode (sqlite3.threadsafety 3) guards the connection itself
    if writable or os.access(path, os.W_OK):
        # a reader that may write the file opens it read-write with query_only: it takes part in
        # WAL (sees each commit of a writer) and, last to close, removes the -wal/-shm files
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    else:  # a file we may not write (a read-only copy) is read as immutable: no -wal/-shm needed
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                               timeout=timeout, isolation_level=None, check_same_thread=False)
    with sqlite_errors(str(path), timeout):
        conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _read_mode(conn: sqlite3.Connection, path: str, writable: bool, timeout: float) -> None:
    """The connection's own view of the FTS5 vocabulary (a temporary table: nothing is written to
    the file), then query_only for a reader: created before, since query_only forbids it."""
    with sqlite_errors(path, timeout):
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.passages_vocab "
                     "USING fts5vocab(main, passages_fts, row)")
        conn.execute(f"PRAGMA query_only = {'OFF' if writable else 'ON'}")


def _write_mode(conn: sqlite3.Connection, path: str, timeout: float) -> None:
    """WAL, and commits that a power cut may lose but never half-apply (synchronous=NORMAL). Set
    only once the file is known to be a spokenqa index: WAL mode is written into the file's
    header, and someone else's database is not to be changed."""
    with sqlite_errors(path, timeout):
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")


def _statements(script: str) -> list[str]:
    """The SQL statements of `script` (trigger bodies kept whole)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


def _initialise(conn: sqlite3.Connection, path: str, encoder: str, dim: int, timeout: float) -> None:
    """Create the schema in an empty database (in one transaction; a database that has tables by
    then, another process's new index included, is left as it is for `_check_meta`)."""
    from spokenqa import __version__

    with sqlite_errors(path, timeout):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                conn.execute("ROLLBACK")
                return
            for statement in _statements(SCHEMA):  # not executescript: it would COMMIT first
                conn.execute(statement)
            meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "encoder": encoder,
                    "encoder_dim": dim, "generation": 0, "created_at": now(),
                    "spokenqa_version": __version__}
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [(k, str(v)) for k, v in meta.items()])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _check_meta(conn: sqlite3.Connection, path: str, timeout: float) -> None:
    with sqlite_errors(path, timeout):
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta"))
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            meta = {}
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: a SQLite database but not a spokenqa index")
    version = meta.get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise DataError(f"{path}: a spokenqa index of schema version {version}; this spokenqa reads "
                        f"version {SCHEMA_VERSION}: build the index again")


def open_store(path: str | os.PathLike[str], *, write: bool = False, create: bool = False,
               encoder: str | None = None, encoder_dim: int | None = None,
               timeout: float = DEFAULT_TIMEOUT_S) -> SQLiteStore:
    """Open the index at `path`: for reading, or with `write` for changing it; `create` makes a
    new one (a file that does not exist yet, or an empty one) for `encoder` of `encoder_dim`
    dimensions. A folder, a missing index, a file that is not SQLite, a database that is not a
    spokenqa index or one of another schema version: one-line ConfigError/DataError."""
    path = Path(path)
    new = check_index_file(path, create)
    write = write or create
    if write and path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: the index file is read-only; cannot change it")
    if new and (encoder is None or not encoder_dim):
        raise ValueError("a new index needs its encoder and dimension")
    conn = _connect(path, write, timeout)
    try:
        if new:
            _initialise(conn, str(path), encoder, encoder_dim, timeout)
        _check_meta(conn, str(path), timeout)
        _read_mode(conn, str(path), write, timeout)
        if write:
            _write_mode(conn, str(path), timeout)
        store = SQLiteStore(str(path), conn, write, timeout)
    except BaseException:
        conn.close()
        raise
    if encoder is not None and store.encoder != encoder:
        store.close()
        raise ConfigError(f"{path}: the index was built with encoder {store.encoder!r}, not "
                          f"{encoder!r}; its vectors and the question's must come from one encoder")
    return store


__all__ = ["DEFAULT_TIMEOUT_S", "FORMAT", "KINDS", "SCHEMA", "SCHEMA_VERSION", "Document",
           "SQLiteStore", "Store", "StoreStats", "StoredDocument", "StoredPassage", "check_index_file", "open_store", "sqlite_errors"]
