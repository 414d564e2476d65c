"""predict_logits: running batches side by side (CPU streams) must not change any logit; the CPU's
bf16 probe."""

import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenqa.checkpoint import load_checkpoint
from spokenqa.data import Example
from spokenqa.features import prepare_eval_features
from spokenqa.inference import (
    cpu_streams,
    cpu_supports_bf16,
    keep_linear_weights_in,
    predict_logits,
)
from spokenqa.runinfo import cpu_flags


def _examples(n: int) -> list[Example]:
    context = " ".join(f"word{i} is said in sentence {i % 7}." for i in range(60))
    return [Example(str(i), "", context, f"what is said in sentence {i}", ()) for i in range(n)]


def test_streams_give_the_same_logits_and_restore_threads(tiny_checkpoint):
    model, tokenizer, cfg = load_checkpoint(tiny_checkpoint)
    cfg = cfg.replace(max_length=64, doc_stride=32)
    features, _ = prepare_eval_features(_examples(9), tokenizer, cfg)
    assert len(features) > 4  # several batches of 2 below
    threads = torch.get_num_threads()
    one = predict_logits(model, features, tokenizer.pad_token_id, 2, "no", streams=1)
    two = predict_logits(model, features, tokenizer.pad_token_id, 2, "no", streams=3)
    assert torch.get_num_threads() == threads
    for a, b in zip(one[0] + one[1], two[0] + two[1]):
        assert np.array_equal(a, b)
    assert [len(x) for x in one[0]] == [len(ids) for ids in features.input_ids]


def test_bf16_linear_weights_equal_autocast(tiny_checkpoint):
    """Keeping Linear weights in bf16 is the computation autocast does: identical logits."""
    model, tokenizer, cfg = load_checkpoint(tiny_checkpoint)
    features, _ = prepare_eval_features(_examples(3), tokenizer, cfg)
    autocast = predict_logits(model, features, tokenizer.pad_token_id, 4, "bf16")
    keep_linear_weights_in(model, "bf16")
    assert next(model.head.parameters()).dtype == torch.bfloat16
    kept = predict_logits(model, features, tokenizer.pad_token_id, 4, "bf16")
    for a, b in zip(autocast[0] + autocast[1], kept[0] + kept[1]):
        assert np.array_equal(a, b)


def test_cpu_streams_follow_threads():
    assert cpu_streams(torch.device("cpu")) == torch.get_num_threads()
    assert cpu_streams(torch.device("cuda")) == 1


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists() or platform.machine() != "x86_64",
                    reason="reads an x86 CPU's flags from /proc/cpuinfo (Linux)")
def test_bf16_probe_means_native_bf16(monkeypatch):
    """bf16 only where the CPU does it natively: oneDNN's own check also says yes on AVX-512 CPUs
    without it (Cascade Lake, Ice Lake), where bf16 is emulated and ~4x slower than fp32."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    native = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    assert cpu_supports_bf16() == native


@pytest.mark.skipif(platform.machine() != "x86_64", reason="oneDNN's x86 ISA names")
@pytest.mark.parametrize("cap", ["avx512_core_vnni", "AVX512_CORE", "AVX2"])
def test_bf16_probe_honours_a_onednn_isa_cap(monkeypatch, cap):
    """Capped at an ISA without native bf16, oneDNN emulates it: the probe says no on any x86 CPU
    (read before oneDNN is asked, so this test does not cap oneDNN for the rest of the run)."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert not cpu_supports_bf16()
