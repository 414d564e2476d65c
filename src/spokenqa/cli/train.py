"""`spokenqa train`: fine-tune a span-QA model (spokenqa.train), then print the run's summary."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from spokenqa.cli.common import SAMPLE, no_outputs_on_failure
from spokenqa.config import DECODERS, HEADS, LOSSES, PRECISIONS, PRESETS, SELECT_METRICS, RunConfig
from spokenqa.errors import ConfigError, notice

# Flag -> (config field, type, help) for every setting a user may override on `train`; the
# default is the preset's (`cpu` unless --preset says otherwise).
OVERRIDES: dict[str, tuple[str, type, str]] = {
    "--model": ("model", str, "encoder: a hub name or a local folder (default: the shipped MiniLM)"),
    "--epochs": ("epochs", int, "passes over the training data"),
    "--max-steps": ("max_steps", int, "stop after N optimizer steps (equal-step comparisons)"),
    "--max-train-examples": ("max_train_examples", int, "a seeded random sample of N training questions"),
    "--max-eval-examples": ("max_eval_examples", int,
                            "score the first N questions of --eval during this run only"),
    "--max-length": ("max_length", int, "tokens per window: question + context + special tokens"),
    "--doc-stride": ("doc_stride", int, "context tokens shared by consecutive windows"),
    "--max-question-tokens": ("max_question_tokens", int, "longer questions are cut (and counted)"),
    "--negative-window-keep": ("negative_window_keep", float,
                               "fraction of training windows without the answer that are kept"),
    "--init-from": ("init_from", str, ("start from this checkpoint's weights, head included "
                                       "('shipped': spokenqa's own model): continued training")),
    "--snapshot-every": ("snapshot_every", int, ("keep the weights every N steps in snapshots/step_N/ "
                                                 "(for `spokenqa average`; 0: none)")),
    "--head": ("head", str, "linear, or reference (concat of two layers, then an MLP)"),
    "--loss": ("loss", str, "cross-entropy or focal"),
    "--focal-gamma": ("focal_gamma", float, "gamma of the focal loss"),
    "--batch-size": ("train_batch_size", int, "training windows per optimizer step"),
    "--eval-batch-size": ("eval_batch_size", int, "windows per evaluation batch"),
    "--lr": ("learning_rate", float, "peak learning rate of AdamW"),
    "--weight-decay": ("weight_decay", float, "AdamW weight decay"),
    "--warmup-ratio": ("warmup_ratio", float, "share of the steps spent warming up the learning rate"),
    "--max-grad-norm": ("max_grad_norm", float, "gradient clipping norm"),
    "--seed": ("seed", int, "seed of sampling, shuffling and initialisation"),
    "--mixed-precision": ("mixed_precision", str, "auto (bf16 where the CPU/GPU has it), bf16, fp16 or no (fp32)"),
    "--decoder": ("decoder", str, "how start/end logits become answers"),
    "--n-best": ("n_best", int, "start and end candidates the n-best decoder combines"),
    "--max-answer-tokens": ("max_answer_tokens", int, "longest answer the n-best decoder returns"),
    "--select-metric": ("select_metric", str, "metric that picks best/"),
    "--checkpoint-every": ("checkpoint_every", int, ("optimizer steps between resumable checkpoints "
                                                     "(0: at epoch ends only)")),
    "--eval-every": ("eval_every", int, "also evaluate every N steps: the learning curve (0: off)"),
    "--threads": ("num_threads", int, "torch CPU threads (default: torch's)"),
}
# the allowed values of the settings that have a fixed set (shown by --help, checked by argparse)
CHOICES = {"head": HEADS, "loss": LOSSES, "mixed_precision": PRECISIONS, "decoder": DECODERS,
           "select_metric": tuple(SELECT_METRICS)}
FLAGS = {name: flag for flag, (name, _, _) in OVERRIDES.items()}  # config field -> its flag
SWITCHES = {  # flag -> (field, value when given, help)
    "--baseline": ("baseline", True, "evaluate the untrained head first (epoch 0)"),
    "--skip-nonfinite": ("skip_nonfinite", True, "skip a batch whose loss is NaN/inf instead of stopping"),
    "--expand-answers": ("expand_answers", True, "one training example per answer entry (reference)"),
    "--no-lowercase": ("lowercase", False, "keep the case of contexts and questions"),
    "--no-group-by-length": ("group_by_length", False, "batch windows in random order, not by length"),
    "--keep-resume-state": ("keep_resume_state", True, ("keep last/training_state.pt (the optimizer state, "
                            "twice the model's size) when the run finishes, to continue it later")),
}


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a span-QA model and evaluate it each epoch")
    p.add_argument("--preset", default="cpu", choices=tuple(PRESETS),
                   help="cpu (default: the shipped MiniLM recipe) or reference (the reference study's)")
    p.add_argument("--train", action="append", default=[], metavar="FILE", help="SQuAD-format training file (repeatable; default: the built-in sample)")
    p.add_argument("--eval", metavar="FILE", help="SQuAD-format evaluation file, scored after each epoch")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    defaults = RunConfig()  # the cpu preset's values
    for flag, (name, kind, text) in OVERRIDES.items():
        p.add_argument(flag, type=kind, dest=name, default=None, choices=CHOICES.get(name),
                       help=f"{text} (config `{name}`; cpu preset: {getattr(defaults, name)})")
    for flag, (name, value, text) in SWITCHES.items():
        p.add_argument(flag, dest=name, action="store_const", const=value, default=None,
                       help=f"{text} (config `{name}`={value})")
    p.set_defaults(func=train_command)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = [n for n, _, _ in OVERRIDES.values()] + [n for n, _, _ in SWITCHES.values()]
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _resumed_config(out: str, overrides: dict[str, Any]) -> RunConfig:
    """The saved config of the run in `out`; a flag that would change it is bad usage."""
    from spokenqa.config import RunConfig

    saved = Path(out) / "config.json"
    if not saved.is_file():
        raise ConfigError(f"{out}: nothing to resume (no config.json); run without --resume")
    cfg = RunConfig.load(saved)
    changed = {k: v for k, v in overrides.items() if getattr(cfg, k) != v}
    if changed:
        raise ConfigError(f"--resume continues the saved run; these flags differ from it: {', '.join(changed)}")
    return cfg


def _new_config(args: argparse.Namespace, overrides: dict[str, Any]) -> RunConfig:
    """The preset with the flags over it; without --train, the built-in sample (said on stderr).
    The data files are checked here, before training imports torch."""
    from spokenqa.config import preset

    train_files, eval_file = args.train, args.eval
    if not train_files:
        train_files, eval_file = [str(SAMPLE)], eval_file or str(SAMPLE)
        notice(f"no --train given: using the built-in sample {SAMPLE.name}")
    cfg = preset(args.preset).replace(train_files=train_files, eval_file=eval_file, out_dir=args.out, **overrides)
    try:  # before anything loads, in the flags' own names
        cfg.validate()
    except ConfigError as e:
        names = "|".join(sorted(FLAGS, key=len, reverse=True))
        raise ConfigError(re.sub(rf"\b({names})\b", lambda m: FLAGS[m.group(1)], str(e))) from None
    for path in (*cfg.train_files, *([cfg.eval_file] if cfg.eval_file else [])):
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such data file")
    return cfg


def train_command(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    cfg = _resumed_config(args.out, overrides) if args.resume else _new_config(args, overrides)
    from spokenqa.train import train

    with no_outputs_on_failure(Path(cfg.out_dir)):
        summary = train(cfg, resume=args.resume)
    if not summary["main_process"]:  # a multi-process run (accelerate launch) reports once
        return 130 if summary["status"] == "interrupted" else 0
    history_file = Path(cfg.out_dir) / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    if history:  # the run's numbers as report.md shows them; on stderr: stdout stays one JSON object
        from spokenqa.report import epoch_table

        print(f"scores per epoch on {cfg.eval_file or '(no eval file)'}:\n{epoch_table(history)}", file=sys.stderr)
    print(json.dumps({k: summary[k] for k in ("status", "epochs_done", "steps", "best", "wall_seconds")}, indent=2))
    if summary["status"] == "interrupted":
        notice(f"{summary['message']}")
        return 130
    return 0


__all__ = ["OVERRIDES", "SWITCHES", "add_train_parser", "train_command"]
