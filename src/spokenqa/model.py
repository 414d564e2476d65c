"""Encoder + span head -> start/end logits; the span losses; checkpoint save and load.

Any encoder that `AutoModel` accepts works (the shipped MiniLM, bert-base-uncased, MPNet...).
Heads:
- `linear`: Linear(h, 2) on the last layer, as `AutoModelForQuestionAnswering`.
- `reference`: concat(last, third-to-last layer) (2h) -> Dropout -> Linear(2h, 2h) -> LeakyReLU
  -> Linear(2h, 2), the reference study's head.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from spokenqa.config import RunConfig, resolve_model_path
from spokenqa.errors import ConfigError

MASKED = -1e4  # logit for padding; finite so bf16/fp16 softmax stays NaN-free


class SpanQAModel(nn.Module):
    """Transformer encoder with a start/end span head."""

    def __init__(self, encoder: nn.Module, head: str, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.head_name = head
        hidden = encoder.config.hidden_size
        if head == "linear":
            self.head = nn.Linear(hidden, 2)
        elif head == "reference":
            if encoder.config.num_hidden_layers < 3:
                raise ConfigError("head 'reference' needs an encoder with at least 3 layers")
            self.head = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(2 * hidden, 2 * hidden),
                nn.LeakyReLU(),
                nn.Linear(2 * hidden, 2),
            )
        else:
            raise ConfigError(f"unknown head {head!r}; choose linear or reference")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits, (B, T) each, padding set to MASKED."""
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        reference = self.head_name == "reference"
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=reference,
            return_dict=True,
            **kwargs,
        )
        if reference:
            hidden = torch.cat([out.hidden_states[-1], out.hidden_states[-3]], dim=-1)  # (B, T, 2H)
        else:
            hidden = out.last_hidden_state  # (B, T, H)
        logits = self.head(hidden).float()  # (B, T, 2)
        logits = logits.masked_fill(attention_mask.unsqueeze(-1) == 0, MASKED)
        return logits[..., 0], logits[..., 1]


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean over the batch of -(1 - p_t)^gamma * log p_t, p = softmax over positions.

    gamma = 0 is cross-entropy; gamma > 0 down-weights positions the model already gets right.
    """
    log_p = F.log_softmax(logits.float(), dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
    if gamma == 0:
        return -log_p.mean()
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


def span_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
    cfg: RunConfig,
) -> torch.Tensor:
    """Average of the start and end losses."""
    gamma = cfg.focal_gamma if cfg.loss == "focal" else 0.0
    return (focal_loss(start_logits, start_positions, gamma) + focal_loss(end_logits, end_positions, gamma)) / 2


def encoder_from(path: str | Path, pretrained: bool) -> nn.Module:
    """The encoder without its pooler where it has one: an unused pooler breaks DDP."""
    config = AutoConfig.from_pretrained(path)
    make = (lambda **kw: AutoModel.from_pretrained(path, **kw)) if pretrained else (
        lambda **kw: AutoModel.from_config(config, **kw)
    )
    try:
        return make(add_pooling_layer=False)
    except TypeError:  # encoders without a pooler do not take add_pooling_layer
        return make()


def build_tokenizer(cfg: RunConfig) -> PreTrainedTokenizerBase:
    path = resolve_model_path(cfg.model)
    try:
        return AutoTokenizer.from_pretrained(path, use_fast=True)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model {cfg.model!r}: cannot load its tokenizer ({str(e).splitlines()[0]})") from e


def build_model(cfg: RunConfig, pretrained: bool = True) -> tuple[SpanQAModel, PreTrainedTokenizerBase]:
    """Encoder from `cfg.model` (hub name or folder) with a fresh head, and its tokenizer.

    `pretrained=False` gives random encoder weights of the same shape (fast unit tests).
    """
    path = resolve_model_path(cfg.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
        encoder = encoder_from(path, pretrained)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"model {cfg.model!r}: cannot load encoder or tokenizer ({str(e).splitlines()[0]}); "
            "give a reachable hub name or a local folder with config.json, weights and tokenizer files"
        ) from e
    return SpanQAModel(encoder, cfg.head, cfg.head_dropout), tokenizer


# --- checkpoints ----------------------------------------------------------------------------


