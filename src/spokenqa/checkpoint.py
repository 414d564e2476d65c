"""Checkpoint folders: what one holds, writing one atomically, loading one, and which folder a
command means (a path given, or the model shipped with spokenqa).

A checkpoint folder holds `model.safetensors`, the encoder's `config.json`, the tokenizer
(`tokenizer.json` and friends) and `spokenqa.json` (the run config the model answers with, and
`checkpoint` notes: epoch, scores). Two layouts of the weights load: spokenqa's own names
(`encoder.*`, `head.*`, written by `spokenqa train`) and Hugging Face's question-answering layout
(`<prefix>.*`, `qa_outputs.*`, written by `spokenqa export`; the shipped model is one). The
shipped model lives inside the package (`spokenqa/release_model/`, package data).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from spokenqa.config import RunConfig
from spokenqa.errors import ConfigError
from spokenqa.files import atomic_folder

if TYPE_CHECKING:  # torch and transformers load with the weights: checking a folder needs neither
    import torch
    from transformers import PreTrainedTokenizerBase

    from spokenqa.model import SpanQAModel

RELEASE_MODEL = Path(__file__).parent / "release_model"
# What a checkpoint folder needs, in the order they are checked: the weights first.
REQUIRED_FILES = ("model.safetensors", "config.json", "tokenizer.json", "spokenqa.json")
# The tokenizer files of the encoders spokenqa is used with, copied into exported folders where present.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spm.model")


def check_checkpoint(folder: str | Path) -> Path:
    """`folder` if it is a complete checkpoint folder, else a one-line error naming the first
    missing file: the one validity check of every command."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such checkpoint folder")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise ConfigError(f"{folder / name}: missing; {folder} is not a complete spokenqa checkpoint")
    return folder


def checkpoint_config(folder: str | Path) -> RunConfig:
    """A checkpoint's saved settings, read without loading its weights: commands check the
    folder and their other inputs before paying seconds for the model."""
    return RunConfig.load(check_checkpoint(folder) / "spokenqa.json")


def checkpoint_info(folder: str | Path) -> dict:
    """The `checkpoint` notes of spokenqa.json (epoch, step, scores, where it was exported from)."""
    return json.loads((Path(folder) / "spokenqa.json").read_text()).get("checkpoint", {})


def shipped_model() -> Path:
    """The model installed with spokenqa, checked for its files.

    A missing or broken file is a one-line error naming it (a partial install or a checkout
    without the weights), not a traceback from deep inside transformers.
    """
    try:
        check_checkpoint(RELEASE_MODEL)
    except ConfigError as e:
        raise ConfigError(f"the shipped model is incomplete: {e}; reinstall spokenqa or give "
                          "--checkpoint DIR") from None
    return RELEASE_MODEL


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """`--checkpoint DIR` as given, or the shipped model when none is given."""
    return shipped_model() if checkpoint is None else Path(checkpoint)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a truncated or corrupt file is a one-line error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the weights ({str(e).splitlines()[0]})") from e


def to_spokenqa_state(state: dict[str, torch.Tensor], folder: Path) -> dict[str, torch.Tensor]:
    """Weights of either layout -> SpanQAModel's names (`encoder.*`, `head.*`).

    spokenqa's own layout passes through; the Hugging Face layout (`<prefix>.*`, `qa_outputs.*`)
    is renamed. Only one encoder prefix may occur besides `qa_outputs`.
    """
    if "qa_outputs.weight" not in state:
        return state
    prefixes = {k.split(".", 1)[0] for k in state if not k.startswith("qa_outputs.")}
    if len(prefixes) != 1:
        raise ConfigError(f"{folder / 'model.safetensors'}: expected one encoder prefix beside "
                          f"qa_outputs, found {', '.join(sorted(prefixes)) or 'none'}")
    (prefix,) = prefixes
    return {("head." + k[len("qa_outputs."):]) if k.startswith("qa_outputs.")
            else "encoder." + k[len(prefix) + 1:]: v for k, v in state.items()}


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

    from safetensors.torch import save_file

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
    from transformers import AutoTokenizer

    from spokenqa.model import SpanQAModel, encoder_from

    folder = Path(folder)
    cfg = checkpoint_config(folder)
    state = to_spokenqa_state(read_weights(folder / "model.safetensors"), folder)
    try:
        with _skip_weight_init():  # every weight comes from the checkpoint (strict load below)
            model = SpanQAModel(encoder_from(folder, pretrained=False), cfg.head, cfg.head_dropout)
        model.load_state_dict(state)
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
    except (OSError, ValueError, RuntimeError) as e:  # bad config.json, shapes, tokenizer files
        raise ConfigError(f"{folder}: cannot load the checkpoint ({str(e).splitlines()[0]})") from e
    model.eval()
    return model, tokenizer, cfg



def average_checkpoints(folders: list[str | Path], out: str | Path) -> Path:
    """Write to `out` (atomically) the checkpoint whose weights are the mean of `folders`' (same
    model and head; weights averaged in fp32): the checkpoints along one run's last stretch
    (`train --snapshot-every`) averaged often generalise better than the last alone. The config
    and tokenizer are the last folder's; spokenqa.json notes what was averaged."""
    import torch

    if len(folders) < 2:
        raise ConfigError(f"averaging needs at least 2 checkpoints, got {len(folders)}")
    configs = [checkpoint_config(f) for f in folders]
    for folder, cfg in zip(folders[1:], configs[1:]):
        if (cfg.model, cfg.head) != (configs[0].model, configs[0].head):
            raise ConfigError(f"{folder}: model {cfg.model!r} head {cfg.head!r} differs from {folders[0]}'s "
                              f"({configs[0].model!r}, {configs[0].head!r}); only one model's checkpoints average")
    model, tokenizer, cfg = load_checkpoint(folders[-1])
    total = {k: torch.zeros_like(v, dtype=torch.float32) for k, v in model.state_dict().items()}
    for folder in folders:
        state = to_spokenqa_state(read_weights(Path(folder) / "model.safetensors"), Path(folder))
        if state.keys() != total.keys():
            raise ConfigError(f"{folder}: its weights do not match {folders[-1]}'s (another architecture)")
        for k, v in state.items():
            total[k] += v.float()
    model.load_state_dict({k: v / len(folders) for k, v in total.items()})
    save_checkpoint(Path(out), model.float(), tokenizer, cfg, {"averaged": [str(f) for f in folders]})
    return Path(out)
