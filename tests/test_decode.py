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


def log_softmax_over(values, positions):
    x = np.array(values, dtype=np.float64)[positions]
    return dict(zip(positions, x - np.log(np.exp(x).sum())))


CLS_AND_CONTEXT = [0, 3, 4, 5]  # the positions a window's softmax covers


def test_nbest_picks_best_valid_span_and_probabilities():
    start = logits([9, 9, 0, 1, 5, 2, 0])  # [CLS]/question are high but outside the context
    end = logits([9, 0, 0, 0, 3, 4, 9])
    pred = decode(EX, feats(), [start], [end], "nbest", n_best=20, max_answer_tokens=30)[0]
    # candidates by start + end logit: green-blue 9, green-green 8, blue-blue 6, red-blue 5, ...
    assert (pred.text, pred.start, pred.end) == ("green blue", 4, 14)
    ls, le = log_softmax_over(start, CLS_AND_CONTEXT), log_softmax_over(end, CLS_AND_CONTEXT)
    assert pred.score == pytest.approx(ls[4] + le[5])  # log p(start) + log p(end), [CLS] in the softmax
    assert [s.text for s in pred.nbest] == ["green blue", "green", "blue", "red green blue", "red green", "red"]
    # one window: shares are proportional to exp(start + end logit)
    sums = np.array([9, 8, 6, 5, 4, 1], dtype=np.float64)
    assert [s.probability for s in pred.nbest] == pytest.approx(list(np.exp(sums) / np.exp(sums).sum()))


def test_nbest_respects_max_answer_tokens_and_order():
    start = logits([0, 0, 0, 10, 0, 0, 0])
    end = logits([0, 0, 0, 0, 0, 10, 0])
    pred = decode(EX, feats(), [start], [end], "nbest", 20, max_answer_tokens=2)[0]
    assert pred.text != "red green blue"
    assert all(len(s.text.split()) <= 2 for s in pred.nbest)
    scores = [s.score for s in pred.nbest]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]  # best first
    assert pred.text == pred.nbest[0].text
    # the cap, not the logits, kept the 3-token span out: allowed 3 tokens, it wins
    assert decode(EX, feats(), [start], [end], "nbest", 20, max_answer_tokens=3)[0].text == "red green blue"


def test_nbest_takes_the_best_window_and_one_entry_per_text():
    weak = (logits([0, 0, 0, 0, 2, 0, 0]), logits([0, 0, 0, 0, 2, 0, 0]))
    strong = (logits([0, 0, 0, 0, 0, 5, 0]), logits([0, 0, 0, 0, 0, 5, 0]))
    pred = decode(EX, feats(2), [weak[0], strong[0]], [weak[1], strong[1]], "nbest", 20, 30)[0]
    assert pred.text == "blue"
    texts = [s.text for s in pred.nbest]
    assert len(set(texts)) == len(texts)


def test_nbest_pools_the_probability_of_one_text_across_windows():
    """'green' is never the most probable span of a window, but is first once pooled."""
    ctx = "green red green blue"
    ex = [Example("q", "t", ctx, "which", (Answer("green", 0),))]
    # window 1 sees "green red", window 2 sees "green blue" (both with [CLS] q [SEP] ... [SEP])
    w1 = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 5], [6, 9], [-1, -1]])
    w2 = np.array([[-1, -1], [-1, -1], [-1, -1], [10, 15], [16, 20], [-1, -1]])
    f = Features([np.zeros(6, dtype=np.int64)] * 2, None, [0, 0], [w1, w2])
    red = (logits([0, 0, 0, 2.0, 2.1, 0]), logits([0, 0, 0, 2.0, 2.1, 0]))  # green .199, red .243
    blue = (logits([0, 0, 0, 2.0, 2.15, 0]), logits([0, 0, 0, 2.0, 2.15, 0]))  # green .190, blue .256
    pred = decode(ex, f, [red[0], blue[0]], [red[1], blue[1]], "nbest", 20, 30)[0]
    assert pred.text == "green"
    assert (pred.start, pred.end) == (0, 5)  # the stronger of its two positions (window 1)
    assert [s.text for s in pred.nbest[:3]] == ["green", "blue", "red"]
    assert pred.nbest[0].score == pytest.approx(np.log(0.199 + 0.190), abs=2e-3)


def test_nbest_widens_word_pieces_to_whole_words():
    ctx = "the broncos won"
    ex = [Example("q", "t", ctx, "who", (Answer("broncos", 4),))]
    # [CLS] q [SEP] the bro ##ncos won [SEP]: the model points at the piece "##ncos" only
    offs = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 3], [4, 7], [7, 11], [12, 15], [-1, -1]])
    f = Features([np.zeros(8, dtype=np.int64)], None, [0], [offs])
    start = logits([0, 0, 0, 0, 0, 8, 0, 0])
    end = logits([0, 0, 0, 0, 0, 8, 0, 0])
    pred = decode(ex, f, [start], [end], "nbest", 20, 30)[0]
    assert (pred.text, pred.start, pred.end) == ("broncos", 4, 11)


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


def test_argmax_scores_the_positions_it_found_before_swapping():
    """A reversed pair is swapped for the span, but its score is start logit at the start found
    plus end logit at the end found (the swapped positions' logits would be another pair's)."""
    start = logits([0, 0, 0, 0, 1, 7, 0])  # start at blue (5)
    end = logits([0, 0, 0, 6, 2, 0, 0])  # end at red (3)
    pred = decode(EX, feats(), [start], [end], "argmax")[0]
    assert (pred.start, pred.end) == (0, 14)
    assert pred.score == pytest.approx(7 + 6)  # not start[3] + end[5] = 0


def test_argmax_picks_the_window_with_the_higher_found_pair():
    # window 1 reversed (start 5 = 4.0, end 3 = 4.0: 8), window 2 in order (start 4 = 3, end 4 = 3: 6)
    w1 = (logits([0, 0, 0, -9, 0, 4, 0]), logits([0, 0, 0, 4, 0, -9, 0]))
    w2 = (logits([0, 0, 0, 0, 3, 0, 0]), logits([0, 0, 0, 0, 3, 0, 0]))
    pred = decode(EX, feats(2), [w1[0], w2[0]], [w1[1], w2[1]], "argmax")[0]
    assert pred.text == "red green blue" and pred.score == pytest.approx(8)


def test_nbest_counts_a_span_two_windows_share_once():
    """Windows overlap: a span in the shared part is proposed by both. It is one candidate with
    the larger probability, so an answer in the overlap does not beat one seen once."""
    ctx = "green red blue"
    ex = [Example("q", "t", ctx, "which", (Answer("red", 6),))]
    # both windows hold "red" (6-9); window 1 also "green", window 2 also "blue"
    w1 = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 5], [6, 9], [-1, -1]])
    w2 = np.array([[-1, -1], [-1, -1], [-1, -1], [6, 9], [10, 14], [-1, -1]])
    f = Features([np.zeros(6, dtype=np.int64)] * 2, None, [0, 0], [w1, w2])
    one = (logits([0, 0, 0, 2.2, 2.0, 0]), logits([0, 0, 0, 2.2, 2.0, 0]))  # green > red
    two = (logits([0, 0, 0, 2.0, 2.2, 0]), logits([0, 0, 0, 2.0, 2.2, 0]))  # blue > red, red as in w1
    pred = decode(ex, f, [one[0], two[0]], [one[1], two[1]], "nbest", 20, 30)[0]
    by_text = {s.text: s for s in pred.nbest}
    assert by_text["red"].score == pytest.approx(by_text["green"].score - 0.4, abs=1e-6)
    assert pred.text in ("green", "blue")


def test_pipeline_decoder_takes_the_best_single_span_without_pooling():
    """The pooling example above: pooled, 'green' wins; by the pipeline's rule, the single most
    probable span ('blue', 0.256) wins."""
    ctx = "green red green blue"
    ex = [Example("q", "t", ctx, "which", (Answer("green", 0),))]
    w1 = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 5], [6, 9], [-1, -1]])
    w2 = np.array([[-1, -1], [-1, -1], [-1, -1], [10, 15], [16, 20], [-1, -1]])
    f = Features([np.zeros(6, dtype=np.int64)] * 2, None, [0, 0], [w1, w2])
    red = (logits([0, 0, 0, 2.0, 2.1, 0]), logits([0, 0, 0, 2.0, 2.1, 0]))
    blue = (logits([0, 0, 0, 2.0, 2.15, 0]), logits([0, 0, 0, 2.0, 2.15, 0]))
    pooled = decode(ex, f, [red[0], blue[0]], [red[1], blue[1]], "nbest", 20, 30)[0]
    single = decode(ex, f, [red[0], blue[0]], [red[1], blue[1]], "pipeline", 20, 30)[0]
    assert pooled.text == "green" and single.text == "blue"
    assert [s.text for s in single.nbest[:2]] == ["blue", "red"]
