"""Turn written text into the style of Spoken-SQuAD ASR transcripts, keeping a char mapping.

Why: models trained on text SQuAD see digits, capitals and punctuation that never occur in ASR
transcripts (Spoken-SQuAD contexts are lower-case letters, spaces and sentence-final periods;
"1995" appears as "nineteen ninety five"). Converting the 87k text-SQuAD training questions into
that style gives a cheap "spoken" training set. Answers must stay exact spans of the converted
context, so every output character remembers which source characters produced it
(:class:`SpokenText`), and :func:`spokenize_squad` re-aligns each answer through that mapping
instead of guessing.

The conventions below were read off ``spoken_test-v1.1.json`` (Google TTS + CMU Sphinx):
years are read in pairs ("twenty fifteen", "nineteen ninety five", "two thousand eight"),
other numbers as American cardinals without "and", decimals digit by digit after "point",
"%" as "percent", "$5 million" as "five million dollars", all-capital initialisms letter by
letter ("n f l"), apostrophes dropped ("warsaws"), hyphens and slashes as spaces, and sentences
joined with ". ".
"""

from __future__ import annotations

import bisect
import copy
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from num2words import num2words

from spokenqa.data import nearest_occurrence, place, validate_squad

__all__ = [
    "Piece",
    "SpokenText",
    "SpokenizeStats",
    "locate_answer",
    "number_words",
    "spokenize",
    "spokenize_answer",
    "spokenize_squad",
    "spokenize_with_map",
]

# --------------------------------------------------------------------------------------------
# Character normalisation (kept index-aligned with the source so spans can be mapped back)

_CHAR_TABLE: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2044": "/", "\u2215": "/", "\u00a0": " ", "\u00b7": " ", "\u2022": " ",
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE", "\u0153": "oe", "\u0152": "OE",
    "\u00f8": "o", "\u00d8": "O", "\u0111": "d", "\u0110": "D", "\u0142": "l", "\u0141": "L",
    "\u00fe": "th", "\u00de": "Th", "\u00f0": "d", "\u00d0": "D", "\u0131": "i",
    "\u00d7": " times ", "\u00b2": "\x02", "\u00b3": "\x03", "\u00b0": "\u00b0",
}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """ASCII-fold one character: accents stripped, typographic quotes/dashes made plain.

    Superscript 2/3 become control characters so "km²" can be read "square kilometers".
    """
    if ch in _CHAR_TABLE:
        return _CHAR_TABLE[ch]
    out = []
    for c in unicodedata.normalize("NFKD", ch):
        if unicodedata.combining(c):
            continue
        out.append(_CHAR_TABLE.get(c, c))
    return "".join(out)


def _normalise(text: str) -> tuple[str, list[int]]:
    """Return the folded text and, for each of its characters, the source index (+ sentinel)."""
    if text.isascii():
        return text, list(range(len(text) + 1))
    parts: list[str] = []
    n2s: list[int] = []
    last = 0
    for m in _NON_ASCII.finditer(text):
        i = m.start()
        parts.append(text[last:i])
        n2s.extend(range(last, i))
        folded = _fold_char(text[i])
        parts.append(folded)
        n2s.extend([i] * len(folded))
        last = i + 1
    parts.append(text[last:])
    n2s.extend(range(last, len(text)))
    n2s.append(len(text))
    return "".join(parts), n2s


# --------------------------------------------------------------------------------------------
# Numbers


def _clean_words(s: str) -> str:
    """num2words says "one hundred and fifty-five,"; transcripts say "one hundred fifty five"."""
    s = s.replace("-", " ").replace(",", " ")
    return " ".join(w for w in s.split() if w != "and")


@functools.lru_cache(maxsize=65536)
def _cardinal(n: int) -> str:
    return _clean_words(num2words(n))


@functools.lru_cache(maxsize=65536)
def _ordinal(n: int) -> str:
    return _clean_words(num2words(n, to="ordinal"))


@functools.lru_cache(maxsize=4096)
def _year(n: int) -> str:
    return _clean_words(num2words(n, to="year"))


_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _digits(s: str) -> str:
    return " ".join(_DIGIT_WORDS[int(c)] for c in s if c.isdigit())


def number_words(num: str, *, allow_year: bool = True) -> str:
    """Spell a written number the way a US English TTS voice reads it.

    "1,000" -> "one thousand"; "3.5" -> "three point five"; "1995" -> "nineteen ninety five"
    (four-digit numbers 1100-2099 without a comma are read as years, which is how both
    Google TTS and Festival read them in running text); "007" -> "zero zero seven".
    """
    has_comma = "," in num
    num = num.replace(",", "")
    if "." in num:
        whole, _, frac = num.partition(".")
        head = number_words(whole, allow_year=False) if whole else "zero"
        return f"{head} point {_digits(frac)}" if frac else head
    if not num.isdigit():
        return ""
    if len(num) > 1 and num.startswith("0"):
        return _digits(num)
    if len(num) > 15:
        return _digits(num)
    n = int(num)
    if allow_year and not has_comma and len(num) == 4 and 1100 <= n <= 2099:
        return _year(n)
    return _cardinal(n)


def _pluralise(words: str) -> str:
    """ "nineteen ninety" -> "nineteen nineties" (for decades such as "1990s")."""
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith(("x", "s")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


# --------------------------------------------------------------------------------------------
# Tokeniser

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_UNITS: dict[str, tuple[str, str]] = {
    "km": ("kilometer", "kilometers"), "kg": ("kilogram", "kilograms"),
    "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"), "mi": ("mile", "miles"), "ft": ("foot", "feet"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour",
                                                                   "kilometers per hour"),
    "kw": ("kilowatt", "kilowatts"), "mw": ("megawatt", "megawatts"), "gw": ("gigawatt", "gigawatts"),
    "hz": ("hertz", "hertz"), "khz": ("kilohertz", "kilohertz"), "mhz": ("megahertz", "megahertz"),
    "ghz": ("gigahertz", "gigahertz"), "ha": ("hectare", "hectares"),
    "sq mi": ("square mile", "square miles"), "sq km": ("square kilometer", "square kilometers"),
    "km\x02": ("square kilometer", "square kilometers"), "km2": ("square kilometer",
                                                                 "square kilometers"),
    "mi\x02": ("square mile", "square miles"), "mi2": ("square mile", "square miles"),
    "m\x02": ("square meter", "square meters"), "m2": ("square meter", "square meters"),
    "\u00b0c": ("degree c", "degrees c"), "\u00b0f": ("degree f", "degrees f"),
    "\u00b0": ("degree", "degrees"), "%": ("percent", "percent"),
}
_UNIT_RE = "|".join(
    re.escape(u).replace(r"\ ", r"\s?") for u in sorted(_UNITS, key=len, reverse=True)
)
_CURRENCY = {"$": ("dollar", "dollars"), "\u00a3": ("pound", "pounds"),
             "\u20ac": ("euro", "euros"), "\u00a5": ("yen", "yen")}
_SCALES = {"m": "million", "mn": "million", "b": "billion", "bn": "billion", "k": "thousand",
           "million": "million", "billion": "billion", "trillion": "trillion",
           "thousand": "thousand", "hundred": "hundred"}

# Abbreviations that TTS expands; the value is the spoken form. Case-sensitive on purpose
# ("No." only before a number, "St." as a title). "etc" stays "etc": the Spoken-SQuAD
# transcripts write it so.
_ABBREV = {
    "Mr": "mister", "Mrs": "missus", "Ms": "miz", "Dr": "doctor", "St": "saint",
    "Jr": "junior", "Sr": "senior", "Prof": "professor", "Gen": "general", "Lt": "lieutenant",
    "Col": "colonel", "Capt": "captain", "Sgt": "sergeant", "Gov": "governor",
    "Rev": "reverend", "Mt": "mount", "Ft": "fort", "vs": "versus",
    "approx": "approximately", "Jan": "january", "Feb": "february", "Aug": "august",
    "Sept": "september", "Oct": "october", "Nov": "november", "Dec": "december",
}
_DOTTED = {"e.g.": "for example", "i.e.": "that is", "a.m.": "a m", "p.m.": "p m"}

_TOKEN = re.compile(
    rf"""
    (?P<money>(?P<cur>[$\u00a3\u20ac\u00a5])\s?(?P<mnum>{_NUM})
        (?:\s?(?P<mscale>million|billion|trillion|thousand|hundred|mn|bn|[mbkMBK])\b)?)
   |(?P<time>\b(?P<th>\d{{1,2}}):(?P<tm>\d{{2}})\b
        (?:\s?(?P<tap>[aApP])(?:\.[mM]\.|[mM]\b))?)
   |(?P<ampm>\b(?P<ah>\d{{1,2}})\s?(?P<aap>[aApP])(?:\.[mM]\.|[mM]\b))
   |(?P<ord>\b(?P<onum>\d+)(?:st|nd|rd|th|ST|ND|RD|TH)\b)
   |(?P<decade>'?\b(?P<dnum>\d{{0,2}}\d0)s\b)
   |(?P<number>(?P<num>{_NUM})(?:\s?(?P<unit>{_UNIT_RE})(?![A-Za-z]))?)
   |(?P<dotted>\b(?:[A-Za-z]\.){{2,}})
   |(?P<abbr>\b(?P<abw>{"|".join(_ABBREV)}|No)\.(?=[\s,;:)"']|$))
   |(?P<word>[A-Za-z]+(?:'[A-Za-z]+)*)
   |(?P<sent>[.!?]+)
   |(?P<sym>[&+=@#%\u00b0])
    """,
    re.VERBOSE,
)
_SYMBOLS = {"&": "and", "+": "plus", "=": "equals", "@": "at", "#": "number", "%": "percent",
            "\u00b0": "degrees"}
_CLOSERS = "\"')]}"
_OPENERS = "\"'([{"
_VOWELS = set("AEIOUY")
_ONSETS = {"BL", "BR", "CL", "CR", "DR", "FL", "FR", "GL", "GR", "PL", "PR", "SC", "SK", "SL",
           "SM", "SN", "SP", "ST", "SW", "TR", "TW", "TH", "SH", "CH", "PH", "WH", "KN", "WR"}
# Words that, capitalised after an abbreviation's period, most likely start a new sentence.
_STARTERS = {"The", "A", "An", "In", "It", "He", "She", "They", "This", "These", "That", "Those",
             "There", "However", "On", "At", "As", "But", "By", "For", "From", "After", "Before",
             "During", "Its", "His", "Her", "Their", "We", "I", "When", "While", "Although",
             "Since", "Some", "Many", "Most", "Other", "Today", "Also", "Of", "To",
             "With", "One", "Two", "Both", "Each", "If", "Despite", "Under"}


def _spell_acronym(word: str) -> bool:
    """Whether an all-capital word is read letter by letter ("NFL") or as a word ("NASA")."""
    if len(word) < 2 or not word.isupper() or not word.isalpha():
        return False
    if len(word) <= 3:
        return True
    if not any(c in _VOWELS for c in word):
        return True
    if re.search(r"[^AEIOUY]{3}", word):
        return True
    head = word[:2]
    return not (head[0] in _VOWELS or head[1] in _VOWELS or head in _ONSETS)


def _word_form(word: str) -> str:
    """Spoken form of a letters-only word; "NBC's" -> "n b cs" (the "s" joins the last letter)."""
    if "'" in word:
        return "".join(_word_form(part) for part in word.split("'"))
    if _spell_acronym(word):
        return " ".join(word.lower())
    return word.lower()


# --------------------------------------------------------------------------------------------
# Mapped output


@dataclass(frozen=True)
class Piece:
    """One run of output text and the source characters it came from.

    ``aligned`` pieces are a plain lower-casing of their source (same length), so offsets
    inside them map character by character; other pieces ("1995" -> "nineteen ninety five")
    map only as a whole. ``period`` marks a sentence-final "." (never part of an answer).
    """

    out_start: int
    out_end: int
    src_start: int
    src_end: int
    aligned: bool
    period: bool = False


@dataclass
class SpokenText:
    """A spokenized string with its mapping back to the source text."""

    source: str
    text: str
    pieces: list[Piece]
    _src_ends: list[int] = field(default_factory=list, repr=False)
    _out_ends: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        words = [p for p in self.pieces if not p.period]
        self.pieces = words + [p for p in self.pieces if p.period]
        self._words = words
        self._src_ends = [p.src_end for p in words]
        self._out_ends = [p.out_end for p in words]

    def _overlapping(self, side: str, start: int, end: int) -> tuple[Piece, Piece] | None:
        """First and last word whose `side` ("src" or "out") characters overlap [start, end)."""
        words = self._words
        ends = self._src_ends if side == "src" else self._out_ends
        i = j = bisect.bisect_right(ends, start)
        while j < len(words) and getattr(words[j], f"{side}_start") < end:
            j += 1
        return (words[i], words[j - 1]) if j > i else None

    def map_span(self, start: int, end: int) -> tuple[int, int] | None:
        """Map a source span [start, end) to the output span covering the same words.

        Returns None when no spoken word comes from that span (e.g. it is only punctuation).
        A span that cuts through a converted token ("5" inside "$5 million") maps to the
        whole token; callers must check the slice and search if it differs.
        """
        found = self._overlapping("src", start, end)
        if found is None:
            return None
        first, last = found
        out_s = first.out_start
        if first.aligned and start > first.src_start:
            out_s += start - first.src_start
        out_e = last.out_end
        if last.aligned and end < last.src_end:
            out_e -= last.src_end - end
        if out_e <= out_s:
            return None
        return out_s, out_e

    def to_source(self, start: int, end: int) -> tuple[int, int] | None:
        """Map an output span back to the source span (e.g. to show a prediction in the text)."""
        found = self._overlapping("out", start, end)
        if found is None:
            return None
        first, last = found
        src_s = first.src_start + (start - first.out_start if first.aligned and
                                   start > first.out_start else 0)
        src_e = last.src_end - (last.out_end - end if last.aligned and end < last.out_end else 0)
        return src_s, src_e


def _next_visible(norm: str, pos: int) -> tuple[int, bool]:
    """Skip closing quotes/brackets then spaces; return (index, saw_space)."""
    n = len(norm)
    while pos < n and norm[pos] in _CLOSERS:
        pos += 1
    saw_space = False
    while pos < n and norm[pos].isspace():
        saw_space = True
        pos += 1
    while pos < n and norm[pos] in _OPENERS:
        pos += 1
    return pos, saw_space


def _period_ends_sentence(norm: str, pos: int, *, after_abbrev: bool,
                          caseless: bool = False) -> bool:
    """Decide whether punctuation ending at ``pos`` closes a sentence.

    A plain "." closes one when followed by a space and a capital or digit, or by the end.
    After an abbreviation or initial ("U.S.", "F.") only a typical sentence opener counts,
    because "the U.S. Army" is far more common than a sentence ending in "U.S.". In
    ``caseless`` text (no capitals at all: already a transcript) capitals carry no signal, so
    any plain "." followed by a space counts; this keeps spokenize idempotent on
    Spoken-SQuAD contexts.
    """
    nxt, saw_space = _next_visible(norm, pos)
    if nxt >= len(norm):
        return True
    if not saw_space:
        return False
    if "\n" in norm[pos:nxt] or (caseless and not after_abbrev):
        return True
    if after_abbrev:
        m = re.match(r"[A-Za-z]+", norm[nxt:])
        return bool(m and m.group(0) in _STARTERS)
    ch = norm[nxt]
    return ch.isupper() or ch.isdigit()


def _convert(m: re.Match[str], norm: str) -> tuple[str, bool]:
    """Spoken form of one token and whether a sentence-final period follows it."""
    kind = m.lastgroup
    g = m.group
    if kind == "money":
        singular, plural = _CURRENCY[g("cur")]
        num = g("mnum")
        scale = g("mscale")
        if scale:
            words = number_words(num, allow_year=False)
            return f"{words} {_SCALES[scale.lower()]} {plural}", False
        whole, _, cents = num.replace(",", "").partition(".")
        unit = singular if whole == "1" else plural
        out = f"{number_words(whole, allow_year=False)} {unit}"
        if cents and len(cents) == 2 and g("cur") in "$\u00a3\u20ac":
            if int(cents):
                cent_unit = "pence" if g("cur") == "\u00a3" else "cents"
                # whole.strip("0"), not int(whole): int() refuses numbers over 4300 digits
                out = (f"{out} {_cardinal(int(cents))} {cent_unit}" if whole.strip("0")
                       else f"{_cardinal(int(cents))} {cent_unit}")
        elif cents:
            out = f"{number_words(num, allow_year=False)} {plural}"
        return out, False
    if kind == "time":
        hour, minute = int(g("th")), g("tm")
        if minute == "00":
            out = f"{_cardinal(hour)} oclock"
        elif minute.startswith("0"):
            out = f"{_cardinal(hour)} oh {_cardinal(int(minute))}"
        else:
            out = f"{_cardinal(hour)} {_cardinal(int(minute))}"
        if g("tap"):
            out += f" {g('tap').lower()} m"
            return out, m.group(0).endswith(".") and _period_ends_sentence(
                norm, m.end(), after_abbrev=True)
        return out, False
    if kind == "ampm":
        out = f"{_cardinal(int(g('ah')))} {g('aap').lower()} m"
        return out, m.group(0).endswith(".") and _period_ends_sentence(
            norm, m.end(), after_abbrev=True)
    if kind == "ord":
        if len(g("onum")) > 15:  # as number_words: num2words overflows; read digit by digit
            return _digits(g("onum")), False
        return _ordinal(int(g("onum"))), False
    if kind == "decade":
        digits = g("dnum")
        if len(digits) == 4 and 1000 <= int(digits) < 2000:
            return _pluralise(_year(int(digits))), False  # "1050s" -> "ten fifties"
        return _pluralise(number_words(digits)), False
    if kind == "number":
        num = g("num")
        unit = g("unit")
        if unit:
            key = re.sub(r"\s+", " ", unit.lower())
            singular, plural = _UNITS[key]
            words = number_words(num, allow_year=False)
            return f"{words} {singular if num == '1' else plural}", False
        return number_words(num), False
    if kind == "dotted":
        tok = g("dotted")
        spoken = _DOTTED.get(tok.lower()) or " ".join(c.lower() for c in tok if c.isalpha())
        return spoken, _period_ends_sentence(norm, m.end(), after_abbrev=True)
    if kind == "abbr":
        w = g("abw")
        if w == "No":
            nxt, _ = _next_visible(norm, m.end())
            if nxt < len(norm) and norm[nxt].isdigit():
                return "number", False
            return "no", _period_ends_sentence(norm, m.end(), after_abbrev=False)
        return _ABBREV[w], _period_ends_sentence(norm, m.end(), after_abbrev=True)
    if kind == "word":
        return _word_form(g("word")), False
    if kind == "sym":
        return _SYMBOLS[g("sym")], False
    raise AssertionError(kind)  # pragma: no cover - every group is handled above


def spokenize_with_map(text: str) -> SpokenText:
    """Spokenize ``text`` and keep the output-to-source character mapping."""
    norm, n2s = _normalise(text)
    caseless = not any(c.isupper() for c in norm)
    out: list[str] = []
    pieces: list[Piece] = []
    length = 0
    last_word_end = -1  # output offset after the last word, -1 if none since the last period

    def add_period(src_start: int, src_end: int) -> None:
        nonlocal length, last_word_end
        if last_word_end < 0:
            return
        out.append(".")
        pieces.append(Piece(length, length + 1, src_start, src_end, False, True))
        length += 1
        last_word_end = -1

    for m in _TOKEN.finditer(norm):
        kind = m.lastgroup
        src_s, src_e = n2s[m.start()], n2s[m.end() - 1] + 1
        if kind == "sent":
            tok = m.group(0)
            # A "." after a single capital is an initial ("John F. Kennedy"), not an end.
            i = m.start()
            initial = (tok == "." and i >= 1 and norm[i - 1].isupper()
                       and (i == 1 or not norm[i - 2].isalnum()))
            if _period_ends_sentence(norm, m.end(), after_abbrev=initial, caseless=caseless):
                add_period(src_s, src_e)
            continue
        spoken, ends = _convert(m, norm)
        if spoken:
            if length:
                out.append(" ")
                length += 1
            if kind == "word" and "'" in m.group(0):
                # "Newton's" -> "newtons", "NBC's" -> "n b cs": map each apostrophe-free run
                # separately so that an answer "Newton" or "NBC" still maps exactly.
                for seg in re.finditer(r"[^']+", m.group(0)):
                    a, b = n2s[m.start() + seg.start()], n2s[m.start() + seg.end() - 1] + 1
                    part = _word_form(seg.group(0))
                    pieces.append(Piece(length, length + len(part), a, b,
                                        part == text[a:b].lower()))
                    out.append(part)
                    length += len(part)
            else:
                aligned = kind == "word" and spoken == text[src_s:src_e].lower()
                pieces.append(Piece(length, length + len(spoken), src_s, src_e, aligned))
                out.append(spoken)
                length += len(spoken)
            last_word_end = length
        if ends:
            add_period(src_e - 1, src_e)
    return SpokenText(text, "".join(out), pieces)


def spokenize(text: str) -> str:
    """Return ``text`` in Spoken-SQuAD transcript style (see the module docstring)."""
    return spokenize_with_map(text).text


def spokenize_answer(text: str) -> str:
    """Spokenize an answer: as :func:`spokenize`, without a trailing sentence period."""
    return spokenize(text).rstrip(". ")


# --------------------------------------------------------------------------------------------
# SQuAD conversion


@dataclass
class SpokenizeStats:
    """Counts from :func:`spokenize_squad`; ``examples`` shows a few unmapped answers."""

    articles: int = 0
    paragraphs: int = 0
    questions: int = 0
    questions_kept: int = 0
    answers: int = 0
    answers_exact: int = 0
    answers_searched: int = 0
    answers_unmapped: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def questions_dropped(self) -> int:
        return self.questions - self.questions_kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "articles": self.articles, "paragraphs": self.paragraphs,
            "questions": self.questions, "questions_kept": self.questions_kept,
            "questions_dropped": self.questions_dropped, "answers": self.answers,
            "answers_exact": self.answers_exact, "answers_searched": self.answers_searched,
            "answers_unmapped": self.answers_unmapped, "examples": self.examples,
        }


_WORD_EDGE = "(?<![a-z])"


def locate_answer(st: SpokenText, start: int, text: str) -> tuple[int, str, str]:
    """Place a source answer (``text`` at ``start``) in the spokenized text.

    Returns (start in ``st.text`` or -1, spoken answer, how) where how is "exact" (mapped
    through the offsets and equal to the slice), "searched" (found as whole words within
    max(60, 2 x length) characters of the mapped place, or - when the source offset does not
    point at the text - found exactly once), or the reason it was not placed.
    """
    spoken = spokenize_answer(text)
    if not spoken:
        return -1, spoken, "empty"
    ctx = st.text
    end = start + len(text)
    valid = 0 <= start and st.source[start:end] == text
    mapped = st.map_span(start, end) if valid else None
    if mapped is not None:
        s, e = mapped
        if ctx[s:e] == spoken:
            return s, spoken, "exact"
        found = nearest_occurrence(ctx, spoken, s, whole_word=True, max_dist=max(60, 2 * len(spoken)))
        return found, spoken, ("searched" if found >= 0 else "not near its place")
    # No trustworthy position (offset not pointing at the text, as in files whose offsets
    # refer to another version of the context): accept only an answer that occurs once.
    hits = [m.start() for m in re.finditer(_WORD_EDGE + re.escape(spoken) + "(?![a-z])", ctx)]
    if len(hits) > 1:
        return -1, spoken, "ambiguous"
    return (hits[0], spoken, "searched") if hits else (-1, spoken, "not found")


def spokenize_squad(data: dict[str, Any], *, source: str = "<data>",
                    max_examples: int = 10) -> tuple[dict[str, Any], SpokenizeStats]:
    """Spokenize every context and answer of a SQuAD v1.1 dict, re-aligning answer offsets.

    Each answer is first mapped through the character mapping (counted ``answers_exact`` when
    the spoken answer equals the mapped slice), else searched as whole words near the mapped
    place (``answers_searched``). Answers found neither way are dropped and counted
    (``answers_unmapped``) with up to ``max_examples`` examples - never moved to a guessed
    place; a question left with no answer is dropped. Questions are lower-cased only; every
    other field is kept.
    """
    validate_squad(data, source)
    stats = SpokenizeStats()
    out = {k: copy.deepcopy(v) for k, v in data.items() if k != "data"}
    out_articles = []
    for ai, art in enumerate(data["data"]):
        stats.articles += 1
        new_art = {k: copy.deepcopy(v) for k, v in art.items() if k != "paragraphs"}
        new_pars = []
        for pi, par in enumerate(art["paragraphs"]):
            stats.paragraphs += 1
            st = spokenize_with_map(par["context"])
            new_par = {k: copy.deepcopy(v) for k, v in par.items() if k not in ("context", "qas")}
            new_par["context"] = st.text
            new_qas = []
            cache: dict[tuple[int, str], tuple[int, str, str]] = {}
            for qa in par["qas"]:
                stats.questions += 1
                answers = []
                for ans in qa["answers"]:
                    stats.answers += 1
                    key = (ans["answer_start"], ans["text"])
                    if key not in cache:
                        cache[key] = locate_answer(st, *key)
                    pos, spoken, how = cache[key]
                    if pos < 0:
                        stats.answers_unmapped += 1
                        if len(stats.examples) < max_examples:
                            stats.examples.append({
                                "place": place(source, ai, art, pi),
                                "id": qa.get("id"), "answer": ans["text"], "spoken": spoken,
                                "reason": how,
                                "context": _snippet(st, ans["answer_start"]),
                            })
                        continue
                    if how == "exact":
                        stats.answers_exact += 1
                    else:
                        stats.answers_searched += 1
                    new_ans = {k: copy.deepcopy(v) for k, v in ans.items()}
                    new_ans["text"] = spoken
                    new_ans["answer_start"] = pos
                    answers.append(new_ans)
                if not answers and qa["answers"]:
                    continue
                new_qa = {k: copy.deepcopy(v) for k, v in qa.items() if k != "answers"}
                new_qa["question"] = qa["question"].lower()
                new_qa["answers"] = answers
                new_qas.append(new_qa)
                stats.questions_kept += 1
            new_par["qas"] = new_qas
            new_pars.append(new_par)
        new_art["paragraphs"] = new_pars
        out_articles.append(new_art)
    out["data"] = out_articles
    return out, stats


def _snippet(st: SpokenText, start: int, width: int = 60) -> str:
    mapped = st.map_span(max(start, 0), max(start, 0) + 1)
    pos = mapped[0] if mapped else 0
    return st.text[max(0, pos - width):pos + width]
