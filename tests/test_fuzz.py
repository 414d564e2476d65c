"""Property-based fuzzing (hypothesis) of the data loader and the spokenizer.

- `load_squad` on arbitrary JSON-ish files (SQuAD-shaped with random holes and wrong types,
  any JSON value, raw bytes): only `DataError` may escape; what loads is consistent.
- `spokenize`, `spokenize_with_map` on arbitrary unicode: never crash, the map stays in range.
- `spokenize_squad` on valid-shaped SQuAD with random offsets: never crash, every kept answer is
  exactly its context slice, the counts add up.

Bounded: 200 examples per property, no deadline (the machine is shared).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokenqa.data import load_squad
from spokenqa.errors import DataError
from spokenqa.spoken import spokenize, spokenize_squad, spokenize_with_map

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

# --- strategies -------------------------------------------------------------------------------

ANY_CHAR = st.characters(exclude_categories=[])  # every code point, lone surrogates included
TRICKY = "ab .İΣσςß\u0301\u200f東京😀$£1234567890,:%'-\udc00"  # length-changing lower(), RTL, lone surrogate
small_text = st.text(st.sampled_from(TRICKY), max_size=30)
any_text = st.one_of(small_text, st.text(max_size=30), st.text(ANY_CHAR, max_size=10))

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
                        st.floats(allow_nan=True, allow_infinity=True), any_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(any_text, inner, max_size=3)), max_leaves=8)


def maybe(strategy):
    """Mostly the well-typed value (about 19 in 20), sometimes any JSON value."""
    return st.integers(0, 19).flatmap(lambda i: json_value if i == 19 else strategy)


def obj(fields: dict):
    """Mostly an object with every field (about 19 in 20), sometimes one with any subset of them."""
    return st.integers(0, 19).flatmap(lambda i: st.fixed_dictionaries({}, optional=fields) if i == 19
                                      else st.fixed_dictionaries(fields))


CTX = "ab İΣς\u0301\udc00."  # few letters, so answers often occur in their context
ctx_text = st.text(st.sampled_from(CTX), min_size=5, max_size=30)
answer_text = st.one_of(st.sampled_from(list(CTX)), st.text(st.sampled_from(CTX), max_size=3))
answer = maybe(obj({"text": maybe(answer_text),
                    "answer_start": maybe(st.integers(min_value=-5, max_value=40))}))
question = st.one_of(st.text("abc ?", min_size=1, max_size=8), any_text)
qa = maybe(obj({"id": maybe(st.text("abcdefgh", min_size=1, max_size=4)), "question": maybe(question),
                "answers": maybe(st.lists(answer, min_size=1, max_size=2))}))
paragraph = maybe(obj({"context": maybe(st.one_of(ctx_text, any_text)),
                       "qas": maybe(st.lists(qa, min_size=1, max_size=2))}))
article = maybe(obj({"title": json_scalar, "paragraphs": maybe(st.lists(paragraph, min_size=1, max_size=2))}))
squadish = maybe(obj({"data": maybe(st.lists(article, min_size=1, max_size=2)), "version": json_scalar}))


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "fuzz.json"


# --- loader -----------------------------------------------------------------------------------


def _load_checked(path: Path, lowercase: bool, require_answers: bool) -> None:
    try:
        examples, stats = load_squad(path, lowercase=lowercase, require_answers=require_answers)
    except DataError as e:
        message = str(e)
        assert message.startswith(str(path)) and "\n" not in message
        return
    assert examples and stats.questions == len(examples)
    assert len({e.id for e in examples}) == len(examples)
    for e in examples:
        assert e.question.strip() and e.context.strip()
        # valid Unicode: the tokenizer (and every JSON writer) refuses lone surrogates
        (e.id + e.question + e.context + "".join(a.text for a in e.answers)).encode("utf-8")
        assert not require_answers or e.answers
        for a in e.answers:
            assert a.text.strip() and a.start >= 0
            assert e.context[a.start : a.start + len(a.text)] == a.text


@FUZZ
@given(doc=squadish, lowercase=st.booleans(), require_answers=st.booleans(), ascii_only=st.booleans())
def test_load_squad_raises_only_data_error(scratch, doc, lowercase, require_answers, ascii_only):
    scratch.write_text(json.dumps(doc, ensure_ascii=ascii_only), encoding="utf-8", errors="surrogatepass")
    _load_checked(scratch, lowercase, require_answers)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=60), st.text(ANY_CHAR, max_size=60).map(
    lambda t: t.encode("utf-8", "surrogatepass"))))
def test_load_squad_on_arbitrary_bytes(scratch, raw):
    scratch.write_bytes(raw)
    _load_checked(scratch, True, True)


def test_load_squad_rejects_lone_surrogates_and_deep_nesting(scratch):
    """The two crashes the fuzzer and the bad-input corpus found, pinned."""
    scratch.write_text('{"data": [{"paragraphs": [{"context": "a \\udc00 b", "qas": []}]}]}')
    with pytest.raises(DataError, match=r"data\[0\]\.paragraphs\[0\]\.context: not Unicode text"):
        load_squad(scratch)
    scratch.write_text('{"\\ud800": 1}')
    with pytest.raises(DataError, match="the key"):
        load_squad(scratch)
    scratch.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(DataError, match="nested too deeply"):
        load_squad(scratch)


# --- spokenizer -------------------------------------------------------------------------------

WORDS = ["1995", "$5", "million", "3.5", "21st", "1990s", "10:30", "p.m.", "U.S.", "Mr.", "NFL", "km²", "%",
         "Newton's", "e.g.", "No.", "5", "½", "٣", "１２", "\u0301", "İ", "。", "\n", "...", "—", "'", '"']
# past num2words' range (16+ digits) and past int()'s 4300-digit limit
digits = st.one_of(st.integers(min_value=16, max_value=400), st.just(5000)).map(lambda n: "9" * n)
pieces = st.one_of(st.sampled_from(WORDS), digits.map(lambda d: d + "th"), digits.map(lambda d: "$" + d + ".50"),
                   digits, st.text(max_size=6), st.text(ANY_CHAR, max_size=3))
mixed_text = st.lists(pieces, max_size=12).flatmap(
    lambda parts: st.lists(st.sampled_from(["", " ", ", ", ". "]), min_size=len(parts), max_size=len(parts)).map(
        lambda seps: "".join(p + s for p, s in zip(parts, seps))))


@FUZZ
@given(text=st.one_of(mixed_text, st.text(), st.text(ANY_CHAR)))
def test_spokenize_never_crashes_and_maps_in_range(text):
    st_ = spokenize_with_map(text)
    assert isinstance(st_.text, str) and st_.text == spokenize(text)
    for piece in st_.pieces:
        assert 0 <= piece.src_start <= piece.src_end <= len(text)
        assert 0 <= piece.out_start < piece.out_end <= len(st_.text)
    back = st_.to_source(0, len(st_.text))
    assert back is None or 0 <= back[0] <= back[1] <= len(text)


@st.composite
def squad_doc(draw):
    """Valid SQuAD shape; answers are slices of the context (offset right or wrong) or free text."""
    paragraphs = []
    for p in range(draw(st.integers(1, 2))):
        context = draw(st.one_of(mixed_text, st.text(max_size=40)))
        qas = []
        for q in range(draw(st.integers(0, 3))):
            answers = []
            for _ in range(draw(st.integers(0, 2))):
                i = draw(st.integers(0, len(context)))
                j = draw(st.integers(i, len(context)))
                start = draw(st.one_of(st.just(i), st.integers(-3, len(context) + 3)))
                answers.append({"text": draw(st.one_of(st.just(context[i:j]), pieces)), "answer_start": start})
            qas.append({"id": f"{p}-{q}", "question": draw(st.text(max_size=10)), "answers": answers})
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "1.1", "data": [{"title": "fuzz", "paragraphs": paragraphs}]}


@FUZZ
@given(doc=squad_doc())
def test_spokenize_squad_keeps_answers_equal_to_their_slice(doc):
    out, stats = spokenize_squad(doc)
    assert stats.answers == stats.answers_exact + stats.answers_searched + stats.answers_unmapped
    assert 0 <= stats.questions_kept <= stats.questions
    kept = 0
    for article in out["data"]:
        for par in article["paragraphs"]:
            for qa in par["qas"]:
                kept += 1
                for a in qa["answers"]:
                    start = a["answer_start"]
                    assert 0 <= start and par["context"][start : start + len(a["text"])] == a["text"]
    assert kept == stats.questions_kept
