"""Cutting a document's text into overlapping passages, the unit that the archive indexes and
retrieves. Pure functions, no I/O.

A passage is about `target` words (120), never more than `max_words` (150); consecutive passages
share about `overlap` words (30), so an answer that straddles a cut is whole in one of them. A
cut goes where the speech or the text has a boundary, near the target length:

- a pause: the gap between one word's end and the next word's start, when the document has word
  times (a transcript); half a second counts as much as a sentence end;
- a sentence end: ". " in ASR text (and "?", "!" in written text).

Every passage's `text` is exactly `document_text[char_start:char_end]`; with word times it also
has `start_s`/`end_s`, from its first word's start to its last word's end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

TARGET_WORDS = 120
OVERLAP_WORDS = 30
MAX_WORDS = 150
MIN_WORDS = 90  # a passage that is not the document's last is at least this long

PAUSE_FOR_A_SENTENCE_END = 0.5  # seconds of pause that weigh as much as a sentence end
DISTANCE_COST = 0.01  # boundary strength lost per word away from the target length
_SENTENCE_END = re.compile(r"[.?!][\"')\]]*$")
_TRAILING_PUNCT = re.compile(r"[.?!,;:\"')\]]+")


class TimedWord(Protocol):
    """What a transcript word gives (spokenqa.audio.asr.Word has these fields)."""

    start_char: int
    end_char: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Token:
    """One word of the document: its character span, and its times where known."""

    start: int
    end: int
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True)
class Passage:
    ordinal: int  # 0, 1, ... in document order
    text: str  # == document_text[char_start:char_end]
    char_start: int
    char_end: int
    start_s: float | None = None
    end_s: float | None = None

    @property
    def words(self) -> int:
        return len(self.text.split())


def tokens(text: str, words: Sequence[TimedWord] | None = None) -> list[Token]:
    """The document's words: the transcript's timed words when given, else whitespace-separated
    words of `text` (no times)."""
    if words:
        return [Token(w.start_char, w.end_char, float(w.start_s), float(w.end_s)) for w in words]
    return [Token(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def boundary_strengths(text: str, toks: Sequence[Token]) -> list[float]:
    """strength[i]: how good a cut between word i and word i+1 is (0: none; 1: a sentence end or
    a half-second pause; longer pauses more, up to 4). The last entry is for the document end."""
    out = []
    for i, tok in enumerate(toks[:-1]):
        nxt = toks[i + 1]
        between = text[tok.start:nxt.start].rstrip()
        strength = 1.0 if _SENTENCE_END.search(between) else 0.0
        if tok.end_s is not None and nxt.start_s is not None:
            pause = max(0.0, nxt.start_s - tok.end_s)
            strength = max(strength, min(pause / PAUSE_FOR_A_SENTENCE_END, 4.0))
        out.append(strength)
    out.append(4.0)
    return out


def _best_end(strength: Sequence[float], start: int, n: int, target: int, min_words: int,
              max_words: int, tail: int) -> int:
    """The end (exclusive word index) of the passage that starts at `start`: the strongest
    boundary between min_words and max_words words, less a cost per word away from the target,
    leaving at least `tail` words for the next passage."""
    lo = start + min_words
    hi = min(start + max_words, n - tail)
    if hi < lo:
        return min(start + target, n)
    return max(range(lo, hi + 1),
               key=lambda end: strength[end - 1] - DISTANCE_COST * abs(end - start - target))


def _next_start(strength: Sequence[float], end: int, start: int, overlap: int) -> int:
    """Where the next passage starts: `overlap` words before `end`, moved (by up to a third of the
    overlap) to just after a boundary when there is one, so passages tend to start a sentence."""
    want = end - overlap
    slack = max(1, overlap // 3)
    candidates = [s for s in range(want - slack, want + slack + 1) if start < s < end and strength[s - 1] > 0]
    if not candidates:
        return max(start + 1, want)
    return max(candidates, key=lambda s: strength[s - 1] - DISTANCE_COST * abs(s - want))


def cut_passages(text: str, words: Sequence[TimedWord] | None = None, *, target: int = TARGET_WORDS,
                 overlap: int = OVERLAP_WORDS, max_words: int = MAX_WORDS,
                 min_words: int = MIN_WORDS) -> list[Passage]:
    """`text` cut into passages (see the module docstring). `words`: the transcript's timed
    words, in text order (their character spans index `text`); without them the words are the
    whitespace-separated pieces of `text`. A document of at most `max_words` words is one passage;
    an empty one has none."""
    if not 0 <= overlap < min_words <= target <= max_words:
        raise ValueError(f"need 0 <= overlap ({overlap}) < min_words ({min_words}) <= target "
                         f"({target}) <= max_words ({max_words})")
    toks = tokens(text, words)
    n = len(toks)
    if n == 0:
        return []
    strength = boundary_strengths(text, toks)
    spans, start = [], 0
    while True:
        if n - start <= max_words:
            spans.append((start, n))
            break
        end = _best_end(strength, start, n, target, min_words, max_words, tail=overlap)
        spans.append((start, end))
        start = _next_start(strength, end, start, overlap)
    return [_passage(text, toks, i, s, e) for i, (s, e) in enumerate(spans)]


def _passage(text: str, toks: Sequence[Token], ordinal: int, first: int, end: int) -> Passage:
    char_start = toks[first].start
    char_end = toks[end - 1].end
    limit = toks[end].start if end < len(toks) else len(text)
    punct = _TRAILING_PUNCT.match(text, char_end, limit)  # keep the sentence's "." with it
    if punct:
        char_end = punct.end()
    return Passage(ordinal, text[char_start:char_end], char_start, char_end,
                   toks[first].start_s, toks[end - 1].end_s)


__all__ = ["MAX_WORDS", "OVERLAP_WORDS", "TARGET_WORDS", "Passage", "Token", "boundary_strengths",
           "cut_passages", "tokens"]
