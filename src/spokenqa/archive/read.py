"""Ask an archive: the passages that may hold the answer are found (`retrieve.search`), read by
the QA model in one batch, and the answers ranked across passages with a calibrated probability
that each is right; below a threshold the answer is "not in this archive".

    from spokenqa.archive.read import ArchiveQA

    with ArchiveQA.open("archive.sqlite") as archive:  # the shipped reader and its calibration
        result = archive.ask("when was the bridge built")[0]
        if result.abstained:
            print("not in this archive")
        else:
            best = result.answers[0]
            print(best.document["path"], best.start_s, best.text, best.probability)

`ArchiveQA.open(index, qa=None, calibration=None)`: `qa` a loaded `spokenqa.qa.QA` (default: the
shipped model, `QA.load()`), `calibration` a `Calibration` or its file (default: the reader's
own, `archive_calibration.json` in its checkpoint folder; without one the scores are not
calibrated and the threshold is 0.5, said on stderr).

`ask(questions, passages=5, top_k=1, mode="hybrid", weight=None, fusion=None, threshold=None)`
retrieves `passages` passages per question (retrieval settings not given: those the calibration
chose on validation data), reads every (question, passage) pair of the call in one batch, keeps
each pair's n-best spans and its no-answer score, and ranks the answers of a question by the
calibration's score (the span against "no answer", with the retrieval rank and similarity; see
`spokenqa.archive.calibrate`). An answer text found in several passages is one answer (its
strongest place). `probability` is P(the answer is right); when the best answer's is below
`threshold` the result is `abstained` and has no answers. `start`/`end` are character offsets
into the passage's text; `start_s`/`end_s` the seconds of the recording when the document has
word times, else the passage's (None for text).

An ArchiveQA keeps its index open for reading (WAL: `index add` may write meanwhile) and its
reader loaded: open once, ask many times.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spokenqa.archive.calibrate import (
    NO_RIVAL_GAP,
    Calibration,
    candidate_row,
    load_for_reader,
    uncalibrated,
)
from spokenqa.archive.retrieve import MODES, Hit, question_vector, search, spoken_question
from spokenqa.archive.store import Store, StoredPassage, open_store
from spokenqa.data import Example, check_questions, lower_keep_offsets
from spokenqa.errors import ConfigError, notice
from spokenqa.metrics import normalize_answer


@dataclass
class ArchiveAnswer:
    text: str
    probability: float  # calibrated P(the answer is right)
    start: int  # character offsets into the passage's text
    end: int
    start_s: float | None  # seconds in the recording (word times), else the passage's, else None
    end_s: float | None
    document: dict[str, Any]  # id, path, title
    passage: dict[str, Any]  # id, ordinal, text, char_start, char_end, start_s, end_s
    features: dict[str, Any]  # the raw scores: span, no_answer, margin, share, rank, fused, bm25, dense, score

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ArchiveResult:
    question: str
    answers: list[ArchiveAnswer]  # best first; empty when abstained
    abstained: bool  # "not in this archive": the best answer's probability is below `threshold`
    threshold: float
    hits: list[Hit] = field(default_factory=list)  # the passages read, best first

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answers": [a.to_dict() for a in self.answers],
                "abstained": self.abstained, "threshold": self.threshold,
                "hits": [h.to_dict() for h in self.hits]}


@dataclass
class Candidate:
    """One span of one passage, before ranking: what calibration is fit on."""

    text: str  # from the passage's original text
    start: int
    end: int
    hit: Hit
    row: dict[str, float]  # the calibration's candidate features
    first: bool  # the passage's best span


def seconds(words: Sequence[Sequence[float]], char_start: int, char_end: int) -> tuple[float, float] | None:
    """Seconds of the words that overlap the document's characters [char_start, char_end)."""
    inside = [w for w in words if w[1] > char_start and w[0] < char_end]
    return (float(inside[0][2]), float(inside[-1][3])) if inside else None


def _document(p: StoredPassage) -> dict[str, Any]:
    return {"id": p.document_id, "path": p.path, "title": p.title}


def _passage(p: StoredPassage) -> dict[str, Any]:
    return {"id": p.id, "ordinal": p.ordinal, "text": p.text, "char_start": p.char_start,
            "char_end": p.char_end, "start_s": p.start_s, "end_s": p.end_s}


def answer_key(text: str) -> str:
    """Answers with the same key are one answer: the official normalisation (case, punctuation,
    articles), or the lower-cased text where that leaves nothing."""
    return normalize_answer(text) or text.lower().strip()


def ranked(calibration: Calibration, candidates: Sequence[Candidate], top_k: int
           ) -> list[tuple[Candidate, dict[str, float]]]:
    """A question's `top_k` answers by the calibration's candidate score, best first: each answer
    text once (its strongest candidate), with its answer-model features: `score`, `gap` to the
    best other answer text, `agree` (the share of passages read whose best span is this text)."""
    scores = calibration.scores([c.row for c in candidates])
    best: dict[str, int] = {}  # answer key -> its strongest candidate
    for i in np.argsort(-scores, kind="stable"):
        best.setdefault(answer_key(candidates[i].text), int(i))
    read = max(1, len({c.hit.passage.id for c in candidates}))
    firsts = [answer_key(c.text) for c in candidates if c.first]
    out = []
    for key in list(best)[:top_k]:
        rivals = [scores[i] for k, i in best.items() if k != key]
        mine = float(scores[best[key]])
        out.append((candidates[best[key]], {"score": mine, "gap": mine - float(max(rivals)) if rivals else NO_RIVAL_GAP,
                                             "agree": firsts.count(key) / read}))
    return out


class ArchiveQA:
    """An index and a reader, ready to answer (see the module docstring)."""

    def __init__(self, store: Store, qa: Any, calibration: Calibration) -> None:
        self.store, self.qa, self.calibration = store, qa, calibration

    @classmethod
    def open(cls, index: str | os.PathLike[str], qa: Any = None,
             calibration: Calibration | str | os.PathLike[str] | None = None) -> ArchiveQA:
        store = open_store(index)
        try:
            if qa is None:
                from spokenqa.qa import QA

                qa = QA.load()
            if not isinstance(calibration, Calibration):
                found = load_for_reader(qa.folder, calibration)
                if found is None:
                    notice(f"no archive calibration for the reader {qa.folder or '(given)'}: scores are "
                           "not probabilities and the threshold is 0.5; fit one with `spokenqa index calibrate`")
                    found = uncalibrated()
                calibration = found
        except BaseException:
            store.close()
            raise
        return cls(store, qa, calibration)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ArchiveQA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the steps of `ask`, public for evaluation and calibration

    def settings(self, mode: str, weight: float | None, fusion: str | None) -> dict[str, Any]:
        """search()'s retrieval settings: those given, else the calibration's."""
        cal = self.calibration
        return {"mode": mode, "weight": cal.weight if weight is None else weight,
                "fusion": cal.fusion if fusion is None else fusion}

    def retrieve(self, question: str, k: int, mode: str = "hybrid", weight: float | None = None,
                 fusion: str | None = None) -> list[Hit]:
        return search(self.store, question, k=k, **self.settings(mode, weight, fusion))

    def candidates(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]], per_passage: int = 1
                   ) -> list[list[Candidate]]:
        """Every (question, passage) pair read in one batch: the best `per_passage` spans of each
        passage with their candidate features, per question."""
        from spokenqa.decode import decode, no_answer_scores
        from spokenqa.features import prepare_eval_features
        from spokenqa.inference import predict_logits

        qa, cfg = self.qa, self.qa.cfg
        lower = lower_keep_offsets if cfg.lowercase else (lambda s: s)
        pairs = [(qi, hit) for qi, row in enumerate(hits) for hit in row]
        out: list[list[Candidate]] = [[] for _ in questions]
        if not pairs:
            return out
        examples = [Example(str(n), "", lower(hit.passage.text), lower(questions[qi]), ())
                    for n, (qi, hit) in enumerate(pairs)]
        features, _ = prepare_eval_features(examples, qa.tokenizer, cfg)
        start, end = predict_logits(qa.model, features, qa.tokenizer.pad_token_id, cfg.eval_batch_size, qa.precision)
        predictions = decode(examples, features, start, end, cfg.decoder, max(cfg.n_best, per_passage),
                             cfg.max_answer_tokens)
        nulls = no_answer_scores(len(examples), features, start, end)
        dense = self._dense_where_missing(questions, hits)
        for (qi, hit), prediction, null in zip(pairs, predictions, nulls, strict=True):
            similarity = hit.dense if hit.dense is not None else dense.get((qi, hit.passage.id))
            for n, span in enumerate(prediction.nbest[:per_passage]):
                row = candidate_row(span.score, float(null), span.probability, hit.rank, similarity)
                out[qi].append(Candidate(hit.passage.text[span.start:span.end], span.start, span.end, hit, row, n == 0))
        return out

    def _dense_where_missing(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]]
                             ) -> dict[tuple[int, int], float]:
        """The dense similarity of hits that have none (bm25 mode), when the calibration uses it."""
        if "dense" not in self.calibration.candidate.features:
            return {}
        out = {}
        for qi, row in enumerate(hits):
            missing = [h.passage.id for h in row if h.dense is None]
            if missing:
                query = question_vector(self.store, spoken_question(questions[qi]) or questions[qi])
                out.update({(qi, pid): s for pid, s in self.store.similarity(query, missing).items()})
        return out

    def rank(self, question: str, candidates: Sequence[Candidate], hits: Sequence[Hit], top_k: int,
             threshold: float) -> ArchiveResult:
        """A question's candidates -> its answers, best first, with probabilities; abstained when
        the best is below `threshold` (or there is none)."""
        if not candidates:
            return ArchiveResult(question, [], True, threshold, list(hits))
        best = ranked(self.calibration, candidates, top_k)
        # fit on top answers only: for the answers below it bounds, never raises, the probability
        probs = np.minimum.accumulate(self.calibration.probabilities([row for _, row in best]))
        if probs[0] < threshold:
            return ArchiveResult(question, [], True, threshold, list(hits))
        words = self.store.document_words(list({c.hit.passage.document_id for c, _ in best}))
        answers = []
        for (c, row), prob in zip(best, probs, strict=True):
            p = c.hit.passage
            when = None
            if p.document_id in words:
                when = seconds(words[p.document_id], p.char_start + c.start, p.char_start + c.end)
            start_s, end_s = when or (p.start_s, p.end_s)
            feats = {"span": c.row["span"], "no_answer": c.row["null"], "margin": c.row["margin"],
                     "share": c.row["share"], "rank": c.hit.rank, "fused": c.hit.fused, "bm25": c.hit.bm25,
                     "dense": c.hit.dense, **row}
            answers.append(ArchiveAnswer(c.text, float(prob), c.start, c.end, start_s, end_s, _document(p),
                                         _passage(p), feats))
        return ArchiveResult(question, answers, False, threshold, list(hits))

    def ask(self, questions: str | list[str], passages: int = 5, top_k: int = 1, mode: str = "hybrid",
            weight: float | None = None, fusion: str | None = None, threshold: float | None = None
            ) -> list[ArchiveResult]:
        """One ArchiveResult per question (see the module docstring)."""
        if isinstance(questions, str):
            questions = [questions]
        for name, value in (("passages", passages), ("top_k", top_k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r} (choose from {', '.join(MODES)})")
        threshold = self.calibration.threshold if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold}")
        questions = check_questions(list(questions))
        hits = [self.retrieve(q, passages, mode, weight, fusion) for q in questions]
        candidates = self.candidates(questions, hits, per_passage=top_k)
        return [self.rank(q, c, h, top_k, threshold) for q, c, h in zip(questions, candidates, hits, strict=True)]


__all__ = ["ArchiveAnswer", "ArchiveQA", "ArchiveResult", "Candidate", "answer_key", "ranked", "seconds"]
