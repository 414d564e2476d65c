"""SQuAD v1.1-format JSON -> validated examples.

Any SQuAD v1.1-format file loads here: Spoken-SQuAD train/test, text SQuAD, spokenised sets. A
structurally malformed file stops with one `DataError` naming the file and the place (article,
paragraph, question id). Content problems that a user can live with are repaired or skipped and
counted in `DataStats`, so the run's report says how much of the file was used.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spokenqa.errors import ConfigError, DataError
from spokenqa.files import read_json


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the example's context


@dataclass(frozen=True)
class Example:
    """One question over one context, with all its gold answers."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[Answer, ...]


@dataclass
class DataStats:
    """What loading did to a file: counts for the report."""

    file: str
    articles: int = 0
    paragraphs: int = 0
    questions: int = 0  # questions kept
    answers: int = 0  # answer entries kept
    answers_repaired: int = 0  # answer_start did not match; text found elsewhere in the context
    answers_skipped: int = 0  # text not found in the context, or empty
    questions_without_answers: int = 0  # dropped for evaluation/training: no usable gold answer
    questions_impossible: int = 0  # SQuAD 2.0 `is_impossible` questions kept (training: [CLS] label)
    empty_contexts: int = 0  # paragraphs whose context is empty (their questions are dropped)
    examples: list[str] = field(default_factory=list)  # a few messages about repairs and skips

    def note(self, message: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line of what was read and what is used: `evaluate` and `stats` print it, so the
        counts on the terminal are those of metrics.json and stats.json (answer entries read =
        used + skipped; `reference.answers` scores the used ones)."""
        line = (f"{self.file}: {self.questions:,} questions, {self.answers + self.answers_skipped:,} answer "
                f"entries: {self.answers:,} used, {self.answers_skipped:,} skipped (empty or not in the context)")
        if self.answers_repaired:
            line += f", {self.answers_repaired:,} with answer_start repaired"
        if self.questions_without_answers:
            line += f"; {self.questions_without_answers:,} questions dropped (no usable answer)"
        return line


# The longest question any interface takes (CLI, Python, HTTP): a question is a sentence, and the
# model reads at most `max_question_tokens` (64) of it; a longer text is refused, not cut silently.
MAX_QUESTION_CHARS = 500


def check_questions(questions: list[str]) -> list[str]:
    """The questions with their whitespace collapsed; an empty one or one longer than
    `MAX_QUESTION_CHARS` is a one-line ConfigError naming it (by position, from 1)."""
    checked = []
    for n, question in enumerate(questions, 1):
        question = " ".join(question.split())
        if not question:
            raise ConfigError(f"question {n} is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ConfigError(f"question {n} is {len(question):,} characters long; a question may have at most "
                              f"{MAX_QUESTION_CHARS} (the model reads its first 64 tokens)")
        checked.append(question)
    return checked


def lower_keep_offsets(text: str) -> str:
    """Lower-case without changing length, so character offsets stay valid.

    A few characters lower-case to two code points ('İ' -> 'i̇'); those are kept as they are.
    """
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise DataError(f"{where}: missing '{key}'")
    value = obj[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise DataError(f"{where}: '{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value


def place(source: str | Path, a_idx: int, article: Any, p_idx: int | None = None,
          q_idx: int | None = None, qa: Any = None) -> str:
    """How every message names a place in a SQuAD file: `FILE: article 3 ('Normans'),
    paragraph 2, question 'id'` (the question's index where it has no string id)."""
    title = article.get("title", "") if isinstance(article, dict) else ""
    title = title if isinstance(title, str) else str(title)
    where = f"{source}: article {a_idx} ({title!r})" if title else f"{source}: article {a_idx}"
    if p_idx is not None:
        where += f", paragraph {p_idx}"
    if q_idx is not None:
        qid = qa.get("id") if isinstance(qa, dict) else None
        where += f", question {qid!r}" if isinstance(qid, str) and qid else f", question {q_idx}"
    return where


def validate_squad(data: Any, source: str | Path = "<data>", require_answers: bool = True) -> None:
    """Check the SQuAD v1.1 shape (the data tools' input); a DataError names the first bad place
    as `load_squad` does."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"{source}: expected a JSON object with a 'data' list (SQuAD v1.1 format)")
    for a_idx, article in enumerate(data["data"]):
        paragraphs = _field(article, "paragraphs", list, place(source, a_idx, article))
        for p_idx, paragraph in enumerate(paragraphs):
            where_par = place(source, a_idx, article, p_idx)
            _field(paragraph, "context", str, where_par)
            for q_idx, qa in enumerate(_field(paragraph, "qas", list, where_par)):
                where_q = place(source, a_idx, article, p_idx, q_idx, qa)
                _field(qa, "id", str, where_q)
                _field(qa, "question", str, where_q)
                if not require_answers and "answers" not in qa:
                    continue
                for n, answer in enumerate(_field(qa, "answers", list, where_q)):
                    _field(answer, "text", str, f"{where_q}, answer {n}")
                    _field(answer, "answer_start", int, f"{where_q}, answer {n}")


def nearest_occurrence(text: str, needle: str, near: int, whole_word: bool = False,
                       max_dist: int | None = None) -> int:
    """Start of the occurrence of `needle` in `text` nearest `near` (the first of equally near
    ones), or -1: where an answer whose offset is off really is. `whole_word`: only occurrences
    not inside a longer word ("ten" not in "often"; lower-case text). `max_dist`: farther hits
    count as not found, so a common answer ("two") is not taken from another sentence."""
    if not needle:
        return -1
    if whole_word:
        starts = (m.start() for m in re.finditer(r"(?<![a-z])" + re.escape(needle) + "(?![a-z])", text))
    else:
        starts = _find_all(text, needle)
    best = min(starts, key=lambda pos: abs(pos - near), default=-1)
    if best >= 0 and max_dist is not None and abs(best - near) > max_dist:
        return -1
    return best


def _find_all(text: str, needle: str):
    pos = text.find(needle)
    while pos != -1:
        yield pos
        pos = text.find(needle, pos + 1)


def load_squad(
    path: str | Path,
    lowercase: bool = True,
    require_answers: bool = True,
    max_questions: int | None = None,
    keep_impossible: bool = False,
) -> tuple[list[Example], DataStats]:
    """Load and validate a SQuAD v1.1-format file.

    `require_answers=False` (prediction) accepts questions without an `answers` list. With
    `require_answers=True`, a question whose answers are all unusable is dropped and counted.
    `keep_impossible=True` (training) keeps SQuAD 2.0 questions marked `"is_impossible": true`
    with no answers: their windows teach the reader that the passage does not hold the answer.
    """
    path = Path(path)
    root = read_json(path)
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise DataError(f"{path}: expected a JSON object with a 'data' list (SQuAD v1.1 format)")
    stats = DataStats(file=str(path))
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for a_idx, article in enumerate(root["data"]):
        title = article.get("title", "") if isinstance(article, dict) else ""
        title = title if isinstance(title, str) else str(title)
        paragraphs = _field(article, "paragraphs", list, place(path, a_idx, article))
        stats.articles += 1
        for p_idx, paragraph in enumerate(paragraphs):
            where_par = place(path, a_idx, article, p_idx)
            context = _field(paragraph, "context", str, where_par)
            qas = _field(paragraph, "qas", list, where_par)
            stats.paragraphs += 1
            if lowercase:
                context = lower_keep_offsets(context)
            if not context.strip() and qas:
                stats.empty_contexts += 1
                stats.questions_without_answers += len(qas)
                stats.note(f"{where_par}: empty context; {len(qas)} question(s) dropped")
                continue
            for q_idx, qa in enumerate(qas):
                where_q = place(path, a_idx, article, p_idx, q_idx, qa)
                qid = _field(qa, "id", str, where_q)
                question = _field(qa, "question", str, where_q)
                if not question.strip():
                    raise DataError(f"{where_q}: empty question")
                if qid in seen:
                    raise DataError(f"{where_q}: duplicate question id (first in {seen[qid]})")
                seen[qid] = f"article {a_idx}, paragraph {p_idx}"
                if require_answers or "answers" in qa:
                    raw_answers = _field(qa, "answers", list, where_q)
                else:
                    raw_answers = []
                answers = _check_answers(raw_answers, context, lowercase, where_q, stats)
                impossible = keep_impossible and qa.get("is_impossible") is True
                if impossible and answers:
                    raise DataError(f"{where_q}: marked is_impossible but has answers")
                stats.questions_impossible += impossible
                if require_answers and not answers and not impossible:
                    stats.questions_without_answers += 1
                    continue
                question = " ".join(question.split())
                examples.append(
                    Example(
                        id=qid,
                        title=title,
                        context=context,
                        question=lower_keep_offsets(question) if lowercase else question,
                        answers=tuple(answers),
                    )
                )
                stats.questions += 1
                stats.answers += len(answers)
                if max_questions is not None and len(examples) >= max_questions:
                    return examples, stats
    if not examples:
        raise DataError(f"{path}: no usable questions (read {stats.paragraphs} paragraphs)")
    return examples, stats


def _check_answers(
    raw_answers: list[Any], context: str, lowercase: bool, where: str, stats: DataStats
) -> list[Answer]:
    answers = []
    for n, raw in enumerate(raw_answers):
        where_a = f"{where}, answer {n}"
        text = _field(raw, "text", str, where_a)
        start = _field(raw, "answer_start", int, where_a)
        if lowercase:
            text = lower_keep_offsets(text)
        if not text.strip():
            stats.answers_skipped += 1
            stats.note(f"{where_a}: empty answer skipped")
            continue
        if start < 0 or context[start : start + len(text)] != text:
            repaired = nearest_occurrence(context, text, start)
            if repaired < 0:
                stats.answers_skipped += 1
                stats.note(f"{where_a}: {text[:40]!r} not in the context; skipped")
                continue
            stats.answers_repaired += 1
            stats.note(f"{where_a}: answer_start {start} -> {repaired}")
            start = repaired
        answers.append(Answer(text=text, start=start))
    return answers


def word_lengths(examples: list[Example]) -> dict[str, list[int]]:
    """Lengths in words of each distinct context, each question, each answer entry."""
    return {
        "context": [len(c.split()) for c in dict.fromkeys(e.context for e in examples)],
        "question": [len(e.question.split()) for e in examples],
        "answer": [len(a.text.split()) for e in examples for a in e.answers],
    }
