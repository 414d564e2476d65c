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

from spokenqa.export import RELEASE_MODEL

pytestmark = pytest.mark.skipif(
    not (RELEASE_MODEL / "model.safetensors").is_file(),
    reason="the release model's weights are not committed yet (issue 10: its training is in progress)",
)

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

    from spokenqa.model import load_checkpoint

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
    code = ("import spokenqa.export as e; from spokenqa.qa import QA; "
            "print(e.shipped_model()); "
            f"print(QA.load().answer('when was the harbor lighthouse built', context={README_CONTEXT!r})[0]"
            ".answers[0].text)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(site)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, answer = proc.stdout.strip().splitlines()[-2:]
    assert Path(where).is_relative_to(site) and answer == "eighteen seventy two"
