"""Run a model over features (logits), then decode and score: the evaluation used by training,
`spokenqa evaluate`, `predict` and the QA API alike, so all give the same answers.
"""

from __future__ import annotations

import contextlib
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


def cpu_supports_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX-512 BF16 / AMX); elsewhere bf16 is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(mixed_precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' on bf16-capable GPUs and CPUs, 'fp16' on older GPUs, else 'no'."""
    if mixed_precision != "auto":
        return mixed_precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "no"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def predict_logits(
    model: SpanQAModel,
    features: Features,
    pad_id: int,
    batch_size: int,
    precision: str,
    progress: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start/end logits of every window, trimmed to its length, in feature order.

    Windows are batched longest first so each batch pads little; the order depends only on the
    data, so predictions are reproducible run to run.
    """
    model.eval()
    device = model_device(model)
    start_out: list[np.ndarray] = [np.empty(0)] * len(features)
    end_out: list[np.ndarray] = [np.empty(0)] * len(features)
    batches = length_grouped_batches(features.lengths(), batch_size, seed=None, group=True)
    for batch_indices in tqdm(batches, desc="predict", unit="batch", disable=not progress, leave=False):
        batch = {k: v.to(device) for k, v in collate(features, batch_indices, pad_id, labels=False).items()}
        with autocast(precision, device):
            start, end = model(**batch)
        start, end = start.float().cpu().numpy(), end.float().cpu().numpy()
        for row, f in enumerate(batch_indices):
            n = len(features.input_ids[f])
            start_out[f], end_out[f] = start[row, :n], end[row, :n]
    return start_out, end_out


@dataclass
class EvalResult:
    predictions: list[Prediction]
    scores: dict[str, dict] | None  # None when the examples carry no gold answers
    align: AlignStats


def evaluate_examples(
    model: SpanQAModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    cfg: RunConfig,
    precision: str,
    progress: bool = False,
) -> EvalResult:
    """Features -> logits -> decoded answers -> both metric families."""
    features, align = prepare_eval_features(examples, tokenizer, cfg)
    start, end = predict_logits(model, features, tokenizer.pad_token_id, cfg.eval_batch_size, precision, progress)
    predictions = decode(examples, features, start, end, cfg.decoder, cfg.n_best, cfg.max_answer_tokens)
    scores = None
    if all(e.answers for e in examples):
        scores = all_scores(examples, {p.id: p.text for p in predictions})
    return EvalResult(predictions, scores, align)
