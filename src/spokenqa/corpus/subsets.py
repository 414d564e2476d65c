"""Parts of a SQuAD-format file: a seeded sample of its questions (to mix training sets in fixed
proportions), and the file without the paragraphs a synth set speaks (so that set can validate a
model trained on the rest). Both take valid SQuAD (`spokenqa.data.validate_squad`) and return a
new dict; `spokenqa data sample` and `data holdout` run them.
"""

from __future__ import annotations

import random
from typing import Any

from spokenqa.errors import ConfigError


def sample_questions(data: dict[str, Any], n: int, seed: int,
                     source: str = "<data>") -> dict[str, Any]:
    """Keep a seeded random sample of `n` questions; paragraphs and articles left empty go.

    Used to mix training sets in fixed proportions (equal-step comparisons of data recipes).
    """
    places = [
        (a, p, q)
        for a, article in enumerate(data["data"])
        for p, paragraph in enumerate(article["paragraphs"])
        for q in range(len(paragraph["qas"]))
    ]
    if not 0 < n <= len(places):
        raise ConfigError(f"{source}: --questions must be in 1..{len(places)} (the file's "
                          f"questions), got {n}")
    keep = set(random.Random(seed).sample(places, n))
    articles = []
    for a, article in enumerate(data["data"]):
        paragraphs = []
        for p, paragraph in enumerate(article["paragraphs"]):
            qas = [qa for q, qa in enumerate(paragraph["qas"]) if (a, p, q) in keep]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    return {**data, "data": articles}


def drop_paragraphs(data: dict[str, Any], contexts: set[str]) -> tuple[dict[str, Any], int, int]:
    """Remove the paragraphs whose context is in `contexts`; articles left empty go.

    The synth set was spoken from SQuAD train paragraphs. A model trained on spokenised SQuAD
    train has seen those paragraphs and their questions, so validating on the synth set without
    this step would score memory, not transfer to real ASR. Paragraphs are matched by their text,
    not by position, so any ordering or subset of SQuAD train works.

    Returns (data, paragraphs dropped, questions dropped).
    """
    articles, paragraphs_dropped, questions_dropped = [], 0, 0
    for article in data["data"]:
        kept = []
        for paragraph in article["paragraphs"]:
            if paragraph["context"] in contexts:
                paragraphs_dropped += 1
                questions_dropped += len(paragraph["qas"])
            else:
                kept.append(paragraph)
        if kept:
            articles.append({**article, "paragraphs": kept})
    return {**data, "data": articles}, paragraphs_dropped, questions_dropped


__all__ = ["drop_paragraphs", "sample_questions"]
