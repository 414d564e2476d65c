"""Start/end logits of every window -> one answer per question (plus its n-best list).

- `nbest` (default): in each window, start and end logits become log-probabilities (a softmax
  over [CLS] and the context tokens, so windows of one question are comparable); the top-n
  starts x top-n ends form candidate spans, dropping spans outside the context, reversed or
  longer than `max_answer_tokens`; each span is widened to whole words (a start or end inside a
  word takes the whole word); candidates with the same answer text, from any window or token
  span, pool their probability p(start) x p(end). The answer is the text with the most pooled
  probability, at the position of its strongest candidate. Each window contributes its n best
  spans. This is the decision rule of
  transformers' question-answering pipeline (which keeps only 12 candidates per window), so the
  two agree given the same logits (docs/BENCHMARKS.md).
- `argmax` (the reference): argmax start and argmax end independently, swapped when end < start.
  Unlike the reference, both are taken over context tokens only, so no answer can contain the
  question or [CLS]/[SEP].
Answer text is always sliced from the original context by character offsets.

`no_answer_scores` gives each example's "not in this context" score, log p(start = [CLS]) +
log p(end = [CLS]) normalised as the n-best decoder normalises (the lowest over its windows, as
SQuAD 2.0 systems take it): an n-best span's `score` minus it compares a span with "no answer"
(in a one-window context exactly the logit difference), so it compares across contexts.
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
    score: float  # nbest: log of the pooled probability; argmax: start + end logit
    probability: float = 0.0  # nbest: share of the n-best list's pooled probability


@dataclass
class Prediction:
    id: str
    text: str
    start: int
    end: int
    score: float
    probability: float
    nbest: list[Span] = field(default_factory=list)


def _log_softmax(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """log softmax over the `keep` positions; -inf elsewhere."""
    x = np.where(keep, logits.astype(np.float64), -np.inf)
    top = x.max()
    return x - (top + np.log(np.exp(x - top).sum()))


def _widen_to_words(context: str, start: int, end: int) -> tuple[int, int]:
    """Grow [start, end) to whole words: a word piece predicted alone becomes its word."""
    while start > 0 and context[start - 1].isalnum() and context[start].isalnum():
        start -= 1
    while end < len(context) and context[end - 1].isalnum() and context[end].isalnum():
        end += 1
    return start, end


def _window_candidates(
    start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray, n_best: int, max_tokens: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start_char, end_char, log p(start) + log p(end)) of the n_best most probable valid spans
    among the top-n starts x top-n ends of one window (probabilities normalised over [CLS] and
    the context tokens)."""
    context = offsets[:, 0] >= 0
    n_context = int(context.sum())
    if n_context == 0:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    normalised = context.copy()
    normalised[0] = True  # [CLS]: the model's "no answer here" mass, as in the HF pipeline
    s = np.where(context, _log_softmax(start_logits, normalised), -np.inf)
    e = np.where(context, _log_softmax(end_logits, normalised), -np.inf)
    k = min(n_best, n_context)
    top_s = np.argpartition(-s, k - 1)[:k]
    top_e = np.argpartition(-e, k - 1)[:k]
    length = top_e[None, :] - top_s[:, None] + 1  # (k, k)
    scores = s[top_s][:, None] + e[top_e][None, :]
    valid = (length >= 1) & (length <= max_tokens) & np.isfinite(scores)
    rows, cols = np.nonzero(valid)
    kept = np.argsort(-scores[rows, cols], kind="stable")[:n_best]  # the window's n_best spans
    rows, cols = rows[kept], cols[kept]
    return offsets[top_s[rows], 0], offsets[top_e[cols], 1], scores[rows, cols]


def _pooled_nbest(
    context: str, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_best: int, pool: bool = True
) -> list[Span]:
    """Candidates of all windows -> up to n_best Spans, one per answer text, best first: each
    text's probability summed over its candidates (`pool`), or its best candidate's."""
    starts = np.concatenate([p[0] for p in parts])
    ends = np.concatenate([p[1] for p in parts])
    log_p = np.concatenate([p[2] for p in parts])
    if len(log_p) == 0:
        return []
    order = np.argsort(-log_p, kind="stable")
    prob = np.exp(log_p)
    mass: dict[str, float] = {}
    where: dict[str, tuple[int, int]] = {}  # the strongest candidate of each text
    seen: set[tuple[int, int]] = set()  # character spans already counted (best window first)
    for i in order:
        span = (int(starts[i]), int(ends[i]))
        if span in seen:  # the same span again, from a window that overlaps a stronger one
            continue
        seen.add(span)
        a, b = _widen_to_words(context, *span)
        text = context[a:b]
        if text not in mass:
            mass[text], where[text] = 0.0, (a, b)
        elif not pool:
            continue
        mass[text] += float(prob[i])
    ranked = sorted(mass, key=mass.__getitem__, reverse=True)[:n_best]
    total = sum(mass[t] for t in ranked)
    return [Span(t, *where[t], float(np.log(mass[t])), mass[t] / total) for t in ranked]


def _window_argmax(
    start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray
) -> tuple[int, int, float] | None:
    context = offsets[:, 0] >= 0
    if not context.any():
        return None
    s = np.where(context, start_logits, -np.inf)
    e = np.where(context, end_logits, -np.inf)
    i, j = int(s.argmax()), int(e.argmax())
    score = float(s[i] + e[j])  # the logits of the positions found, before any swap
    if j < i:
        i, j = j, i
    return int(offsets[i, 0]), int(offsets[j, 1]), score


def no_answer_scores(n_examples: int, features: Features, start_logits: list[np.ndarray],
                     end_logits: list[np.ndarray]) -> np.ndarray:
    """Per example, the lowest over its windows of log p(start = [CLS]) + log p(end = [CLS]),
    each a softmax over [CLS] and the context tokens as in `_window_candidates` (-inf for an
    example without windows)."""
    out = np.full(n_examples, np.inf)
    for f, e_idx in enumerate(features.example_index):
        keep = features.offsets[f][:, 0] >= 0
        keep[0] = True
        null = _log_softmax(start_logits[f], keep)[0] + _log_softmax(end_logits[f], keep)[0]
        out[e_idx] = min(out[e_idx], null)
    out[np.isinf(out)] = -np.inf
    return out


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
            spans = _pooled_nbest(example.context, parts, n_best, pool=decoder == "nbest") if parts else []
        if spans:
            top = spans[0]
            predictions.append(Prediction(example.id, top.text, top.start, top.end, top.score, top.probability, spans))
        else:
            predictions.append(Prediction(example.id, "", 0, 0, float("-inf"), 0.0, []))
    return predictions
