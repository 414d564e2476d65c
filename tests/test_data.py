import json

import pytest
from conftest import SAMPLE, write_squad

from spokenqa.data import load_squad, lower_keep_offsets
from spokenqa.errors import DataError


def test_sample_loads():
    examples, stats = load_squad(SAMPLE)
    assert stats.questions == len(examples) == 27
    for e in examples:
        for a in e.answers:
            assert e.context[a.start : a.start + len(a.text)] == a.text


def test_repair_and_skip_are_counted(tmp_path):
    ctx = "the cat sat on the mat. the cat slept."
    path = write_squad(tmp_path / "d.json", [(ctx, [
        ("q1", "where", [("the mat", 0)]),          # wrong start, text present -> repaired
        ("q2", "what", [("a dog", 3)]),             # text absent -> skipped; question dropped
        ("q3", "who", [("cat", 29), ("cat", 4)]),   # nearest occurrence to 29 is 28
    ])])
    examples, stats = load_squad(path)
    assert [e.id for e in examples] == ["q1", "q3"]
    assert examples[0].answers[0].start == ctx.index("the mat")
    assert examples[1].answers[0].start == 28
    assert (stats.answers_repaired, stats.answers_skipped, stats.questions_without_answers) == (2, 1, 1)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[]", "expected a JSON object with a 'data' list"),
        ('{"data": [{"title": "x"}]}', "article 0 ('x'): missing 'paragraphs'"),
        ('{"data": [{"paragraphs": [{"qas": []}]}]}', "article 0, paragraph 0: missing 'context'"),
        ('{"data": [{"paragraphs": [{"context": "a b", "qas": [{"question": "q?", "answers": []}]}]}]}',
         "paragraph 0, question 0: missing 'id'"),
        ('{"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "z", "question": "q", "answers": [{"text": "a"}]}]}]}]}',
         "question 'z', answer 0: missing 'answer_start'"),
        ('{"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "z", "question": " ", "answers": []}]}]}]}',
         "question 'z': empty question"),
        ('{"data": []}', "no usable questions"),
    ],
)
def test_malformed_files_name_the_place(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_squad(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_duplicate_ids_and_non_utf8(tmp_path):
    path = write_squad(tmp_path / "d.json", [("a b c", [("x", "q", [("a", 0)]), ("x", "q2", [("b", 2)])])])
    with pytest.raises(DataError, match="duplicate question id"):
        load_squad(path)
    raw = tmp_path / "latin1.json"
    raw.write_bytes(json.dumps({"data": []}).encode() + b"\xff")
    with pytest.raises(DataError, match="not UTF-8"):
        load_squad(raw)
    with pytest.raises(DataError, match="no such file"):
        load_squad(tmp_path / "missing.json")


def test_lowercase_keeps_offsets():
    text = "İstanbul ÉCOLE"
    assert len(lower_keep_offsets(text)) == len(text)
    assert lower_keep_offsets(text).endswith("école")
