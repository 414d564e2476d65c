"""bench/as_cpu.py runs a command on an older CPU kind's code paths (BENCHMARKS.md, fourth and
fifth passes). Checked in a real subprocess: what torch, spokenqa's probe and ONNX Runtime's int8
kernels see under each kind. Skipped where the kind cannot run (not x86 Linux; for `avx2`, no
CPUID faulting or no C compiler)."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spokenqa.runinfo import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json
import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper
from spokenqa.inference import cpu_supports_bf16

# uint8 x int8 products with large values: exact with VNNI or AMX, saturated by AVX2's VPMADDUBSW
graph = helper.make_graph(
    [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "g",
    [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, 384]),
     helper.make_tensor_value_info("b", TensorProto.INT8, [384, 64])],
    [helper.make_tensor_value_info("y", TensorProto.INT32, [None, 64])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
a = rng.integers(0, 256, (64, 384)).astype(np.uint8)
b = rng.integers(-127, 128, (384, 64)).astype(np.int8)
exact = a.astype(np.int64) @ b.astype(np.int64)
error = float(np.abs(session.run(None, {"a": a, "b": b})[0] - exact).max() / np.abs(exact).max())
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "bf16": cpu_supports_bf16(),
                  "int8_error": error}))
"""


def _run_as(kind: str) -> dict:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "as_cpu.py"), kind, "--", sys.executable, "-c", PROBE],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


x86_linux = pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")),
                               reason="bench/as_cpu.py runs on x86 Linux")


@x86_linux
@pytest.mark.skipif("cpuid_fault" not in cpu_flags(), reason="this CPU or VM has no CPUID faulting")
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_avx2_kind_sees_an_avx2_cpu():
    seen = _run_as("avx2")
    assert seen["capability"] == "AVX2"
    assert seen["bf16"] is False
    assert seen["int8_error"] > 0.01  # VPMADDUBSW's 16-bit pair sums saturate (~12% on this draw)


@x86_linux
@pytest.mark.skipif("avx512f" not in cpu_flags(), reason="the avx512-vnni kind needs an AVX-512 CPU")
def test_avx512_vnni_kind_has_no_native_bf16():
    seen = _run_as("avx512-vnni")
    assert seen["bf16"] is False  # oneDNN capped at AVX512_CORE_VNNI emulates bf16
    if "avx512_vnni" in cpu_flags():
        assert seen["int8_error"] == 0.0  # VNNI (AMX refused): exact integer products
