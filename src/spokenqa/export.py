"""Checkpoints in Hugging Face's question-answering layout, and the model shipped with spokenqa.

A `linear`-head spokenqa checkpoint is exactly `AutoModelForQuestionAnswering`: an encoder and a
Linear(h, 2) on its last layer. `export_checkpoint` renames the weights to that layout
(`encoder.*` -> `bert.*`, `head.*` -> `qa_outputs.*`), stores them in fp16 by default (half the
size; the shipped model must fit in a wheel), names the architecture in `config.json` and keeps
`spokenqa.json` beside them, so the same folder loads in transformers and in spokenqa.

The shipped model is such a folder inside the package (`spokenqa/release_model/`, package data:
a plain `pip install .` carries it). `resolve_checkpoint(None)` finds it for `ask`, `serve`,
`evaluate`, `predict` and `QA.load()`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from spokenqa.errors import ConfigError

RELEASE_MODEL = Path(__file__).parent / "release_model"
# What a checkpoint folder needs; spokenqa.json last, so the message names the weights first.
REQUIRED_FILES = ("model.safetensors", "config.json", "tokenizer.json", "spokenqa.json")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# transformers' base_model_prefix of the encoders spokenqa is used with; others use model_type
_PREFIX = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta", "mpnet": "mpnet",
           "distilbert": "distilbert", "electra": "electra"}
# The tokenizer files of the encoders above, copied into every exported folder where present.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spm.model")
_ARCHITECTURE = {"bert": "BertForQuestionAnswering", "roberta": "RobertaForQuestionAnswering",
                 "xlm-roberta": "XLMRobertaForQuestionAnswering", "mpnet": "MPNetForQuestionAnswering",
                 "distilbert": "DistilBertForQuestionAnswering", "electra": "ElectraForQuestionAnswering"}


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a truncated or corrupt file is a one-line error."""
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


def export_checkpoint(checkpoint: str | Path, out: str | Path, dtype: str = "fp16",
                      info: dict | None = None, max_answer_tokens: int | None = None) -> Path:
    """Write `checkpoint` (a `linear`-head spokenqa checkpoint) to `out` in the Hugging Face
    `*ForQuestionAnswering` layout, atomically; returns `out`.

    `info` is merged into spokenqa.json's `checkpoint` entry (e.g. the scores a model card cites).
    `max_answer_tokens` replaces the answer cap stored with the model: decoding is chosen after
    training, on validation data (scripts/choose_decoding.py), and should travel with the weights.
    """
    from spokenqa.config import RunConfig
    from spokenqa.model import atomic_folder

    checkpoint, out = Path(checkpoint), Path(out)
    check_checkpoint(checkpoint)
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    cfg = RunConfig.load(checkpoint / "spokenqa.json")
    if cfg.head != "linear":
        raise ConfigError(f"{checkpoint}: head {cfg.head!r} (two encoder layers concatenated, then an "
                          "MLP) has no *ForQuestionAnswering equivalent in transformers; only "
                          "'linear'-head checkpoints can be exported")
    try:
        config = json.loads((checkpoint / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{checkpoint / 'config.json'}: cannot read ({e})") from e
    model_type = config.get("model_type", "bert")
    prefix = _PREFIX.get(model_type, model_type)
    state = to_spokenqa_state(read_weights(checkpoint / "model.safetensors"), checkpoint)
    weights = {}
    for key, value in state.items():
        if key.startswith("encoder."):
            name = f"{prefix}.{key[len('encoder.'):]}"
        elif key.startswith("head."):
            name = f"qa_outputs.{key[len('head.'):]}"
        else:
            raise ConfigError(f"{checkpoint / 'model.safetensors'}: unexpected weight {key!r}")
        weights[name] = value.to(DTYPES[dtype]) if value.is_floating_point() else value
    if model_type in _ARCHITECTURE:
        config["architectures"] = [_ARCHITECTURE[model_type]]
    saved = json.loads((checkpoint / "spokenqa.json").read_text())
    if max_answer_tokens is not None:  # checked by the config's own rules, as `evaluate --max-answer-tokens` is
        saved["config"] = cfg.replace(max_answer_tokens=max_answer_tokens).validate().to_dict()
    saved["checkpoint"] = {**saved.get("checkpoint", {}), **(info or {}),
                           "exported_from": str(checkpoint), "dtype": dtype}

    def write(tmp: Path) -> None:
        save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / "spokenqa.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
        for name in TOKENIZER_FILES:
            if (checkpoint / name).is_file():
                (tmp / name).write_bytes((checkpoint / name).read_bytes())

    atomic_folder(out, write)
    return out


def check_checkpoint(folder: Path) -> None:
    """A one-line error naming the first missing file of a checkpoint folder."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such checkpoint folder")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise ConfigError(f"{folder / name}: missing; {folder} is not a complete spokenqa checkpoint")


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
