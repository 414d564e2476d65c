"""`spokenqa export`: Hugging Face's QA layout, loadable by transformers and by spokenqa alike;
the shipped-model lookup and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spokenqa.errors import ConfigError


def _batch(tokenizer):
    enc = tokenizer(["when was the bridge built", "who built it"],
                    ["the bridge was built in nineteen thirty two by a local firm."] * 2,
                    padding=True, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def _spokenqa_logits(folder: Path, batch) -> tuple[torch.Tensor, torch.Tensor]:
    from spokenqa.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(folder)
    with torch.inference_mode():
        return model(**batch)


def _transformers_logits(folder: Path, batch) -> tuple[torch.Tensor, torch.Tensor]:
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    with torch.inference_mode():
        out = model(**batch)
    return out.start_logits, out.end_logits


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_export_round_trip_same_logits_in_transformers(tiny_checkpoint, tmp_path, tokenizer, dtype):
    from spokenqa.export import export_checkpoint

    out = export_checkpoint(tiny_checkpoint, tmp_path / "hf", dtype=dtype)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    from safetensors.torch import load_file

    state = load_file(str(out / "model.safetensors"))
    assert {k.split(".", 1)[0] for k in state} == {"bert", "qa_outputs"}
    assert state["qa_outputs.weight"].dtype == (torch.float16 if dtype == "fp16" else torch.float32)
    assert (out / "spokenqa.json").is_file() and (out / "tokenizer.json").is_file()

    batch = _batch(tokenizer)
    mask = batch["attention_mask"].bool()
    hf_start, hf_end = _transformers_logits(out, batch)
    sq_start, sq_end = _spokenqa_logits(out, batch)  # spokenqa loads the exported folder too
    torch.testing.assert_close(sq_start[mask], hf_start[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sq_end[mask], hf_end[mask], atol=1e-5, rtol=1e-5)
    # and against the original fp32 checkpoint: exact for fp32, fp16 rounding only for fp16
    orig_start, orig_end = _spokenqa_logits(tiny_checkpoint, batch)
    tol = 1e-5 if dtype == "fp32" else 2e-2
    torch.testing.assert_close(hf_start[mask], orig_start[mask], atol=tol, rtol=tol)
    torch.testing.assert_close(hf_end[mask], orig_end[mask], atol=tol, rtol=tol)


def test_export_refuses_reference_head(tmp_path, tiny_model_dir):
    from spokenqa.checkpoint import save_checkpoint
    from spokenqa.config import preset
    from spokenqa.model import build_model

    cfg = preset("cpu").replace(model=str(tiny_model_dir), head="reference")
    model, tok = build_model(cfg)
    save_checkpoint(tmp_path / "ref", model, tok, cfg, info={})
    proc = subprocess.run([sys.executable, "-m", "spokenqa", "export", str(tmp_path / "ref"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "head 'reference'" in lines[0] and "linear" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_export_of_an_export_is_the_same(tiny_checkpoint, tmp_path):
    """Exporting an already exported folder (e.g. the shipped model to another dtype) works."""
    from safetensors.torch import load_file

    from spokenqa.export import export_checkpoint

    first = export_checkpoint(tiny_checkpoint, tmp_path / "a", dtype="fp32")
    second = export_checkpoint(first, tmp_path / "b", dtype="fp32")
    a, b = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_missing_shipped_model_is_one_line_naming_the_file(tiny_checkpoint, tmp_path, monkeypatch):
    import shutil

    from spokenqa import checkpoint

    broken = tmp_path / "release_model"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "model.safetensors").unlink()
    monkeypatch.setattr(checkpoint, "RELEASE_MODEL", broken)
    with pytest.raises(ConfigError, match=r"release_model/model\.safetensors: missing"):
        checkpoint.resolve_checkpoint(None)
    assert checkpoint.resolve_checkpoint("some/dir") == Path("some/dir")


def test_broken_weights_are_one_line_naming_the_file(tiny_checkpoint, tmp_path):
    import shutil

    from spokenqa.qa import QA

    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])  # a truncated download
    with pytest.raises(ConfigError) as e:
        QA.load(broken)
    message = str(e.value)
    assert "\n" not in message and str(broken / "model.safetensors") in message


def test_cli_without_checkpoint_names_the_missing_shipped_file(tmp_path):
    """The real CLI in a subprocess, with the shipped folder's weights hidden by a stand-in
    package path: one line on stderr, exit status 2."""
    from spokenqa import checkpoint

    code = (
        "import sys, spokenqa.checkpoint as e, pathlib; "
        f"e.RELEASE_MODEL = pathlib.Path({str(tmp_path / 'nothing')!r}); "
        "from spokenqa.cli import main; sys.exit(main(['ask', '--question', 'q', '--context', 'c']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "shipped model" in lines[0] and "nothing" in lines[0], proc.stderr
    assert checkpoint.RELEASE_MODEL.name == "release_model"


def test_export_stores_the_answer_cap_chosen_on_validation(tiny_checkpoint, tmp_path, capsys):
    """--max-answer-tokens travels in spokenqa.json and is what the loaded model decodes with;
    without it the checkpoint's cap is kept; ONNX export and a cap of 0 are refused in one line."""
    from spokenqa.cli import main
    from spokenqa.config import RunConfig
    from spokenqa.qa import QA

    kept = RunConfig.load(tiny_checkpoint / "spokenqa.json").max_answer_tokens
    assert main(["export", str(tiny_checkpoint), str(tmp_path / "same")]) == 0
    assert RunConfig.load(tmp_path / "same" / "spokenqa.json").max_answer_tokens == kept
    assert main(["export", str(tiny_checkpoint), str(tmp_path / "capped"), "--max-answer-tokens", "7"]) == 0
    assert RunConfig.load(tmp_path / "capped" / "spokenqa.json").max_answer_tokens == 7 != kept
    assert QA.load(tmp_path / "capped").cfg.max_answer_tokens == 7
    capsys.readouterr()
    assert main(["export", str(tiny_checkpoint), str(tmp_path / "zero"), "--max-answer-tokens", "0"]) == 2
    assert main(["export", str(tiny_checkpoint), str(tmp_path / "o"), "--format", "onnx",
                 "--max-answer-tokens", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "positive" in err[0] and "--max-answer-tokens is for --format hf" in err[1]
    assert not (tmp_path / "zero").exists() and not (tmp_path / "o").exists()
