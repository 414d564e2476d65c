"""The open setting: every question of a SQuAD-format file asked of a whole archive (its own
paragraph not given), scored as `spokenqa evaluate --index` prints it.

- answers: the official SQuAD EM/F1 of the top answer; an abstention predicts "" (the SQuAD 2.0
  convention), so a refused answerable question scores 0;
- retrieval: recall@1/5/20, whether a passage of the question's own paragraph is among the first
  k retrieved. A passage is of the question's paragraph when it has the paragraph's article title
  and its text is part of the paragraph's context (what the SQuAD indexer stores: one document per
  paragraph, titled by its article), so the archive may be built from another copy of the file;
- refusals: answered / abstained counts;
- latency per question (retrieval, reading, ranking; one question at a time), p50 and p95.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spokenqa.archive.read import ArchiveQA, ArchiveResult, Candidate
from spokenqa.archive.retrieve import Hit
from spokenqa.archive.store import StoredPassage
from spokenqa.data import Example
from spokenqa.metrics import question_scores

RECALL_AT = (1, 5, 20)


@dataclass
class Asked:
    """One question asked of the archive: what was retrieved (`depth` deep), the candidates of
    the passages read, and how long it took."""

    example: Example
    hits: list[Hit]
    candidates: list[Candidate]
    seconds: float

    def found_at(self) -> int | None:
        """Rank of the first retrieved passage of the question's own paragraph (None: not found)."""
        return next((h.rank for h in self.hits if own_paragraph(self.example, [h.passage])), None)


def own_paragraph(example: Example, passages: Iterable[StoredPassage]) -> bool:
    """Whether one of the passages is of the question's paragraph (its article's title, and a
    part of its context)."""
    context = example.context.lower()
    return any((p.title or "") == example.title and p.text.lower() in context for p in passages)


def ask_all(archive: ArchiveQA, examples: Sequence[Example], passages: int = 5, mode: str = "hybrid",
            weight: float | None = None, fusion: str | None = None, depth: int = max(RECALL_AT),
            batch: int = 1, progress: bool = False) -> list[Asked]:
    """Each question retrieved `depth` deep and its first `passages` passages read; `batch`
    questions are read together (1: each alone, so `seconds` is one question's latency)."""
    from tqdm.auto import tqdm

    out: list[Asked] = []
    if examples:  # loads the encoder and warms the reader: not part of any question's latency
        archive.candidates([examples[0].question], [archive.retrieve(examples[0].question, passages, mode, weight,
                                                                     fusion)])
    bar = tqdm(total=len(examples), desc="ask", unit="question", disable=not progress, leave=False)
    for lo in range(0, len(examples), batch):
        part = examples[lo:lo + batch]
        t0 = time.perf_counter()
        hits = [archive.retrieve(e.question, max(depth, passages), mode, weight, fusion) for e in part]
        candidates = archive.candidates([e.question for e in part], [h[:passages] for h in hits])
        took = (time.perf_counter() - t0) / len(part)
        out += [Asked(e, h, c, took) for e, h, c in zip(part, hits, candidates, strict=True)]
        bar.update(len(part))
    bar.close()
    return out


def right(text: str, example: Example) -> tuple[float, float]:
    """(EM, F1) of an answer against the question's gold answers (official definition)."""
    return question_scores(text, [a.text for a in example.answers])


def rank_all(archive: ArchiveQA, asked: Sequence[Asked], passages: int = 5, threshold: float | None = None
             ) -> list[ArchiveResult]:
    threshold = archive.calibration.threshold if threshold is None else threshold
    return [archive.rank(a.example.question, a.candidates, a.hits[:passages], 1, threshold) for a in asked]


def score(asked: Sequence[Asked], results: Sequence[ArchiveResult]) -> dict[str, Any]:
    """The open setting's numbers (see the module docstring)."""
    n = len(asked)
    em = f1 = 0.0
    answered_f1 = []
    for a, r in zip(asked, results, strict=True):
        q_em, q_f1 = right(r.answers[0].text if r.answers else "", a.example)
        em, f1 = em + q_em, f1 + q_f1
        if r.answers:
            answered_f1.append(q_f1)
    found = [a.found_at() for a in asked]
    ms = np.array([a.seconds * 1000 for a in asked])
    return {
        "official": {"exact_match": 100 * em / n, "f1": 100 * f1 / n, "questions": n},
        "retrieval": {f"recall@{k}": sum(f is not None and f <= k for f in found) / n for k in RECALL_AT},
        "answered": len(answered_f1),
        "abstained": n - len(answered_f1),
        "answered_f1": 100 * float(np.mean(answered_f1)) if answered_f1 else None,
        "latency_ms": {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95))},
    }


__all__ = ["RECALL_AT", "Asked", "ask_all", "own_paragraph", "rank_all", "right", "score"]
