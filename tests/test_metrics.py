import pytest

from spokenqa.data import Answer, Example
from spokenqa.metrics import normalize_answer, official_scores, reference_scores, select_value


def ex(qid, *golds):
    return Example(qid, "", "", "q", tuple(Answer(g, 0) for g in golds))


def test_normalize_answer():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_official_takes_max_over_golds_and_averages_questions():
    examples = [ex("1", "denver broncos", "the broncos"), ex("2", "twenty four to ten")]
    preds = {"1": "Broncos", "2": "twenty four"}
    s = official_scores(examples, preds)
    # q1: EM 1 (normalised "broncos" == "broncos"), F1 1. q2: EM 0; P=2/2, R=2/4 -> F1=2/3
    assert s["exact_match"] == pytest.approx(50.0)
    assert s["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert s["questions"] == 2


def test_reference_scores_each_answer_entry():
    examples = [ex("1", "the broncos", "denver  broncos"), ex("2", "ten")]
    preds = {"1": "the broncos", "2": "twenty four to ten"}
    s = reference_scores(examples, preds)
    assert s["answers"] == 3
    assert s["em"] == pytest.approx(1 / 3)
    # F1 entries: 1.0; "the broncos" vs "denver broncos" -> 1/2; "twenty four to ten" vs "ten" -> P=1/4,R=1 -> 0.4
    assert s["f1"] == pytest.approx((1 + 0.5 + 0.4) / 3)
    # WER corpus: ref words 2+2+1=5; errors: 0 + 1 sub ("the"/"denver") + 3 insertions = 4
    assert s["wer"] == pytest.approx(4 / 5)
    assert select_value({"reference": s, "official": {}}, "reference_wer") == pytest.approx(0.8)


def test_wer_can_exceed_one():
    s = reference_scores([ex("1", "ten")], {"1": "one two three ten"})
    assert s["wer"] == pytest.approx(3.0)


def test_empty_prediction_scores_zero():
    s = official_scores([ex("1", "ten")], {"1": ""})
    assert s == {"exact_match": 0.0, "f1": 0.0, "questions": 1}
    assert reference_scores([ex("1", "ten")], {"1": ""})["wer"] == pytest.approx(1.0)
