"""Questions over passages that do not hold their answer: SQuAD 2.0-style training negatives.

A reader trained only on passages that hold the answer never learns to say "not here": its span
scores do not compare across passages, so answering over many retrieved passages (an archive)
picks confident spans in the wrong passage. Open-domain readers are trained with such passages
labelled at [CLS]. `add_negatives` makes them from a SQuAD-format file: for a seeded share of the
questions, a copy of the question is put on another paragraph of the same article (the one sharing
most of the question's words: the passage a retriever would most likely return by mistake) that
contains none of the question's answer texts, marked `"is_impossible": true` with no answers, as
SQuAD 2.0 marks its unanswerable questions. `spokenqa train` labels every window of such a
question at [CLS].
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from spokenqa.errors import DataError

# Words that say nothing about which paragraph a question is about.
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "had",
    "has", "have", "how", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the",
    "their", "this", "to", "was", "were", "what", "when", "where", "which", "who", "whom",
    "whose", "why", "with",
})
_WORD = re.compile(r"[a-z0-9']+")

NEGATIVE_SUFFIX = "-neg"  # appended to the question id of the copy
_SAMPLED = 20  # paragraphs drawn from the whole file for a question whose article has no other


@dataclass
class NegativeStats:
    questions: int = 0  # answerable questions read
    negatives: int = 0  # copies added on a paragraph without their answer
    no_candidate: int = 0  # drawn, but every other paragraph of the article holds an answer text

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def add_negatives(
    data: dict[str, Any], rate: float, seed: int, source: str = "<data>"
) -> tuple[dict[str, Any], NegativeStats]:
    """`data` with, for a share `rate` of its answerable questions, an `is_impossible` copy on
    the most similar other paragraph of the same article that holds none of its answers (for an
    article of one paragraph: the most similar of `_SAMPLED` paragraphs drawn from the file).

    `data` must be valid SQuAD (`spokenqa.data.validate_squad`); it is not changed.
    """
    rng = random.Random(seed)
    stats = NegativeStats()
    articles = [{**a, "paragraphs": [dict(p, qas=list(p["qas"])) for p in a["paragraphs"]]} for a in data["data"]]
    places = [(a, p) for a, article in enumerate(articles) for p in range(len(article["paragraphs"]))]
    words = {place: _words(articles[place[0]]["paragraphs"][place[1]]["context"]) for place in places}
    lowered = {place: articles[place[0]]["paragraphs"][place[1]]["context"].lower() for place in places}
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answers = [x["text"].lower() for x in qa.get("answers", []) if x["text"].strip()]
                if qa.get("is_impossible") or not answers:
                    continue
                if not isinstance(qa.get("id"), str):
                    raise DataError(f"{source}: article {a} ({article.get('title', '')!r}), paragraph {p}: "
                                    "a question without a string 'id'")
                stats.questions += 1
                if rng.random() >= rate:
                    continue
                others = [(a, o) for o in range(len(article["paragraphs"])) if o != p]
                if not others:
                    others = [x for x in rng.sample(places, min(_SAMPLED, len(places))) if x != (a, p)]
                asked = _words(qa["question"])
                candidates = [(len(asked & words[o]), rng.random(), o) for o in others
                              if not any(x in lowered[o] for x in answers)]
                if not candidates:
                    stats.no_candidate += 1
                    continue
                oa, op = max(candidates)[2]
                articles[oa]["paragraphs"][op]["qas"].append({
                    "id": qa["id"] + NEGATIVE_SUFFIX, "question": qa["question"],
                    "answers": [], "is_impossible": True,
                })
                stats.negatives += 1
    return {**data, "data": articles}, stats
