"""Synth conversion: answers placed in ASR transcripts, exact and fuzzy, never far away."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from spokenqa.corpus.align import align_answer, convert_synth, load_synth_jsonl, project_boundaries
from spokenqa.errors import DataError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPOKENQA_DATA", REPO.parent / "shared" / "data"))
SYNTH = DATA / "synth" / "squad_train_festival_sphinx.jsonl"

CONTEXT = ("The Great Reform Bill of 1832 changed voting. Some say the reform came slowly "
           "and unevenly across the many counties of the country. It passed in 1832 after a "
           "long fight. Six members resigned.")
TRANSCRIPT = ("the great reform bell of eighteen dirty to change voting. some say the reform "
              "came slowly and unevenly across the many counties of the country. it past in "
              "eighteen thirty two after a long fight. sex members resigned.")


def _record(title: str = "Reform", context: str = CONTEXT, transcript: str = TRANSCRIPT) -> dict:
    def q(qid: str, text: str, nth: int = 0) -> dict:
        start = -1
        for _ in range(nth + 1):
            start = context.index(text, start + 1)
        return {"id": qid, "question": f"Question {qid}?",
                "answers": [{"text": text, "answer_start": start}]}

    return {"order": 0, "title": title, "article_index": 1, "paragraph_index": 2,
            "context": context, "transcript": transcript,
            "qas": [q("bill", "Great Reform Bill"), q("year1", "1832"),
                    q("year2", "1832", nth=1), q("fight", "long fight"),
                    q("passed", "It passed"), q("six", "Six"), q("voting", "voting")]}


def test_project_boundaries() -> None:
    assert project_boundaries(["a", "b", "c", "d"], ["a", "x", "c", "d"]) == [0, 1, 2, 3, 4]
    # An inserted word: the boundary before "c" lands before "c".
    assert project_boundaries(["a", "b", "c", "d"], ["a", "b", "z", "c", "d"]) == [0, 1, 3, 4, 5]
    # A deleted word collapses its two boundaries.
    assert project_boundaries(["a", "b", "c", "d"], ["a", "c", "d"]) == [0, 1, 1, 2, 3]


def test_align_answer_fuzzy_and_limits() -> None:
    words = ["the", "great", "reform", "bell", "and", "eighteen", "thirty", "two", "change", "voting"]
    m = align_answer(["great", "reform", "bill", "of", "eighteen", "thirty", "two"], words, 1, 8)
    assert m is not None and (m.start_word, m.end_word) == (1, 8)
    assert m.word_distance == 2 and 0 < m.char_distance < 0.25 and not m.exact
    # Exact windows are preferred when present and near.
    m = align_answer(["change", "voting"], words, 8, 10)
    assert m is not None and m.exact and (m.start_word, m.end_word) == (8, 10)
    # Festival says "two thousand and six": the window keeps "six" though the shorter
    # "two thousand and" is nearer in characters.
    m = align_answer(["two", "thousand", "six"], ["in", "two", "thousand", "and", "six", "the"], 1, 5)
    assert m is not None and (m.start_word, m.end_word) == (1, 5)
    # Too different: rejected rather than stretched.
    assert align_answer(["the", "reform", "act", "of", "parliament"], words, 0, 5) is None
    # A verbatim hit outside the search radius is not taken.
    far = ["senate", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "council"]
    assert align_answer(["senate"], far, 12, 13) is None
    assert align_answer(["senate"], far, 2, 3) is not None


def test_convert_synth_places_answers() -> None:
    out, stats = convert_synth([_record()])
    (article,) = out["data"]
    assert article["title"] == "Reform"
    (par,) = article["paragraphs"]
    ctx = par["context"]
    assert ctx == TRANSCRIPT
    assert (par["order"], par["article_index"], par["paragraph_index"]) == (0, 1, 2)
    got = {}
    for qa in par["qas"]:
        (ans,) = qa["answers"]
        s = ans["answer_start"]
        assert ctx[s:s + len(ans["text"])] == ans["text"]
        got[qa["id"]] = (ans["text"], s, ans["match"])
    # Fuzzy: one word misheard.
    assert got["bill"] == ("great reform bell", 4, "fuzzy")
    # The first 1832 was misheard; its place still wins over the verbatim second one.
    assert got["year1"] == ("eighteen dirty to", ctx.index("eighteen dirty to"), "fuzzy")
    # The second 1832 is found verbatim at its own place.
    assert got["year2"] == ("eighteen thirty two", ctx.index("eighteen thirty two"), "exact")
    assert got["fight"] == ("long fight", ctx.index("long fight"), "exact")
    assert got["voting"] == ("voting", ctx.index("voting"), "exact")
    # "it passed" ~ "it past" is too far for a two-word answer; "six" ~ "sex" too short.
    assert "passed" not in got and "six" not in got
    assert (stats.questions, stats.questions_kept, stats.answers_exact,
            stats.answers_fuzzy, stats.answers_dropped) == (7, 5, 3, 2, 2)
    assert par["qas"][0]["question"] == "Question bill?"  # questions kept as written
    assert par["qas"][0]["answers"][0]["original_text"] == "Great Reform Bill"


def test_convert_synth_groups_by_title() -> None:
    out, stats = convert_synth([_record("A"), _record("B"), _record("A")])
    assert [a["title"] for a in out["data"]] == ["A", "B"]
    assert len(out["data"][0]["paragraphs"]) == 2 and stats.paragraphs == 3


def test_load_synth_jsonl_errors(tmp_path: Path) -> None:
    good = json.dumps(_record())
    path = tmp_path / "s.jsonl"
    path.write_text(good + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.jsonl: line 2: not valid JSON"):
        load_synth_jsonl(path)
    bad = _record()
    del bad["transcript"]
    path.write_text(good + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.jsonl: line 3: 'transcript' missing"):
        load_synth_jsonl(path)
    bad = _record()
    bad["qas"][1]["answers"][0]["answer_start"] = "12"
    path.write_text(json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 1: qas\[1\]\.answers\[0\]"):
        load_synth_jsonl(path)
    with pytest.raises(DataError, match="no such file"):
        load_synth_jsonl(tmp_path / "missing.jsonl")
    assert len(load_synth_jsonl(_write(tmp_path / "ok.jsonl", good))) == 1


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.mark.skipif(not SYNTH.is_file(), reason="shared synth set not available "
                                                "(set SPOKENQA_DATA)")
def test_full_synth_conversion() -> None:
    out, stats = convert_synth(load_synth_jsonl(SYNTH), source=str(SYNTH))
    assert stats.questions == 4677
    # The README's plain normalisation keeps 2,536 verbatim; this keeps more.
    assert stats.answers_exact >= 2536
    assert stats.questions_kept >= 3400
    n = 0
    for art in out["data"]:
        for par in art["paragraphs"]:
            for qa in par["qas"]:
                for a in qa["answers"]:
                    s = a["answer_start"]
                    assert par["context"][s:s + len(a["text"])] == a["text"]
                    n += 1
    assert n == stats.answers_exact + stats.answers_fuzzy
