"""Encoder + span head -> start/end logits; the span losses; checkpoint save and load.

Any encoder that `AutoModel` accepts works (the shipped MiniLM, bert-base-uncased, MPNet...).
Heads:
- `linear`: Linear(h, 2) on the last layer, as `AutoModelForQuestionAnswering`.
- `reference`: concat(last, third-to-last layer) (2h) -> Dropout -> Linear(2h, 2h) -> LeakyReLU
  -> Linear(2h, 2), the reference study's head.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from spokenqa.config import RunConfig, checkpoint_config, resolve_model_path
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


def _encoder(path: str | Path, pretrained: bool) -> nn.Module:
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
        encoder = _encoder(path, pretrained)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"model {cfg.model!r}: cannot load encoder or tokenizer ({str(e).splitlines()[0]}); "
            "give a reachable hub name or a local folder with config.json, weights and tokenizer files"
        ) from e
    return SpanQAModel(encoder, cfg.head, cfg.head_dropout), tokenizer


# --- checkpoints ----------------------------------------------------------------------------


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _plain_permissions(folder: Path) -> None:
    """The modes a plain `mkdir` / `open` would give (umask applied): `mkdtemp` makes the folder
    0700 and safetensors writes 0600, which would hide a checkpoint, or the shipped model once
    installed, from other users."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def atomic_folder(target: Path, write) -> None:
    """Write a folder by `write(tmp)` into a temp sibling, fsync, then rename over `target`.

    A crash at any moment leaves either the old complete folder or the new complete folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
        _plain_permissions(tmp)
        _fsync_tree(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_checkpoint(
    folder: Path,
    model: SpanQAModel,
    tokenizer: PreTrainedTokenizerBase,
    cfg: RunConfig,
    info: dict,
    extra=None,
    same_weights_as: Path | None = None,
) -> None:
    """model.safetensors + encoder config.json + tokenizer files + spokenqa.json, atomically.

    `extra(tmp)` may add files (the training state for `--resume`). `same_weights_as`: a
    checkpoint folder written from these very weights (`best/` of the epoch that `last/` is
    saved at); its weights file is hard-linked instead of written again, so the two folders
    share one copy on disk. Safe because a checkpoint file is never changed in place: each
    save writes a new folder and renames it.
    """

    def write(tmp: Path) -> None:
        if same_weights_as is not None:
            try:
                os.link(same_weights_as / "model.safetensors", tmp / "model.safetensors")
            except OSError:  # a file system without hard links: a second copy after all
                pass
        if not (tmp / "model.safetensors").exists():
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        model.encoder.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        cfg.save(tmp / "spokenqa.json", extra={"checkpoint": info})
        if extra is not None:
            extra(tmp)

    atomic_folder(folder, write)


def _skip_weight_init() -> contextlib.AbstractContextManager:
    """Skip the random initialisation of a model that is about to get all its weights from a
    checkpoint (transformers' `no_init_weights`; a no-op where this version has none)."""
    try:
        from transformers.initialization import no_init_weights  # transformers 5
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights  # transformers 4
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def load_checkpoint(folder: str | Path) -> tuple[SpanQAModel, PreTrainedTokenizerBase, RunConfig]:
    """Model, tokenizer and the run config of a checkpoint folder: one written by
    `save_checkpoint`, or one in Hugging Face's QA layout (`spokenqa export`, the shipped model)."""
    from spokenqa.export import read_weights, to_spokenqa_state

    folder = Path(folder)
    cfg = checkpoint_config(folder)
    state = to_spokenqa_state(read_weights(folder / "model.safetensors"), folder)
    try:
        with _skip_weight_init():  # every weight comes from the checkpoint (strict load below)
            model = SpanQAModel(_encoder(folder, pretrained=False), cfg.head, cfg.head_dropout)
        model.load_state_dict(state)
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
    except (OSError, ValueError, RuntimeError) as e:  # bad config.json, shapes, tokenizer files
        raise ConfigError(f"{folder}: cannot load the checkpoint ({str(e).splitlines()[0]})") from e
    model.eval()
    return model, tokenizer, cfg


def checkpoint_info(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "spokenqa.json").read_text()).get("checkpoint", {})
