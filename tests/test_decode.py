import numpy as np
import pytest

from spokenqa.data import Answer, Example
from spokenqa.decode import decode
from spokenqa.features import Features

CTX = "red green blue"
# tokens: [CLS] q [SEP] red green blue [SEP]
OFFSETS = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 3], [4, 9], [10, 14], [-1, -1]])


def feats(n_windows=1, offsets=OFFSETS):
    ids = [np.zeros(len(offsets), dtype=np.int64)] * n_windows
    return Features(ids, None, [0] * n_windows, [offsets] * n_windows)


def logits(values):
    return np.array(values, dtype=np.float32)


EX = [Example("q", "t", CTX, "which", (Answer("green", 4),))]


def test_nbest_picks_best_valid_span_and_probabilities():
    start = logits([9, 9, 0, 1, 5, 2, 0])  # [CLS]/question are high but outside the context
    end = logits([9, 0, 0, 0, 3, 4, 9])
    pred = decode(EX, feats(), [start], [end], "nbest", n_best=20, max_answer_tokens=30)[0]
    # candidates: green-green 8, green-blue 9, red-green 4, red-blue 5, red-red 1, blue-blue 6
    assert (pred.text, pred.start, pred.end, pred.score) == ("green blue", 4, 14, 9.0)
    scores = [s.score for s in pred.nbest]
    assert scores == sorted(scores, reverse=True) and len(scores) == 6
    probs = np.exp(np.array(scores) - 9.0)
    assert [s.probability for s in pred.nbest] == pytest.approx(list(probs / probs.sum()))


def test_nbest_respects_max_answer_tokens_and_order():
    start = logits([0, 0, 0, 10, 0, 0, 0])
    end = logits([0, 0, 0, 0, 0, 10, 0])
    pred = decode(EX, feats(), [start], [end], "nbest", 20, max_answer_tokens=2)[0]
    assert pred.text != "red green blue"
    assert all(len(s.text.split()) <= 2 for s in pred.nbest)


def test_nbest_takes_the_best_window_and_dedupes_spans():
    weak = (logits([0, 0, 0, 0, 2, 0, 0]), logits([0, 0, 0, 0, 2, 0, 0]))
    strong = (logits([0, 0, 0, 0, 0, 5, 0]), logits([0, 0, 0, 0, 0, 5, 0]))
    pred = decode(EX, feats(2), [weak[0], strong[0]], [weak[1], strong[1]], "nbest", 20, 30)[0]
    assert pred.text == "blue" and pred.score == 10.0
    assert len({(s.start, s.end) for s in pred.nbest}) == len(pred.nbest)


def test_argmax_swaps_reversed_ends_and_never_leaves_the_context():
    start = logits([50, 0, 0, 0, 0, 7, 0])  # [CLS] highest overall: must be ignored
    end = logits([50, 0, 0, 6, 0, 0, 50])
    pred = decode(EX, feats(), [start], [end], "argmax")[0]
    # context argmax start = blue (5), end = red (3) -> swapped to red..blue
    assert (pred.text, pred.start, pred.end) == ("red green blue", 0, 14)


def test_no_context_tokens_gives_empty_answer():
    empty = np.full_like(OFFSETS, -1)
    pred = decode(EX, feats(offsets=empty), [logits([0] * 7)], [logits([0] * 7)], "nbest")[0]
    assert pred.text == "" and pred.nbest == []
