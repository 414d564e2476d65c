"""spokenize / spokenize_squad: hand-worked conversions and exact answer re-alignment."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from spokenqa.errors import DataError
from spokenqa.spoken import (
    number_words,
    spokenize,
    spokenize_answer,
    spokenize_squad,
    spokenize_with_map,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPOKENQA_DATA", REPO.parent / "shared" / "data"))


@pytest.mark.parametrize("text, spoken", [
    # years are read in pairs; 2000-2009 as "two thousand N"
    ("In 2015", "in twenty fifteen"),
    ("in 1995", "in nineteen ninety five"),
    ("in 2008", "in two thousand eight"),
    ("in 1905", "in nineteen oh five"),
    ("the 1990s and '80s", "the nineteen nineties and eighties"),
    # ordinals
    ("the 3rd, 21st and 100th", "the third twenty first and one hundredth"),
    # decimals, digits after the point read one by one
    ("3.5 and 0.25", "three point five and zero point two five"),
    # percentages
    ("50% and 3.5 %", "fifty percent and three point five percent"),
    # currency
    ("$5 million", "five million dollars"),
    ("$1.2 billion", "one point two billion dollars"),
    ("$1 or $20", "one dollar or twenty dollars"),
    ("$3.50", "three dollars fifty cents"),
    ("\u00a3300", "three hundred pounds"),
    # grouped digits are cardinals, never years
    ("1,000 people", "one thousand people"),
    ("1,234,567", "one million two hundred thirty four thousand five hundred sixty seven"),
    ("155", "one hundred fifty five"),
    # times
    ("at 10:30 a.m. on", "at ten thirty a m on"),
    ("9:00 pm", "nine oclock p m"),
    ("7:05", "seven oh five"),
    # units after numbers
    ("5 km and 1 km", "five kilometers and one kilometer"),
    ("30 \u00b0C", "thirty degrees c"),
    # punctuation: sentence ends become ". ", everything else goes
    ("Hello, world! How are you? Fine.", "hello world. how are you. fine."),
    ("(a) \"quoted\"; colon: semi", "a quoted colon semi"),
    # hyphens and slashes are spaces; whitespace collapses
    ("well-known rock/pop  \n\t band", "well known rock pop band"),
    ("1990\u20131995", "nineteen ninety nineteen ninety five"),
    # initialisms letter by letter, pronounceable acronyms as words
    ("the NFL and NASA", "the n f l and nasa"),
    ("the U.S. Army", "the u s army"),
    ("NBC's studio", "n b cs studio"),
    # apostrophes dropped inside words
    ("Warsaw's o'clock", "warsaws oclock"),
    # abbreviations and initials do not end sentences
    ("Dr. Smith met John F. Kennedy.", "doctor smith met john f kennedy."),
    ("e.g. this", "for example this"),
    # accents folded, other scripts dropped
    ("Caf\u00e9 G\u00f6del \u4e2d\u6587 \u00c6sir", "cafe godel aesir"),
])
def test_spokenize_cases(text: str, spoken: str) -> None:
    assert spokenize(text) == spoken


def test_number_words_year_rule() -> None:
    assert number_words("2015") == "twenty fifteen"
    assert number_words("2015", allow_year=False) == "two thousand fifteen"
    assert number_words("1000") == "one thousand"  # outside 1100-2099: a plain cardinal
    assert number_words("007") == "zero zero seven"


def test_output_alphabet_is_transcript_alphabet() -> None:
    text = ("On 12 May 2008 (14:28 CST), a 7.9-magnitude quake hit Sichuan; 69,197 died & "
            "$1.5bn / \u20ac2m were pledged [citation needed] \u2014 the 2nd\u2026 \u00bfs\u00ed?")
    out = spokenize(text)
    assert re.fullmatch(r"[a-z .]*", out)
    assert "  " not in out and ".." not in out and not out.startswith(" ")


def test_idempotent_on_transcript_style() -> None:
    transcript = "the broncos won. they scored twenty four points. the end."
    assert spokenize(transcript) == transcript


def test_map_span_through_converted_and_plain_words() -> None:
    text = "In 2015, Denver's Broncos won $5 million."
    st = spokenize_with_map(text)
    assert st.text == "in twenty fifteen denvers broncos won five million dollars."

    def mapped(sub: str) -> str:
        s = text.index(sub)
        span = st.map_span(s, s + len(sub))
        assert span is not None
        return st.text[span[0]:span[1]]

    assert mapped("2015") == "twenty fifteen"
    assert mapped("Denver") == "denver"  # inside "denvers", character-exact
    assert mapped("Broncos won") == "broncos won"
    assert mapped("$5 million") == "five million dollars"
    # A span cutting a converted token maps to the whole token (caller must check).
    assert mapped("5 million") == "five million dollars"
    # Punctuation alone has no spoken words.
    comma = text.index(",")
    assert st.map_span(comma, comma + 1) is None
    # And back to the source.
    s = st.text.index("broncos")
    assert st.to_source(s, s + len("broncos")) == (text.index("Broncos"),
                                                      text.index("Broncos") + 7)


def test_spokenize_answer_has_no_final_period() -> None:
    assert spokenize_answer("Washington, D.C.") == "washington d c"
    assert spokenize_answer("Denver Broncos.") == "denver broncos"


def _squad(context: str, answers: list[tuple[str, int]]) -> dict:
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{
        "context": context, "note": "kept",
        "qas": [{"id": f"q{i}", "question": f"What Is Q{i}?", "extra": i,
                 "answers": [{"text": t, "answer_start": s}]}
                for i, (t, s) in enumerate(answers)]}]}]}


def test_spokenize_squad_realigns_every_answer() -> None:
    context = ("Super Bowl 50 was played on February 7, 2016. Denver's Broncos beat "
               "Carolina 24\u201310 and won $5 million, 3.5% more than in 1995.")
    wanted = ["Super Bowl 50", "February 7, 2016", "Denver", "24\u201310", "$5 million",
              "5 million", "3.5%", "1995", "Broncos beat Carolina"]
    data = _squad(context, [(w, context.index(w)) for w in wanted])
    out, stats = spokenize_squad(data)
    par = out["data"][0]["paragraphs"][0]
    ctx = par["context"]
    assert ctx == ("super bowl fifty was played on february seven twenty sixteen. denvers "
                   "broncos beat carolina twenty four ten and won five million dollars three "
                   "point five percent more than in nineteen ninety five.")
    expected = ["super bowl fifty", "february seven twenty sixteen", "denver",
                "twenty four ten", "five million dollars", "five million",
                "three point five percent", "nineteen ninety five", "broncos beat carolina"]
    got = []
    for qa in par["qas"]:
        (ans,) = qa["answers"]
        assert ctx[ans["answer_start"]:ans["answer_start"] + len(ans["text"])] == ans["text"]
        got.append(ans["text"])
    assert got == expected
    # Explicit offsets for the two hardest ones: inside "denvers", and inside "$5 million".
    starts = {qa["answers"][0]["text"]: qa["answers"][0]["answer_start"] for qa in par["qas"]}
    assert starts["denver"] == ctx.index("denvers")
    assert starts["five million"] == ctx.index("five million dollars")
    assert stats.answers == 9 and stats.answers_unmapped == 0
    assert stats.answers_exact == 8 and stats.answers_searched == 1  # "5 million" searched
    # Fields kept; questions lower-cased only.
    assert par["note"] == "kept"
    assert [qa["id"] for qa in par["qas"]] == [f"q{i}" for i in range(9)]
    assert par["qas"][0]["question"] == "what is q0?" and par["qas"][3]["extra"] == 3


def test_unmappable_answer_is_counted_not_shifted() -> None:
    # "1 million" recovered by string search inside "11 million": it has no spoken
    # equivalent in "eleven million"; with no whole-word "one million" near, it is dropped.
    context = "As many as 11 million were homeless and later returned."
    data = _squad(context, [("1 million", context.index("1 million")),
                            ("homeless", context.index("homeless"))])
    out, stats = spokenize_squad(data)
    qas = out["data"][0]["paragraphs"][0]["qas"]
    assert [qa["id"] for qa in qas] == ["q1"]
    assert stats.answers_unmapped == 1 and stats.questions_dropped == 1
    assert stats.examples[0]["id"] == "q0" and stats.examples[0]["answer"] == "1 million"


def test_bad_shape_raises_data_error_with_place() -> None:
    with pytest.raises(DataError, match=r"x\.json: expected a JSON object with a 'data' list"):
        spokenize_squad({"articles": []}, source="x.json")
    data = _squad("Some text.", [("text", 5)])
    del data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"]
    with pytest.raises(DataError, match=r"x\.json: article 0 \('T'\), paragraph 0, question 'q0', answer 0: "
                                        r"missing 'answer_start'"):
        spokenize_squad(data, source="x.json")


@pytest.mark.skipif(not (DATA / "squad" / "train-v1.1.json").is_file(),
                    reason="shared SQuAD train not available (set SPOKENQA_DATA)")
def test_squad_train_sample_maps_nearly_all_answers() -> None:
    data = json.loads((DATA / "squad" / "train-v1.1.json").read_text(encoding="utf-8"))
    sample = {"data": data["data"][:3]}
    out, stats = spokenize_squad(sample)
    assert stats.questions > 1000
    assert stats.answers_unmapped <= 0.005 * stats.answers
    for art in out["data"]:
        for par in art["paragraphs"]:
            assert re.fullmatch(r"[a-z .]*", par["context"])
            for qa in par["qas"]:
                for a in qa["answers"]:
                    s = a["answer_start"]
                    assert par["context"][s:s + len(a["text"])] == a["text"]


@pytest.mark.skipif(not (DATA / "spoken-squad" / "spoken_test-v1.1.json").is_file(),
                    reason="shared Spoken-SQuAD test not available (set SPOKENQA_DATA)")
def test_spoken_squad_contexts_are_already_in_style() -> None:
    data = json.loads((DATA / "spoken-squad" / "spoken_test-v1.1.json").read_text("utf-8"))
    contexts = [p["context"] for a in data["data"] for p in a["paragraphs"]][:500]
    unchanged = sum(spokenize(c) == c for c in contexts)
    assert unchanged >= 0.98 * len(contexts)
