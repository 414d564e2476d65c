"""Run a model over features (logits), then decode and score: the evaluation used by training,
`spokenqa evaluate`, `predict` and the QA API alike, so all give the same answers.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from spokenqa.config import RunConfig
from spokenqa.data import Example
from spokenqa.decode import Prediction, decode
from spokenqa.features import (
    AlignStats,
    Features,
    collate,
    length_grouped_batches,
    prepare_eval_features,
)
from spokenqa.metrics import all_scores
from spokenqa.model import SpanQAModel

# oneDNN's ISA names (its setting ONEDNN_MAX_CPU_ISA) at or below which bf16 is emulated in fp32
EMULATED_BF16_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def cpu_supports_bf16() -> bool:
    """True where the CPU does bf16 arithmetic natively and oneDNN may use it: on x86, AVX-512
    BF16 or AMX; elsewhere (ARM) oneDNN's own check.

    Why not oneDNN's check alone on x86 (`_is_mkldnn_bf16_supported`): it says yes on every
    AVX-512 CPU, where oneDNN emulates bf16 in fp32, and there torch bf16 took 4x fp32's time
    over the whole test (Cascade Lake / Ice Lake code paths, docs/BENCHMARKS.md, "Fourth pass:
    AVX-512 without native bf16"). oneDNN's ISA capped (ONEDNN_MAX_CPU_ISA) at or below
    AVX512_CORE_VNNI emulates bf16 on any CPU, so that counts as no."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    if x86 and os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in EMULATED_BF16_ISAS:
        return False
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        return not x86 or torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(
    mixed_precision: str, device: torch.device, cpu_bf16: Callable[[], bool] | None = None
) -> str:
    """'auto' -> 'bf16' on bf16-capable GPUs and CPUs, 'fp16' on older GPUs, else 'no'.

    `cpu_bf16` probes the CPU (default `cpu_supports_bf16`, looked up at each call so a test can
    replace it; tests pass their own to act out both kinds of CPU)."""
    if mixed_precision != "auto":
        return mixed_precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and (cpu_bf16 or cpu_supports_bf16)() else "no"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class ForwardPass:
    """A forward pass that is not a torch module (spokenqa.backends.ort.OnnxModel).

    `predict_logits` calls it on a collated batch (torch tensors, as a SpanQAModel takes them) and
    gets float32 start and end logits, (B, T) each, as numpy arrays; `one_thread` says the batch is
    one of several run side by side, each on one core. Everything around the call (features,
    batching, decoding) is shared with the torch path, so backends differ only here.
    """

    device = torch.device("cpu")

    def __call__(self, batch: dict[str, torch.Tensor], one_thread: bool = False) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def model_device(model: torch.nn.Module | ForwardPass) -> torch.device:
    return model.device if isinstance(model, ForwardPass) else next(model.parameters()).device


def keep_linear_weights_in(model: torch.nn.Module, precision: str) -> None:
    """Store every Linear layer in the autocast dtype once, instead of autocast casting all the
    weights again at each call. Autocast computes Linear layers in that dtype anyway, so the
    logits are bit-identical; LayerNorm, embeddings and softmax stay float32. Only for a model
    that is no longer trained (the optimizer holds the float32 weights)."""
    if precision not in ("bf16", "fp16"):
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(dtype)


def prepare_for_inference(
    model: torch.nn.Module, mixed_precision: str, device: str | torch.device | None = None
) -> tuple[torch.device, str]:
    """Move a loaded model to `device` (default: cuda when present, else cpu) in eval mode and
    keep its Linear weights in the precision it will answer in; returns (device, precision)."""
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(target).eval()
    precision = resolve_precision(mixed_precision, target)
    keep_linear_weights_in(model, precision)
    return target, precision


def cpu_streams(device: torch.device) -> int:
    """How many batches to run at once: on a CPU, one per intra-op thread, each single-threaded.

    Measured on 2 cores (docs/BENCHMARKS.md): a small encoder's matrices are too small for two
    threads to split one batch well; two batches side by side use both cores better. On a GPU
    the device is the parallelism: one stream.
    """
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


def predict_logits(
    model: SpanQAModel | ForwardPass,
    features: Features,
    pad_id: int,
    batch_size: int,
    precision: str,
    progress: bool = False,
    streams: int = 1,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start/end logits of every window, trimmed to its length, in feature order.

    Windows are batched longest first so each batch pads little; the order depends only on the
    data, so predictions are reproducible run to run. With `streams` > 1 that many batches run
    at once in threads, each with one intra-op thread (torch's thread count is restored after);
    every batch is computed alone either way, so the logits do not depend on `streams`.
    A `ForwardPass` model ignores `precision` (it has its own).
    """
    if not isinstance(model, ForwardPass):
        model.eval()
    device = model_device(model)
    start_out: list[np.ndarray] = [np.empty(0)] * len(features)
    end_out: list[np.ndarray] = [np.empty(0)] * len(features)
    batches = length_grouped_batches(features.lengths(), batch_size, seed=None, group=True)

    def run(batch_indices: list[int], one_thread: bool = False) -> None:
        batch = collate(features, batch_indices, pad_id, labels=False)
        if isinstance(model, ForwardPass):
            start, end = model(batch, one_thread)
        else:
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.inference_mode(), autocast(precision, device):  # both are per thread
                start, end = model(**batch)
            start, end = start.float().cpu().numpy(), end.float().cpu().numpy()
        for row, f in enumerate(batch_indices):
            n = len(features.input_ids[f])
            start_out[f], end_out[f] = start[row, :n], end[row, :n]

    bar = tqdm(total=len(batches), desc="predict", unit="batch", disable=not progress, leave=False)
    if streams <= 1 or len(batches) <= 1:
        for batch_indices in batches:
            run(batch_indices)
            bar.update()
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(streams) as pool:
                for _ in pool.map(lambda b: run(b, one_thread=True), batches):
                    bar.update()
        finally:
            torch.set_num_threads(threads)
    bar.close()
    return start_out, end_out


def answer_texts(predictions: list[Prediction]) -> dict[str, str]:
    """{question id: answer}: what the metrics score and `predict` writes (predictions.json)."""
    return {p.id: p.text for p in predictions}


def nbest_lists(predictions: list[Prediction]) -> dict[str, list[dict]]:
    """{question id: the n-best candidates as dicts, best first} (`evaluate --out`: nbest.json)."""
    return {p.id: [s.__dict__ for s in p.nbest] for p in predictions}


@dataclass
class EvalResult:
    predictions: list[Prediction]
    scores: dict[str, dict] | None  # None when the examples carry no gold answers
    align: AlignStats

    def metrics(self, **about) -> dict:
        """The scores, then `about` (what answered, on which data), then how the answers fell
        into windows: `evaluate --out`'s metrics.json."""
        return {**(self.scores or {}), **about, "alignment": self.align.summary()}


def answer_examples(
    model: SpanQAModel | ForwardPass,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    cfg: RunConfig,
    precision: str,
    progress: bool = False,
) -> tuple[list[Prediction], AlignStats]:
    """Features -> logits -> decoded answers (what `spokenqa predict` does; no scoring)."""
    features, align = prepare_eval_features(examples, tokenizer, cfg)
    streams = cpu_streams(model_device(model))
    start, end = predict_logits(model, features, tokenizer.pad_token_id, cfg.eval_batch_size, precision, progress, streams)
    return decode(examples, features, start, end, cfg.decoder, cfg.n_best, cfg.max_answer_tokens), align


def evaluate_examples(
    model: SpanQAModel | ForwardPass,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    cfg: RunConfig,
    precision: str,
    progress: bool = False,
) -> EvalResult:
    """Answers, then both metric families where the examples carry gold answers."""
    predictions, align = answer_examples(model, tokenizer, examples, cfg, precision, progress)
    scores = None
    if all(e.answers for e in examples):
        scores = all_scores(examples, answer_texts(predictions))
    return EvalResult(predictions, scores, align)
