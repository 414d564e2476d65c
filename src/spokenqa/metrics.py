"""Two metric families, named apart so nobody confuses them.

- `official`: the SQuAD v1.1 evaluation script's definition (lower-case, strip punctuation and the
  articles a/an/the, collapse whitespace; per question the max over its gold answers; mean over
  questions; percent). Comparable with every published SQuAD / Spoken-SQuAD number.
- transcript word error rate (`word_error_rate`): ASR output against its source text, both
  through `wer_text`; used for simulated noise and for real transcripts alike.
- `reference`: the reference study's definition (per answer entry, whitespace normalisation only,
  EM, token F1, and corpus-level WER from jiwer between gold and predicted strings; fractions).
  Kept so the study's table can be reproduced; it scores the same prediction once per gold entry.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import jiwer

from spokenqa.data import Example

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1: lower case, no punctuation, no articles, single spaces."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def wer_text(text: str) -> str:
    """A transcript or its source as words for WER: lower case, apostrophes dropped, anything
    but a-z and 0-9 a space. (Digits stay digits: spokenise a source first to compare it with
    ASR output, which has none.)"""
    text = text.lower().replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text).split())


def word_error_rate(refs: list[str], hyps: list[str]) -> jiwer.WordOutput | None:
    """Corpus WER of `hyps` against `refs` through `wer_text` (pairs whose reference is empty
    are left out; None if none is left): `.wer`, `.substitutions`, `.deletions`, `.insertions`."""
    pairs = [(wer_text(r), wer_text(h)) for r, h in zip(refs, hyps)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return None
    return jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def question_scores(prediction: str, golds: list[str]) -> tuple[float, float]:
    """One question's SQuAD v1.1 (EM, F1), fractions: the best over its gold answers."""
    pred = normalize_answer(prediction)
    golds = [normalize_answer(g) for g in golds]
    return (max(float(pred == g) for g in golds), max(_f1(pred.split(), g.split()) for g in golds))


def official_scores(examples: list[Example], predictions: dict[str, str]) -> dict[str, float | int]:
    """SQuAD v1.1 EM and F1 in percent over the examples' questions."""
    em = f1 = 0.0
    for example in examples:
        q_em, q_f1 = question_scores(predictions.get(example.id, ""), [a.text for a in example.answers])
        em += q_em
        f1 += q_f1
    n = len(examples)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "questions": n}


def reference_scores(examples: list[Example], predictions: dict[str, str]) -> dict[str, float | int]:
    """Per answer entry: whitespace-normalised EM, token F1, corpus WER (jiwer; may exceed 1)."""
    golds, preds = [], []
    for example in examples:
        pred = " ".join(predictions.get(example.id, "").split())
        for answer in example.answers:
            golds.append(" ".join(answer.text.split()))
            preds.append(pred)
    em = sum(p == g for p, g in zip(preds, golds)) / len(golds)
    f1 = sum(_f1(p.split(), g.split()) for p, g in zip(preds, golds)) / len(golds)
    return {"em": em, "f1": f1, "wer": float(jiwer.wer(golds, preds)), "answers": len(golds)}


def all_scores(examples: list[Example], predictions: dict[str, str]) -> dict[str, dict]:
    return {
        "official": official_scores(examples, predictions),
        "reference": reference_scores(examples, predictions),
    }


def select_value(scores: dict[str, dict], metric: str) -> float:
    """The value of `official_f1`, `reference_wer`... in an `all_scores` result."""
    family, name = metric.split("_", 1)
    key = {"official": {"em": "exact_match", "f1": "f1"}, "reference": {}}[family].get(name, name)
    return float(scores[family][key])
