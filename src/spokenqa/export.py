"""Export a checkpoint in Hugging Face's question-answering layout.

A `linear`-head spokenqa checkpoint is exactly `AutoModelForQuestionAnswering`: an encoder and a
Linear(h, 2) on its last layer. `export_checkpoint` renames the weights to that layout
(`encoder.*` -> `bert.*`, `head.*` -> `qa_outputs.*`), stores them in fp16 by default (half the
size; the shipped model must fit in a wheel), names the architecture in `config.json` and keeps
`spokenqa.json` beside them, so the same folder loads in transformers and in spokenqa.

The shipped model is such a folder (`spokenqa.checkpoint.RELEASE_MODEL`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from spokenqa.checkpoint import TOKENIZER_FILES, check_checkpoint, read_weights, to_spokenqa_state
from spokenqa.config import RunConfig
from spokenqa.errors import ConfigError
from spokenqa.files import atomic_folder

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# transformers' base_model_prefix of the encoders spokenqa is used with; others use model_type
_PREFIX = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta", "mpnet": "mpnet",
           "distilbert": "distilbert", "electra": "electra"}
_ARCHITECTURE = {"bert": "BertForQuestionAnswering", "roberta": "RobertaForQuestionAnswering",
                 "xlm-roberta": "XLMRobertaForQuestionAnswering", "mpnet": "MPNetForQuestionAnswering",
                 "distilbert": "DistilBertForQuestionAnswering", "electra": "ElectraForQuestionAnswering"}


def export_checkpoint(checkpoint: str | Path, out: str | Path, dtype: str = "fp16",
                      info: dict | None = None, max_answer_tokens: int | None = None) -> Path:
    """Write `checkpoint` (a `linear`-head spokenqa checkpoint) to `out` in the Hugging Face
    `*ForQuestionAnswering` layout, atomically; returns `out`.

    `info` is merged into spokenqa.json's `checkpoint` entry (e.g. the scores a model card cites).
    `max_answer_tokens` replaces the answer cap stored with the model: decoding is chosen after
    training, on validation data (scripts/choose_decoding.py), and should travel with the weights.
    """
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


