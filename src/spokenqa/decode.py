"""Start/end logits of every window -> one answer per question (plus its n-best list).

- `nbest` (default): top-n starts x top-n ends in each window of a question, spans outside the
  context, reversed or longer than `max_answer_tokens` dropped, score = start + end logit, best
  over all windows; probabilities are a softmax over the kept n-best scores.
- `argmax` (the reference): argmax start and argmax end independently, swapped when end < start.
  Unlike the reference, both are taken over context tokens only, so no answer can contain the
  question or [CLS]/[SEP].
Answer text is always sliced from the original context by character offsets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from spokenqa.data import Example
from spokenqa.features import Features


@dataclass
class Span:
    text: str
    start: int  # character offsets into the context
    end: int
    score: float  # start logit + end logit
    probability: float = 0.0


@dataclass
class Prediction:
    id: str
    text: str
    start: int
    end: int
    score: float
    probability: float
    nbest: list[Span] = field(default_factory=list)


def _window_candidates(
    start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray, n_best: int, max_tokens: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start_char, end_char, score) arrays for the valid top-n x top-n spans of one window."""
    context = offsets[:, 0] >= 0
    n_context = int(context.sum())
    if n_context == 0:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    s = np.where(context, start_logits, -np.inf)
    e = np.where(context, end_logits, -np.inf)
    k = min(n_best, n_context)
    top_s = np.argpartition(-s, k - 1)[:k]
    top_e = np.argpartition(-e, k - 1)[:k]
    length = top_e[None, :] - top_s[:, None] + 1  # (k, k)
    scores = s[top_s][:, None] + e[top_e][None, :]
    valid = (length >= 1) & (length <= max_tokens) & np.isfinite(scores)
    rows, cols = np.nonzero(valid)
    return offsets[top_s[rows], 0], offsets[top_e[cols], 1], scores[rows, cols]


def _window_argmax(
    start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray
) -> tuple[int, int, float] | None:
    context = offsets[:, 0] >= 0
    if not context.any():
        return None
    s = np.where(context, start_logits, -np.inf)
    e = np.where(context, end_logits, -np.inf)
    i, j = int(s.argmax()), int(e.argmax())
    if j < i:
        i, j = j, i
    return int(offsets[i, 0]), int(offsets[j, 1]), float(s[i] + e[j])


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = np.exp(scores - scores.max())
    return z / z.sum()


def decode(
    examples: list[Example],
    features: Features,
    start_logits: list[np.ndarray],
    end_logits: list[np.ndarray],
    decoder: str = "nbest",
    n_best: int = 20,
    max_answer_tokens: int = 30,
) -> list[Prediction]:
    """One Prediction per example, in example order."""
    windows: dict[int, list[int]] = defaultdict(list)
    for f_idx, e_idx in enumerate(features.example_index):
        windows[e_idx].append(f_idx)
    predictions = []
    for e_idx, example in enumerate(examples):
        spans: list[Span] = []
        if decoder == "argmax":
            best = None
            for f in windows[e_idx]:
                cand = _window_argmax(start_logits[f], end_logits[f], features.offsets[f])
                if cand is not None and (best is None or cand[2] > best[2]):
                    best = cand
            if best is not None:
                spans = [Span(example.context[best[0] : best[1]], best[0], best[1], best[2], 1.0)]
        else:
            parts = [
                _window_candidates(start_logits[f], end_logits[f], features.offsets[f], n_best, max_answer_tokens)
                for f in windows[e_idx]
            ]
            if parts:
                starts = np.concatenate([p[0] for p in parts])
                ends = np.concatenate([p[1] for p in parts])
                scores = np.concatenate([p[2] for p in parts])
                order = np.argsort(-scores, kind="stable")
                seen: set[tuple[int, int]] = set()
                for i in order:  # overlapping windows propose the same span: keep its best score
                    key = (int(starts[i]), int(ends[i]))
                    if key in seen:
                        continue
                    seen.add(key)
                    spans.append(Span(example.context[key[0] : key[1]], key[0], key[1], float(scores[i])))
                    if len(spans) == n_best:
                        break
                if spans:
                    probs = _softmax(np.array([s.score for s in spans]))
                    for span, p in zip(spans, probs):
                        span.probability = float(p)
        if spans:
            top = spans[0]
            predictions.append(Prediction(example.id, top.text, top.start, top.end, top.score, top.probability, spans))
        else:
            predictions.append(Prediction(example.id, "", 0, 0, float("-inf"), 0.0, []))
    return predictions
