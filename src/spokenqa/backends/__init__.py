"""Which forward pass answers: torch (eager; bf16, fp16 or fp32; CPU or GPU) or ONNX Runtime (CPU;
fp32 or dynamic int8). Used by `evaluate`, `predict`, `ask`, `serve` and `QA.load`.

`auto` (the default):
- on a GPU: torch;
- on a CPU with native bf16 (AVX-512 BF16 or AMX; `spokenqa.inference.cpu_supports_bf16`):
  torch, as before this backend existed: bf16 where the checkpoint allows it, spokenqa's fastest
  CPU path (docs/BENCHMARKS.md). ONNX Runtime is not chosen there until measurements say it is
  faster;
- on a CPU without it, where torch would run fp32 (AVX2-only CPUs; AVX-512 CPUs without native
  bf16, Cascade Lake and Ice Lake, whose emulated bf16 took 4x fp32's time): ONNX
  Runtime's int8 (fused graphs, spokenqa.backends.ort; int8 weights, the span head fp32, the
  first two layers' feed-forward output projections quantised per token,
  spokenqa.backends.ort._int8_plan) where the checkpoint's mixed_precision is "auto" (the
  shipped model's). Measured on the validation set (docs/BENCHMARKS.md, "Fast on CPUs without
  bf16", fifth pass), official F1 against fp32 at the checkpoint's batch 16 / 8 / 32: without
  VNNI (AVX2 code paths) -0.21 / -0.52 / -0.38, with VNNI (exact int8 products) -0.20 / -0.22 /
  -0.24 (the bar was 0.3 at the checkpoint's batch size; per-batch rounding moves it by about
  0.2). Whole test against torch fp32: 1.42x on an AVX2 AMD EPYC (second pass), 1.38x on
  AVX-512 VNNI code paths (fourth pass). Most of its activations are quantised with one scale per
  batch, so a question's probabilities move a little (~1e-2) with the questions batched with
  it; fp32's do not. A checkpoint saved with mixed_precision "no" gets ONNX Runtime fp32, torch
  fp32's arithmetic (logits equal to about 1e-5).
  A checkpoint that forces bf16 or fp16 keeps torch. Without onnxruntime installed (an extra):
  torch fp32 with a one-line notice.

`--backend onnx` alone is ONNX Runtime fp32 (the same answers as torch fp32); `--quantize int8`
asks for its dynamic int8 (Linear layers) on any CPU (its measured cost: docs/BENCHMARKS.md).

Only the forward pass differs between backends: features, batching, decoding, scores and the
answers' character and time spans are the same code (spokenqa.inference.predict_logits).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spokenqa.errors import ConfigError, notice

if TYPE_CHECKING:  # torch is imported when a backend is chosen, not when the CLI parses its flags
    import torch

BACKENDS = ("auto", "torch", "onnx")
QUANTIZE = ("int8",)
# What the ONNX backend needs: the runtime, and the exporter and graph tools that build its graph
# on first use (the `onnx` extra). onnxruntime alone comes with other packages (faster-whisper).
ONNX_PACKAGES = ("onnxruntime", "onnx", "onnxscript")


@dataclass(frozen=True)
class Runtime:
    """What answers: reported by every command's output and by /health."""

    backend: str  # "torch" or "onnx"
    precision: str  # torch: "bf16", "fp16" or "no" (fp32), as autocast takes it; onnx: "fp32" or "int8"
    device: torch.device

    @property
    def precision_name(self) -> str:
        return "fp32" if self.precision == "no" else self.precision

    def to_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "precision": self.precision_name, "device": str(self.device)}

    def __str__(self) -> str:
        return f"{self.backend} {self.precision_name} on {self.device}"


def add_backend_args(p: argparse.ArgumentParser) -> None:
    """--backend and --quantize, the same on evaluate, predict, ask and serve."""
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="what runs the model: torch, onnx (ONNX Runtime fp32, CPU) or auto (default): torch on a "
                   "GPU or a CPU with native bf16, ONNX Runtime int8 on other CPUs")
    p.add_argument("--quantize", choices=QUANTIZE,
                   help="ONNX Runtime with dynamic int8 Linear layers: faster, answers may change "
                   "(docs/BENCHMARKS.md); implies --backend onnx under auto")


def missing_onnx_packages() -> list[str]:
    """The packages of `ONNX_PACKAGES` that are not installed (looked up without importing them;
    a `sys.modules` entry of None, which makes an import fail, counts as missing)."""
    return [name for name in ONNX_PACKAGES
            if name in sys.modules and sys.modules[name] is None or importlib.util.find_spec(name) is None]


def choose_backend(
    backend: str = "auto",
    quantize: str | None = None,
    mixed_precision: str = "auto",
    device: str | torch.device | None = None,
    cpu_bf16: Callable[[], bool] | None = None,
    onnx_missing: Callable[[], list[str]] = missing_onnx_packages,
) -> Runtime:
    """The backend, precision and device that will answer (see the module docstring).

    `mixed_precision` is the checkpoint's setting; `cpu_bf16` and `onnx_missing` probe this
    machine (default: `spokenqa.inference.cpu_supports_bf16`, a look for the ONNX backend's
    packages); tests pass their own to see every kind of CPU on one machine.
    """
    import torch

    from spokenqa.inference import cpu_supports_bf16, resolve_precision

    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"--quantize {quantize!r}: choose {', '.join(QUANTIZE)} (or leave it out for fp32)")
    if backend == "torch" and quantize:
        raise ConfigError("--quantize int8 is for the ONNX backend: use --backend onnx (or auto)")
    wants_onnx = backend == "onnx" or quantize is not None
    has_bf16 = (cpu_bf16 or cpu_supports_bf16)()
    if device is None:
        device = "cuda" if torch.cuda.is_available() and not wants_onnx else "cpu"
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device here (use --device cpu)")
    if wants_onnx and target.type != "cpu":
        raise ConfigError(f"the ONNX backend runs on the CPU: drop --device {device} (or use --backend torch)")
    if not wants_onnx:
        precision = resolve_precision(mixed_precision, target, lambda: has_bf16)
        if backend == "torch" or target.type != "cpu" or has_bf16 or precision != "no":
            return Runtime("torch", precision, target)
        missing = onnx_missing()
        if missing:
            notice(f"this CPU has no native bf16 and the ONNX backend is not installed (missing {', '.join(missing)}): "
                   "using torch fp32 (pip install 'spokenqa[onnx]' for the ONNX Runtime backend)")
            return Runtime("torch", precision, target)
        if mixed_precision == "auto":  # backend "auto" here: int8, with VNNI or without
            quantize = "int8"
    else:
        missing = onnx_missing()
        if missing:
            raise ConfigError(f"the ONNX backend needs {', '.join(missing)}: pip install 'spokenqa[onnx]' "
                              "(or use --backend torch)")
    return Runtime("onnx", quantize or "fp32", target)


def load_for_inference(
    checkpoint: str | Path,
    backend: str = "auto",
    quantize: str | None = None,
    device: str | torch.device | None = None,
    cpu_bf16: Callable[[], bool] | None = None,
):
    """(model, tokenizer, cfg, Runtime) of `checkpoint`, ready to answer: a torch `SpanQAModel`
    moved to its device with its Linear weights in the answering precision, or an
    `onnx_backend.OnnxModel` (its graph exported and cached on first use). The backend is chosen
    from the checkpoint's settings before any weights are read, so a bad combination of flags
    costs no loading time."""
    from spokenqa.checkpoint import checkpoint_config

    checkpoint = Path(checkpoint)
    runtime = choose_backend(backend, quantize, checkpoint_config(checkpoint).mixed_precision, device, cpu_bf16)
    if runtime.backend == "onnx":
        from spokenqa.backends.ort import load_onnx

        model, tokenizer, cfg = load_onnx(checkpoint, runtime.precision)
        return model, tokenizer, cfg, runtime
    from spokenqa.checkpoint import load_checkpoint
    from spokenqa.inference import prepare_for_inference

    model, tokenizer, cfg = load_checkpoint(checkpoint)
    prepare_for_inference(model, runtime.precision, runtime.device)
    return model, tokenizer, cfg, runtime
