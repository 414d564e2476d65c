"""Turn the Festival+Sphinx synth set into SQuAD format over its ASR transcripts.

Why: the synth JSONL keeps answers as offsets into the *original* text, but a model must be
trained on spans of what the recogniser produced. The original Spoken-SQuAD kept only answers
found verbatim in the transcript (42% of SQuAD train); with a simple normalisation 54% of the
synth answers occur verbatim. Many of the rest are still plainly there, with one word misheard
("great reform bill" -> "great reform bell"), so this module finds the answer's place
precisely and accepts a small edit distance there.

How, per paragraph: the original context is spokenized (:mod:`spokenqa.spoken`) and aligned
word by word to the transcript (Levenshtein alignment, rapidfuzz); the answer's words in the
spokenized context are projected through that alignment to the transcript; windows around
the projected place are scored by character edit distance to the spokenized answer and the
best one is kept if it is close enough. Searching only around the projected place (rather than
anywhere, as a plain substring test does) is what prevents false matches: a short answer such
as "two" occurs all over a paragraph, but only one occurrence is where the answer was spoken.
If the context cannot be placed at all, the expected place is the answer's relative position in
the original context, and only a verbatim match there is accepted.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from spokenqa.errors import DataError
from spokenqa.files import read_text
from spokenqa.spoken import locate_answer, spokenize_answer, spokenize_with_map

__all__ = [
    "AlignStats",
    "Match",
    "align_answer",
    "convert_synth",
    "load_synth_jsonl",
    "project_boundaries",
]

_TWORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")

# Acceptance: character edit distance / length of the longer string. 0.25 keeps one misheard
# word in a 3-4 word answer ("great reform bill" ~ "great reform bell") and rejects
# "six" ~ "sex"; chosen by reading samples in each 0.05 band (see the issue 3 report).
MAX_CHAR_DISTANCE = 0.25
# One-word answers have no context to vouch for them: stricter, and at least 4 letters.
MAX_CHAR_DISTANCE_ONE_WORD = 0.2
SEARCH_RADIUS = 3  # words either side of the projected start


@dataclass(frozen=True)
class Match:
    """Where an answer was found: transcript word range [start_word, end_word)."""

    start_word: int
    end_word: int
    char_distance: float
    word_distance: int

    @property
    def exact(self) -> bool:
        return self.word_distance == 0


@dataclass
class AlignStats:
    """Counts from :func:`convert_synth` (questions and answers kept/dropped, exact/fuzzy)."""

    paragraphs: int = 0
    questions: int = 0
    questions_kept: int = 0
    answers: int = 0
    answers_exact: int = 0
    answers_fuzzy: int = 0
    answers_dropped: int = 0
    verbatim_elsewhere: int = 0  # dropped answers whose words do occur, but far from their place
    drop_reasons: Counter[str] = field(default_factory=Counter)
    fuzzy_examples: list[dict[str, Any]] = field(default_factory=list)
    dropped_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def questions_dropped(self) -> int:
        return self.questions - self.questions_kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "paragraphs": self.paragraphs, "questions": self.questions,
            "questions_kept": self.questions_kept, "questions_dropped": self.questions_dropped,
            "answers": self.answers, "answers_exact": self.answers_exact,
            "answers_fuzzy": self.answers_fuzzy, "answers_dropped": self.answers_dropped,
            "verbatim_elsewhere": self.verbatim_elsewhere,
            "drop_reasons": dict(self.drop_reasons),
            "fuzzy_examples": self.fuzzy_examples, "dropped_examples": self.dropped_examples,
        }


def _words(text: str) -> tuple[list[tuple[int, int]], list[str]]:
    """Word spans and comparison keys (lower case, apostrophes removed: ASR writes "there's",
    spokenized text "theres")."""
    spans, keys = [], []
    for m in _TWORD.finditer(text):
        spans.append((m.start(), m.end()))
        keys.append(m.group(0).lower().replace("'", ""))
    return spans, keys


def project_boundaries(src: list[str], dst: list[str]) -> list[int]:
    """For each word boundary 0..len(src) of ``src``, the corresponding boundary in ``dst``.

    Built from a word-level Levenshtein alignment; inside a replaced block boundaries are
    spread proportionally (a 2-word name heard as 3 words keeps its ends).
    """
    proj = [0] * (len(src) + 1)
    for op in Levenshtein.opcodes(src, dst):
        n_src = op.src_end - op.src_start
        n_dst = op.dest_end - op.dest_start
        if op.tag == "insert":
            continue  # a src boundary at an insertion is set by the neighbouring ops
        for i in range(op.src_start, op.src_end + 1):
            proj[i] = op.dest_start + round((i - op.src_start) * n_dst / max(n_src, 1))
    proj[len(src)] = len(dst)
    return proj


def align_answer(answer: list[str], words: list[str], exp_start: int, exp_end: int, *,
                 radius: int = SEARCH_RADIUS, max_char_distance: float = MAX_CHAR_DISTANCE,
                 max_char_distance_one_word: float = MAX_CHAR_DISTANCE_ONE_WORD,
                 exact_only: bool = False) -> Match | None:
    """Best window of ``words`` for ``answer`` near the expected word range, or None.

    Windows start within ``radius`` words of ``exp_start`` and are up to 2 + n/4 words longer
    or shorter than the answer. The best has the smallest character edit distance (ties: the
    nearest to the expected range). It is accepted when exact, or - unless ``exact_only`` -
    when its normalised character distance is within the limit and its word edit distance is
    at most half the answer's words (rounded up).
    """
    n = len(answer)
    if n == 0 or not words:
        return None
    target = " ".join(answer)
    slack = 2 + n // 4
    best: tuple[tuple[float, int], int, int] | None = None
    for i in range(max(0, exp_start - radius), min(len(words) - 1, exp_start + radius) + 1):
        for length in range(max(1, n - slack), n + slack + 1):
            j = i + length
            if j > len(words):
                break
            cd = Levenshtein.normalized_distance(target, " ".join(words[i:j]))
            key = (cd, abs(i - exp_start) + abs(j - exp_end))
            if best is None or key < best[0]:
                best = (key, i, j)
    if best is None:
        return None
    (cd, _), i, j = best
    # Character distance favours dropping a short word at an edge ("two thousand six" is
    # nearer "two thousand and" than "two thousand and six"); take the answer's own first or
    # last word back when it is the transcript word just outside the window.
    if j < len(words) and words[j - 1] != answer[-1] and words[j] == answer[-1]:
        j += 1
    if i > 0 and words[i] != answer[0] and words[i - 1] == answer[0]:
        i -= 1
    cd = Levenshtein.normalized_distance(target, " ".join(words[i:j]))
    wd = Levenshtein.distance(answer, words[i:j])
    if wd == 0:
        return Match(i, j, 0.0, 0)
    if exact_only:
        return None
    limit = max_char_distance if n > 1 else max_char_distance_one_word
    if n == 1 and len(answer[0]) < 4:
        return None
    if cd > limit or wd > math.ceil(n / 2):
        return None
    return Match(i, j, cd, wd)


def _verbatim_anywhere(answer: list[str], words: list[str]) -> bool:
    n = len(answer)
    return n > 0 and any(words[k:k + n] == answer for k in range(len(words) - n + 1))


_REQUIRED = {"title": str, "context": str, "transcript": str, "qas": list}


def load_synth_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read the synth JSONL (one paragraph per line; see shared/README.md), checking the
    fields this module uses; errors name the file and line."""
    path = Path(path)
    lines = read_text(path, "JSONL").splitlines()
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {lineno}: not valid JSON (column {e.colno}: "
                            f"{e.msg})") from e
        _check_record(rec, f"{path}: line {lineno}")
        records.append(rec)
    if not records:
        raise DataError(f"{path}: no records")
    return records


def _check_record(rec: Any, where: str) -> None:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    for key, kind in _REQUIRED.items():
        if not isinstance(rec.get(key), kind):
            raise DataError(f"{where}: '{key}' missing or not {kind.__name__}")
    for qi, qa in enumerate(rec["qas"]):
        qw = f"{where}: qas[{qi}]"
        if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) \
                or not isinstance(qa.get("answers"), list):
            raise DataError(f"{qw}: expected 'question' (string) and 'answers' (list)")
        for ni, ans in enumerate(qa["answers"]):
            start = ans.get("answer_start") if isinstance(ans, dict) else None
            if not (isinstance(ans, dict) and isinstance(ans.get("text"), str)
                    and isinstance(start, int) and not isinstance(start, bool)):
                raise DataError(f"{qw}.answers[{ni}]: expected 'text' (string) and "
                                "'answer_start' (integer)")


def convert_synth(records: Iterable[dict[str, Any]], *, source: str = "<synth>",
                  max_char_distance: float = MAX_CHAR_DISTANCE,
                  max_examples: int = 50) -> tuple[dict[str, Any], AlignStats]:
    """Build a SQuAD v1.1 dict whose contexts are the records' ASR ``transcript``.

    Each answer is placed in the transcript (see the module docstring); its ``text`` becomes
    the transcript slice at ``answer_start`` (so it may contain the recogniser's errors), and
    ``original_text`` and ``match`` ("exact"/"fuzzy") are added. Answers not found are
    dropped and counted by reason; questions left without answers are dropped. Questions are
    kept as written (like Spoken-SQuAD, whose questions are the original text). Paragraphs
    are grouped into articles by title, in input order.
    """
    stats = AlignStats()
    articles: dict[str, dict[str, Any]] = {}
    for ri, rec in enumerate(records):
        _check_record(rec, f"{source}: record {ri}")
        stats.paragraphs += 1
        transcript = rec["transcript"]
        t_spans, t_keys = _words(transcript)
        st = spokenize_with_map(rec["context"])
        s_spans, s_keys = _words(st.text)
        s_starts = [s for s, _ in s_spans]
        proj = project_boundaries(s_keys, t_keys)
        qas_out = []
        for qa in rec["qas"]:
            stats.questions += 1
            answers = []
            for ans in qa["answers"]:
                stats.answers += 1
                spoken = spokenize_answer(ans["text"])
                a_keys = spoken.replace("'", "").split()
                pos, _, how = locate_answer(st, ans["answer_start"], ans["text"])
                if not a_keys:
                    match, reason = None, "answer has no spoken words"
                elif pos >= 0:
                    i = bisect.bisect_right(s_starts, pos) - 1
                    j = bisect.bisect_left(s_starts, pos + len(spoken))
                    match = align_answer(a_keys, t_keys, proj[max(i, 0)], proj[j],
                                         max_char_distance=max_char_distance)
                    reason = "not close enough at its place"
                else:
                    rel = ans["answer_start"] / max(len(rec["context"]), 1)
                    exp = round(rel * len(t_keys))
                    match = align_answer(a_keys, t_keys, exp, exp + len(a_keys),
                                         exact_only=True)
                    reason = f"not placed in the spokenized context ({how}), no verbatim match"
                place = f"{source}: record {ri} ({rec['title']}), question {qa.get('id', '?')}"
                if match is None:
                    stats.answers_dropped += 1
                    stats.drop_reasons[reason] += 1
                    if a_keys and _verbatim_anywhere(a_keys, t_keys):
                        stats.verbatim_elsewhere += 1
                    if len(stats.dropped_examples) < max_examples:
                        stats.dropped_examples.append(
                            {"place": place, "answer": ans["text"], "spoken": spoken,
                             "reason": reason})
                    continue
                start = t_spans[match.start_word][0]
                end = t_spans[match.end_word - 1][1]
                text = transcript[start:end]
                if match.exact:
                    stats.answers_exact += 1
                else:
                    stats.answers_fuzzy += 1
                    if len(stats.fuzzy_examples) < max_examples:
                        stats.fuzzy_examples.append(
                            {"place": place, "answer": ans["text"], "spoken": spoken,
                             "transcript": text, "char_distance": round(match.char_distance, 3),
                             "word_distance": match.word_distance})
                answers.append({"text": text, "answer_start": start,
                                "original_text": ans["text"],
                                "match": "exact" if match.exact else "fuzzy"})
            if not answers:
                continue
            stats.questions_kept += 1
            new_qa = {k: v for k, v in qa.items() if k != "answers"}
            new_qa["answers"] = answers
            qas_out.append(new_qa)
        article = articles.setdefault(rec["title"], {"title": rec["title"], "paragraphs": []})
        paragraph: dict[str, Any] = {"context": transcript, "qas": qas_out}
        for key in ("order", "article_index", "paragraph_index"):
            if key in rec:
                paragraph[key] = rec[key]
        article["paragraphs"].append(paragraph)
    return {"version": "synth-festival-sphinx", "data": list(articles.values())}, stats
