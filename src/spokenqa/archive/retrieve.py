"""Finding the passages of an archive that may answer a question: `search`.

- ``bm25``: FTS5's BM25 over the passages' text. The question is spokenised first
  (``spokenqa.spoken.spokenize``: "1998" -> "nineteen ninety eight", as ASR transcripts have it)
  and its words, with those of the question as typed (text transcripts keep their digits), are
  each quoted and OR-ed: no question can make an FTS5 syntax error, and one with no words gives
  no hits.
- ``dense``: the spokenised question's vector (the index's encoder) against every passage vector
  (`Store.nearest`: an exact inner product in numpy; vectors are unit length, so cosine
  similarity). The matrix is loaded once per Store and again only after the store changed.
- ``hybrid`` (the default): both lists, `DEPTH` deep, fused. ``fusion="rrf"`` (the default):
  reciprocal-rank fusion, weight / (60 + dense rank) + (1 - weight) / (60 + BM25 rank), the
  constant 60 of Cormack, Clarke and Buettcher (SIGIR 2009); ``fusion="score"``: weight x dense
  + (1 - weight) x BM25, each min-max normalised over the candidates. `weight` (the dense share)
  is 0.5 by default, an even mix, until validation data chooses it (docs/ARCHIVE.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spokenqa.archive.store import Store, StoredPassage
from spokenqa.errors import ConfigError

MODES = ("hybrid", "bm25", "dense")
FUSIONS = ("rrf", "score")
DEFAULT_WEIGHT = 0.5  # the dense share of a hybrid score: an even mix (not tuned)
RRF_K = 60
DEPTH = 100  # candidates taken from each retriever before fusion (at least k)
_TERM = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Hit:
    rank: int  # 1, 2, ...
    passage: StoredPassage
    bm25: float | None  # FTS5 BM25 (higher is better); None: not among BM25's candidates
    dense: float | None  # cosine similarity; None in bm25 mode
    fused: float  # the score the hits are ranked by

    def to_dict(self) -> dict[str, Any]:
        p = self.passage
        return {
            "rank": self.rank,
            "document": {"id": p.document_id, "path": p.path, "title": p.title},
            "passage": {"id": p.id, "ordinal": p.ordinal, "text": p.text, "char_start": p.char_start,
                        "char_end": p.char_end, "start_s": p.start_s, "end_s": p.end_s},
            "scores": {"bm25": self.bm25, "dense": self.dense, "fused": self.fused},
        }


def spoken_question(question: str) -> str:
    from spokenqa.spoken import spokenize

    return spokenize(question)


def question_terms(question: str, spoken: str | None = None) -> list[str]:
    """The words BM25 looks for: the spokenised question's, then the typed question's (lower
    case), each once, in order."""
    spoken = spoken_question(question) if spoken is None else spoken
    terms = _TERM.findall(spoken.lower()) + _TERM.findall(question.lower())
    return list(dict.fromkeys(terms))


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every term a quoted string, OR-ed (FTS5 syntax cannot leak in)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def bm25_ranking(store: Store, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
    """BM25's best `limit` passages for `terms`, leaving out the terms that half the passages or
    more hold when others are there: FTS5 clamps their idf to 1e-6, so they cannot change the
    ranking, but scoring their posting lists ("the", "of", "in": nearly every passage) was most of
    a query's time (100,000 passages: 240 ms -> 105 ms a question, the same first passage for
    40 of 40 questions; docs/ARCHIVE.md)."""
    if not terms:
        return []
    total, counts = store.term_counts(terms)
    informative = [t for t in terms if 0 < counts[t] < total / 2]
    return store.bm25(fts_query(informative or terms), limit)


def question_vector(store: Store, text: str, encoder: Any = None) -> np.ndarray:
    """`text` through the index's encoder (float32, unit length)."""
    from spokenqa.archive.embed import load_encoder

    encoder = encoder or load_encoder(store.encoder)
    if encoder.dim != store.encoder_dim:
        raise ConfigError(f"{store.path}: the index holds {store.encoder_dim}-dim vectors, the "
                          f"encoder gives {encoder.dim}")
    return encoder.encode([text], threads=1)[0].astype(np.float32)  # one thread: embed.torch_threads


def fuse(bm25: Sequence[tuple[int, float]], dense: Sequence[tuple[int, float]], weight: float,
         fusion: str) -> dict[int, float]:
    """Fused score per candidate passage id (see the module docstring)."""
    if fusion == "rrf":
        out: dict[int, float] = {}
        for share, ranking in ((1 - weight, bm25), (weight, dense)):
            for rank, (pid, _) in enumerate(ranking, 1):
                out[pid] = out.get(pid, 0.0) + share / (RRF_K + rank)
        return out
    out = {}
    for share, ranking in ((1 - weight, bm25), (weight, dense)):
        if not ranking:
            continue
        values = np.array([s for _, s in ranking])
        lo, span = values.min(), values.max() - values.min()
        for pid, s in ranking:
            out[pid] = out.get(pid, 0.0) + share * ((s - lo) / span if span > 0 else 1.0)
    return out


def _check(k: int, mode: str, weight: float, fusion: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a whole number of at least 1, got {k!r}")
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r} (choose from {', '.join(MODES)})")
    if fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {fusion!r} (choose from {', '.join(FUSIONS)})")
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"weight (the dense share) must be in [0, 1], got {weight}")


def search(store: Store, question: str, k: int = 5, mode: str = "hybrid",
           weight: float = DEFAULT_WEIGHT, fusion: str = "rrf", encoder: Any = None) -> list[Hit]:
    """The `k` passages of `store` best for `question`, best first (see the module docstring).
    `encoder`: an already loaded `spokenqa.archive.embed.Encoder` (default: the index's own,
    loaded once per process)."""
    _check(k, mode, weight, fusion)
    spoken = spoken_question(question)
    terms = question_terms(question, spoken)
    if not terms:
        return []
    depth = max(DEPTH, k)
    bm25 = bm25_ranking(store, terms, depth) if mode != "dense" else []
    dense: list[tuple[int, float]] = []
    query = None
    if mode != "bm25":
        query = question_vector(store, spoken or question, encoder)
        dense = store.nearest(query, depth)
    if mode == "bm25":
        fused = dict(bm25)
    elif mode == "dense":
        fused = dict(dense)
    else:
        fused = fuse(bm25, dense, weight, fusion)
    best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    rows = store.passages([pid for pid, _ in best])
    bm25_of = dict(bm25)
    dense_of = store.similarity(query, [pid for pid, _ in best]) if query is not None else {}
    return [Hit(rank, rows[pid], bm25_of.get(pid), dense_of.get(pid), score)
            for rank, (pid, score) in enumerate(best, 1) if pid in rows]


__all__ = ["DEFAULT_WEIGHT", "DEPTH", "FUSIONS", "MODES", "RRF_K", "Hit", "bm25_ranking",
           "fts_query", "fuse", "question_terms", "question_vector", "search"]
