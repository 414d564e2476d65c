"""The model shipped with spokenqa (spokenqa/release_model): installed as package data, the
default of ask / evaluate / QA.load(), loadable by transformers, and right on the README's
example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SAMPLE

from spokenqa.checkpoint import RELEASE_MODEL

# The README's example (section "Ask"): a sentence of the built-in sample's first transcript.
README_CONTEXT = ("the old harbor lighthouse was built in eighteen seventy two by a local stone mason "
                  "named thomas reed. it stands forty one meters tall and its lamp could be seen from "
                  "twenty miles at sea.")


@pytest.fixture(scope="module")
def shipped_qa():
    from spokenqa.qa import QA

    return QA.load()


def test_shipped_model_is_the_default_and_answers_the_readme_example(shipped_qa):
    assert Path(shipped_qa.cfg.model) and shipped_qa.cfg.head == "linear"
    (when,) = shipped_qa.answer("when was the harbor lighthouse built", context=README_CONTEXT)
    assert when.answers[0].text == "eighteen seventy two"
    (who,) = shipped_qa.answer("who built the lighthouse", context=README_CONTEXT)
    assert "thomas reed" in who.answers[0].text


# Written for this test (not from SQuAD or Spoken-SQuAD): transcripts in the ASR's style (lower
# case, numbers as words; the last one with recognition slips: "finish", "design", no commas).
WRITTEN = {
    "mill": ("the mill on the east river opened in nineteen oh four and employed about three hundred "
             "workers. it made wool blankets for the army until a fire destroyed the main building in "
             "nineteen thirty one. the owner, a man called james porter, rebuilt it in brick two years later."),
    "comet": ("astronomers at the mountain observatory found the comet on a cold night in march. it was "
              "named after margaret hale, the student who first saw it in a photograph. the comet returns "
              "every seventy six years and its tail can stretch for millions of kilometers."),
    "trial": ("the new vaccine was tested on four thousand volunteers in kenya and brazil. the trial lasted "
              "eighteen months and was paid for by the health ministry. doctors reported that the vaccine "
              "cut hospital visits by half among children under five."),
    "bridge": ("the tower bridge was finish in eighteen ninety four after eight years of work. it was design "
               "by horace jones the city architect and it crosses the river thames near the tower of london."),
}
# question -> (transcript, the answers a person would accept)
WRITTEN_QUESTIONS = {
    "when did the mill open": ("mill", {"nineteen oh four", "in nineteen oh four"}),
    "what did the mill make": ("mill", {"wool blankets", "wool blankets for the army"}),
    "who rebuilt the mill": ("mill", {"james porter", "a man called james porter"}),
    "what destroyed the main building": ("mill", {"a fire", "fire"}),
    "who was the comet named after": ("comet", {"margaret hale"}),
    "how often does the comet return": ("comet", {"every seventy six years", "seventy six years"}),
    "in which month was the comet found": ("comet", {"march", "in march"}),
    "how many volunteers tested the vaccine": ("trial", {"four thousand", "four thousand volunteers"}),
    "how long did the trial last": ("trial", {"eighteen months"}),
    "who paid for the trial": ("trial", {"the health ministry", "health ministry"}),
    "in which countries was the vaccine tested": ("trial", {"kenya and brazil"}),
    "when was the tower bridge finished": ("bridge", {"eighteen ninety four", "in eighteen ninety four"}),
    "who designed the tower bridge": ("bridge", {"horace jones", "horace jones the city architect"}),
    "which river does the bridge cross": ("bridge", {"the river thames", "river thames", "thames"}),
}


def test_shipped_model_answers_written_questions(shipped_qa):
    """A quality guard on the shipped weights: 14 questions written for this test over four new
    transcripts, all answered right (checked with torch bf16, ONNX fp32 and ONNX int8 alike)."""
    wrong = {}
    for question, (passage, accepted) in WRITTEN_QUESTIONS.items():
        (result,) = shipped_qa.answer(question, context=WRITTEN[passage])
        if result.answers[0].text not in accepted:
            wrong[question] = result.answers[0].text
    assert not wrong, wrong


def test_layout_and_size():
    config = json.loads((RELEASE_MODEL / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    weights = RELEASE_MODEL / "model.safetensors"
    assert weights.stat().st_size <= 50_000_000
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        keys = list(f.keys())
        assert {k.split(".", 1)[0] for k in keys} == {"bert", "qa_outputs"}
        assert f.get_tensor("qa_outputs.weight").dtype == torch.float16
    for name in ("tokenizer.json", "tokenizer_config.json", "spokenqa.json"):
        assert (RELEASE_MODEL / name).is_file(), name


def test_transformers_loads_it_unchanged_with_the_same_logits(shipped_qa):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from spokenqa.checkpoint import load_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(RELEASE_MODEL)
    batch = tokenizer(["when was the harbor lighthouse built"], [README_CONTEXT], return_tensors="pt")
    hf = AutoModelForQuestionAnswering.from_pretrained(RELEASE_MODEL).eval()
    ours, _, _ = load_checkpoint(RELEASE_MODEL)  # fp32, as transformers computes
    with torch.inference_mode():
        out = hf(**batch)
        start, end = ours(**batch)
    torch.testing.assert_close(start, out.start_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(end, out.end_logits, atol=1e-4, rtol=1e-4)


def test_evaluate_without_checkpoint_scores_the_sample(capsys):
    from spokenqa.cli import main

    assert main(["evaluate", "--data", str(SAMPLE)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["official"]["questions"] == 27
    assert scores["official"]["f1"] > 60  # clean sample sentences: a trained model gets most


@pytest.mark.slow
def test_found_after_a_non_editable_install(tmp_path):
    """Build the wheel, install it into a plain folder (not editable) and answer from there."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, env=env, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("spokenqa-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert "spokenqa/release_model/model.safetensors" in z.namelist()
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, env=env, timeout=600)
    code = ("import spokenqa.checkpoint as e; from spokenqa.qa import QA; "
            "print(e.shipped_model()); "
            f"print(QA.load().answer('when was the harbor lighthouse built', context={README_CONTEXT!r})[0]"
            ".answers[0].text)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(site)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, answer = proc.stdout.strip().splitlines()[-2:]
    assert Path(where).is_relative_to(site) and answer == "eighteen seventy two"
