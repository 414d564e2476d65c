"""Settings the benchmarks (bench/) need, offered by the public API instead of being patched in:
`QA.load(cpu_bf16=...)` loads what a CPU with or without native bf16 gets, on any CPU."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def auto_checkpoint(tmp_path_factory, tiny_model_dir):
    """The tiny random model saved with mixed_precision "auto": its precision follows the CPU."""
    import torch

    from spokenqa.checkpoint import save_checkpoint
    from spokenqa.config import preset
    from spokenqa.model import build_model

    torch.manual_seed(0)
    cfg = preset("cpu").replace(model=str(tiny_model_dir), mixed_precision="auto", eval_batch_size=8)
    model, tok = build_model(cfg)
    folder = tmp_path_factory.mktemp("auto-checkpoint") / "best"
    save_checkpoint(folder, model, tok, cfg, info={"note": "untrained, for tests"})
    return folder


@pytest.mark.parametrize(("bf16", "precision"), [(False, "no"), (True, "bf16")])
def test_qa_load_takes_the_cpu_probe(auto_checkpoint, monkeypatch, bf16, precision):
    import torch

    from spokenqa import inference
    from spokenqa.qa import QA

    def real_probe() -> bool:
        raise AssertionError("QA.load asked the real CPU probe despite cpu_bf16")

    monkeypatch.setattr(inference, "cpu_supports_bf16", real_probe)  # the test's own check only
    qa = QA.load(auto_checkpoint, device="cpu", threads=1, backend="torch", cpu_bf16=lambda: bf16)
    assert (qa.runtime.backend, qa.precision) == ("torch", precision)
    linear = next(m for m in qa.model.modules() if isinstance(m, torch.nn.Linear))
    assert linear.weight.dtype == (torch.bfloat16 if bf16 else torch.float32)
    [result] = qa.answer("what is it", context="it is a test of the probe")
    assert result.answers and isinstance(result.answers[0].text, str)


def test_qa_load_default_probe_unchanged(tiny_checkpoint):
    """Without cpu_bf16 nothing changes: a checkpoint fixed at fp32 answers in fp32."""
    from spokenqa.qa import QA

    qa = QA.load(tiny_checkpoint, device="cpu", threads=1, backend="torch")
    assert (qa.runtime.backend, qa.precision) == ("torch", "no")
