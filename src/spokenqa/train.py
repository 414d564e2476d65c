"""Fine-tune a span-QA model with Accelerate; evaluate each epoch; checkpoint atomically.

Reads top to bottom: preflight -> data -> features -> model/optimiser/schedule -> (resume) ->
(baseline eval) -> per epoch: [forward -> loss -> backward -> clip -> step -> log -> periodic
checkpoint] -> eval -> best/last checkpoints -> history, report.

`accelerate launch -m spokenqa train ...` runs the same loop as multi-process DDP: each process
takes every n-th batch of the same seeded batch list, and only the main process evaluates and
writes files.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from spokenqa.checkpoint import load_checkpoint, save_checkpoint
from spokenqa.config import SELECT_METRICS, RunConfig, resolve_model_path
from spokenqa.data import DataStats, Example, load_squad
from spokenqa.errors import ConfigError, TrainingError
from spokenqa.features import AlignStats, collate, length_grouped_batches, prepare_train_features
from spokenqa.files import atomic_write_json
from spokenqa.inference import evaluate_examples, resolve_precision
from spokenqa.metrics import select_value
from spokenqa.model import build_model, span_loss
from spokenqa.report import write_data_figures, write_report, write_training_figures
from spokenqa.runinfo import Segment, provenance

STATE_FILE = "training_state.pt"


def _preflight(cfg: RunConfig, resume: bool) -> Path:
    """Catch unusable inputs and outputs before any expensive step."""
    if not cfg.train_files:
        raise ConfigError("no training file: give --train FILE")
    if cfg.out_dir is None:
        raise ConfigError("no output folder: give --out DIR")
    for path in (*cfg.train_files, *([cfg.eval_file] if cfg.eval_file else [])):
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such data file")
    model_path = resolve_model_path(cfg.model)
    if Path(model_path).is_dir():
        names = os.listdir(model_path)
        if not any(n.endswith((".safetensors", ".bin")) for n in names):
            raise ConfigError(f"{model_path}: model folder has no weights (*.safetensors or *.bin)")
    out = Path(cfg.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"{out}: output folder is not writable ({e.strerror})") from e
    if shutil.disk_usage(out).free < 1 << 30:
        raise ConfigError(f"{out}: less than 1 GiB free; checkpoints would not fit")
    if resume and not (out / "last").exists():
        _recover_last(out)
    if resume:
        _remove_stale_temps(out)
    if resume and not (out / "last" / STATE_FILE).is_file():
        if _finished(out):
            raise ConfigError(f"{out}: the run finished and dropped its resume state (last/{STATE_FILE}); "
                              "train with --keep-resume-state to keep it, or start a new run")
        raise ConfigError(f"{out}: nothing to resume (no last/{STATE_FILE}); run without --resume")
    if not resume and (out / "history.json").exists():
        raise ConfigError(f"{out}: already holds a run; use --resume or another --out")
    return out


def _finished(out: Path) -> bool:
    """Whether the run in `out` ran to its end (summary.json says so)."""
    try:
        return json.loads((out / "summary.json").read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def _recover_last(out: Path) -> None:
    """Put back the previous `last` checkpoint if a kill landed between the two renames of
    `atomic_folder` (old `last` moved aside to `.last.old-PID`, new one not yet in place)."""
    for old in sorted(out.glob(".last.old-*"), key=lambda p: p.stat().st_mtime, reverse=True):
        if (old / STATE_FILE).is_file():
            try:
                os.replace(old, out / "last")
            except OSError:  # another process of a multi-process run put it back first
                pass
            return


def _remove_stale_temps(out: Path) -> None:
    """Delete what a killed `atomic_folder` left beside `last/` and `best/`: half-written
    `.NAME.tmp-*` folders and the `.NAME.old-*` copies superseded by a complete folder. Each is
    up to a full checkpoint of disk; none is ever read again once its target exists."""
    for name in ("last", "best"):
        leftovers = list(out.glob(f".{name}.tmp-*"))
        if (out / name).exists():
            leftovers += list(out.glob(f".{name}.old-*"))
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)


def load_training_data(cfg: RunConfig) -> tuple[list[Example], list[DataStats]]:
    """All training files, then (with `max_train_examples`) a seeded random sample of questions.

    A random sample rather than the first N: SQuAD files are ordered by article, so the first N
    questions would cover only a few topics.
    """
    examples, stats = [], []
    for path in cfg.train_files:
        ex, st = load_squad(path, lowercase=cfg.lowercase, keep_impossible=True)
        examples += ex
        stats.append(st)
    if cfg.max_train_examples is not None and cfg.max_train_examples < len(examples):
        keep = sorted(random.Random(cfg.seed).sample(range(len(examples)), cfg.max_train_examples))
        examples = [examples[i] for i in keep]
    return examples, stats


def _initial_model(cfg: RunConfig, pretrained: bool):
    """The network training starts from: the pretrained encoder with a fresh head, or with
    `init_from` a trained checkpoint's weights (same encoder and head as this run's config)."""
    if cfg.init_from is None:
        return build_model(cfg, pretrained=pretrained)
    from spokenqa.checkpoint import resolve_checkpoint

    folder = resolve_checkpoint(None if cfg.init_from == "shipped" else cfg.init_from)
    model, tokenizer, saved = load_checkpoint(folder)
    for name in ("model", "head"):
        if getattr(saved, name) != getattr(cfg, name):
            raise ConfigError(f"--init-from {cfg.init_from}: its {name} is {getattr(saved, name)!r}, "
                              f"this run's is {getattr(cfg, name)!r}")
    model.float().train()
    return model, tokenizer


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Interrupt:
    """Ctrl-C (SIGINT) or SIGTERM: finish the current step, save, stop."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}

    def __enter__(self) -> _Interrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class StepRecord:
    """What one optimizer step did, for `train(on_step=...)` (benchmarks time steps with it)."""

    step: int  # global optimizer step, 1-based
    started: float  # time.perf_counter() before the batch was collated
    ended: float  # after the optimizer and schedule stepped (the GPU synchronised)
    windows: int
    tokens: int  # real tokens (attention mask)
    padded_tokens: int  # tokens including padding
    loss: float


def train(cfg: RunConfig, resume: bool = False, pretrained: bool = True,
          on_step: Callable[[StepRecord], None] | None = None) -> dict[str, Any]:
    """Run training as configured; returns the summary that is also written to summary.json.

    `pretrained=False` starts from random encoder weights (tests); `on_step` is called after each
    optimizer step with its `StepRecord`. A disk that fills up mid-run
    stops it with one line, not a traceback: checkpoints are written atomically
    (`atomic_folder`), so the previous complete `last/` is still there to resume from.
    """
    try:
        return _train(cfg, resume, pretrained, on_step)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        last = Path(cfg.out_dir) / "last"
        kept = (f"the last complete checkpoint {last} is kept: free space, then run again with --resume"
                if (last / STATE_FILE).is_file() else "no checkpoint was complete yet")
        raise TrainingError(f"{e.filename or cfg.out_dir}: disk full ({e.strerror}); {kept}") from e


@dataclass
class Run:
    """What the loop works with, set up once: the accelerator, the network (DDP-wrapped and
    bare), its optimiser and schedule, the training windows and the evaluation questions."""

    cfg: RunConfig
    out: Path
    accelerator: Accelerator
    precision: str
    model: torch.nn.Module  # as prepared by Accelerate (DDP-wrapped in a multi-process run)
    core: torch.nn.Module  # the bare SpanQAModel: saved, evaluated
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    train_examples: list[Example]
    features: Any
    eval_examples: list[Example]
    align: AlignStats  # how the training answers fell on tokens (the report's figures)
    data_stats: dict[str, Any]
    steps_per_epoch: int
    total_steps: int

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def n_epochs(self) -> int:
        return -(-self.total_steps // self.steps_per_epoch)

    def epoch_steps(self, epoch: int) -> int:
        """Optimizer steps of `epoch`: a whole epoch, or what is left of `max_steps`."""
        return min(self.steps_per_epoch, self.total_steps - (epoch - 1) * self.steps_per_epoch)


@dataclass
class TrainingState:
    """Where a run stands: the epoch in progress and the batches done in it, the best epoch so
    far, the per-epoch history, the running sums of the epoch in progress and the learning
    curve. It saves itself into the `last` checkpoint (with the optimiser, schedule and random
    generators) and loads itself from there for `--resume`."""

    epoch: int = 1
    step: int = 0
    best: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    sums: dict[str, float] | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)

    def save(self, run: Run, same_weights_as: Path | None = None) -> None:
        """The `last` checkpoint: weights + everything to continue at (epoch, step); its weights
        are a hard link to `same_weights_as`'s when that checkpoint holds the same ones."""
        run.accelerator.wait_for_everyone()
        if not run.main:
            return
        state = {**dataclasses.asdict(self), "optimizer": run.optimizer.state_dict(),
                 "scheduler": run.scheduler.state_dict(), "rng": _rng_state()}
        save_checkpoint(run.out / "last", run.core, run.tokenizer, run.cfg, {"epoch": self.epoch, "step": self.step},
                        extra=lambda tmp: _write_state(state, tmp / STATE_FILE), same_weights_as=same_weights_as)

    @classmethod
    def load(cls, folder: Path, run: Run) -> TrainingState:
        """The state saved in `folder`, with the weights, optimiser, schedule and random
        generators put back as they were."""
        from safetensors.torch import load_file

        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
        run.core.load_state_dict(load_file(str(folder / "model.safetensors")))
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        return cls(state["epoch"], state["step"], state["best"], state["history"], state["sums"],
                   state.get("curve", []))


def _setup(cfg: RunConfig, out: Path, pretrained: bool) -> Run:
    """Accelerator, data, features, model, optimiser and schedule of a run."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    probe = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(cfg.mixed_precision, probe)
    # Accelerate keeps its state per process; a second train() in the same process (notebooks,
    # tests) may ask for another precision, which the stale state would refuse.
    AcceleratorState._reset_state()
    accelerator = Accelerator(mixed_precision=precision, cpu=probe.type == "cpu")
    set_seed(cfg.seed)

    train_examples, train_stats = load_training_data(cfg)
    eval_examples, eval_stats = ([], None)
    if cfg.eval_file:
        eval_examples, eval_stats = load_squad(cfg.eval_file, cfg.lowercase, max_questions=cfg.max_eval_examples)
    model, tokenizer = _initial_model(cfg, pretrained)
    features, align = prepare_train_features(train_examples, tokenizer, cfg)
    if len(features) == 0:
        raise ConfigError("no training windows: every answer failed to align (see the data stats)")

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    decay, plain = [], []
    for name, param in model.named_parameters():
        (plain if not cfg.decay_bias_and_norm and name.endswith(no_decay) else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
    )
    n_batches = len(length_grouped_batches(features.lengths(), cfg.train_batch_size, cfg.seed, cfg.group_by_length))
    steps_per_epoch = n_batches // accelerator.num_processes
    if steps_per_epoch == 0:
        raise ConfigError(
            f"no training step possible: {len(features)} training windows make {n_batches} batch(es) of "
            f"--batch-size {cfg.train_batch_size}, fewer than the {accelerator.num_processes} processes that "
            "each need one; lower --batch-size or give more training data")
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    prepared, optimizer = accelerator.prepare(model, optimizer)
    data_stats = {
        "train": [s.to_dict() for s in train_stats],
        "eval": eval_stats.to_dict() if eval_stats else None,
        "train_alignment": align.summary(),
    }
    return Run(cfg, out, accelerator, precision, prepared, accelerator.unwrap_model(prepared), tokenizer,
               optimizer, scheduler, train_examples, features, eval_examples, align, data_stats, steps_per_epoch,
               total_steps)


def _train(cfg: RunConfig, resume: bool, pretrained: bool, on_step: Callable[[StepRecord], None] | None) -> dict[str, Any]:
    cfg.validate()
    out = _preflight(cfg, resume)
    t_start = time.time()
    run = _setup(cfg, out, pretrained)
    state = TrainingState.load(out / "last", run) if resume else TrainingState()
    if run.main and not resume:
        cfg.save(out / "config.json", extra={"provenance": provenance(cfg)})
    global_step = (state.epoch - 1) * run.steps_per_epoch + state.step
    segment = Segment(out, global_step, run.precision, t_start) if run.main else None
    if run.main:
        write_data_figures(out, run.train_examples, run.eval_examples, run.align, None)
    if cfg.baseline and not resume and not state.history:
        entry = {"epoch": 0, "train_loss": None, "start_acc": None, "end_acc": None, "steps": 0}
        entry.update(evaluate_epoch(run, 0) or {})
        state.history.append(entry)

    stopped = None
    with _Interrupt() as interrupt:
        for epoch in range(state.epoch, run.n_epochs + 1):
            t_epoch = time.time()
            global_step, stopped = _run_epoch(run, state, epoch, global_step, interrupt, segment, on_step)
            if stopped:
                break
            _end_epoch(run, state, epoch, global_step, time.time() - t_epoch, segment)
    return _finish(run, state, global_step, stopped, t_start)


def _run_epoch(run: Run, state: TrainingState, epoch: int, global_step: int, interrupt: _Interrupt,
               segment: Segment | None, on_step: Callable[[StepRecord], None] | None) -> tuple[int, str | None]:
    """The optimizer steps of one epoch (from `state.step` when resuming into it), with periodic
    checkpoints, snapshots and learning-curve points; returns the global step and, if the run
    was interrupted, why."""
    cfg = run.cfg
    run.model.train()
    batches = length_grouped_batches(run.features.lengths(), cfg.train_batch_size, cfg.seed + epoch,
                                     cfg.group_by_length)
    mine = batches[run.accelerator.process_index :: run.accelerator.num_processes][: run.steps_per_epoch]
    skip = state.step if epoch == state.epoch else 0
    # running epoch sums: restored when resuming mid-epoch so the epoch's numbers stay whole
    sums = dict(state.sums) if skip and state.sums else _fresh_sums()
    epoch_steps = run.epoch_steps(epoch)
    bar = tqdm(total=epoch_steps, initial=skip, desc=f"epoch {epoch}/{run.n_epochs}", unit="step",
               disable=not run.main, dynamic_ncols=True)
    for step in range(skip, epoch_steps):
        started = time.perf_counter()
        batch = {k: v.to(run.accelerator.device) for k, v in collate(
            run.features, mine[step], run.tokenizer.pad_token_id, labels=True).items()}
        tokens, padded = int(batch["attention_mask"].sum()), batch["input_ids"].numel()
        result = _train_step(run, batch, f"epoch {epoch}, step {step + 1}")
        if result is None:
            sums["skipped"] += 1
            continue
        global_step += 1
        loss, hits_start, hits_end, n = result
        if on_step is not None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            on_step(StepRecord(global_step, started, time.perf_counter(), n, tokens, padded, loss))
        sums["loss"] += loss * n
        sums["start_hits"] += hits_start
        sums["end_hits"] += hits_end
        sums["windows"] += n
        bar.update(1)
        bar.set_postfix(loss=f"{sums['loss'] / sums['windows']:.3f}",
                        start_acc=f"{sums['start_hits'] / sums['windows']:.3f}",
                        end_acc=f"{sums['end_hits'] / sums['windows']:.3f}", refresh=False)
        done = step + 1
        if cfg.eval_every and global_step % cfg.eval_every == 0 and done < epoch_steps:
            evaluate_curve_point(run, state, global_step, round(epoch - 1 + done / run.steps_per_epoch, 4), sums)
        if run.main and cfg.snapshot_every and global_step % cfg.snapshot_every == 0:
            save_checkpoint(run.out / "snapshots" / f"step_{global_step}", run.core, run.tokenizer, cfg,
                            {"epoch": epoch, "step": done, "global_step": global_step})
        periodic = cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < epoch_steps
        if interrupt.requested or periodic:
            state.epoch, state.step, state.sums = epoch, done, sums
            state.save(run)
            if segment:
                segment.record(global_step)
        if interrupt.requested:
            bar.close()
            return global_step, f"interrupted at epoch {epoch}, step {done}; resume with --resume"
    bar.close()
    state.sums = sums
    return global_step, None


def _train_step(run: Run, batch: dict[str, torch.Tensor], where: str) -> tuple[float, int, int, int] | None:
    """Forward, loss, backward, clip, optimizer step. Returns (loss, start hits, end hits,
    windows), or None for a batch skipped: a non-finite loss with `skip_nonfinite` (without it,
    a TrainingError), or, with fp16's loss scaler, gradients that overflowed at the current
    scale: the scaler skips that step and lowers its scale, as it is meant to."""
    cfg, accelerator = run.cfg, run.accelerator
    starts, ends = batch.pop("start_positions"), batch.pop("end_positions")
    with accelerator.autocast():
        start_logits, end_logits = run.model(**batch)
    loss = span_loss(start_logits, end_logits, starts, ends, cfg)
    fault = None if torch.isfinite(loss) else f"non-finite loss ({loss.item()})"
    if fault is None:
        accelerator.backward(loss)
        # the norm over all gradients (after DDP's all-reduce). With a loss scaler an overflow is
        # the scaler's business (it skips the step); without one, an inf/NaN gradient would
        # reach every weight through the optimizer step
        norm = accelerator.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm)
        if accelerator.scaler is None and norm is not None and not torch.isfinite(norm):
            fault = f"non-finite gradient norm ({norm.item()}) with a finite loss"
    if fault is not None:
        if not cfg.skip_nonfinite:
            raise TrainingError(
                f"{fault} at {where}; the last good checkpoint is {run.out / 'last'} (resume with --resume, "
                "lower the learning rate, or pass --skip-nonfinite)"
            )
        run.optimizer.zero_grad(set_to_none=True)
        return None
    run.optimizer.step()
    skipped = accelerator.optimizer_step_was_skipped
    if not skipped:
        run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if skipped:
        return None
    return (loss.item(), int((start_logits.argmax(-1) == starts).sum()), int((end_logits.argmax(-1) == ends).sum()),
            len(starts))


def _end_epoch(run: Run, state: TrainingState, epoch: int, global_step: int, seconds: float,
               segment: Segment | None) -> None:
    """Evaluate, keep `best/` if the selection metric improved, save `last/`, write the history."""
    cfg, sums = run.cfg, state.sums
    w = max(sums["windows"], 1)
    entry = {"epoch": epoch, "train_loss": sums["loss"] / w, "start_acc": sums["start_hits"] / w,
             "end_acc": sums["end_hits"] / w, "steps": global_step, "skipped_batches": sums["skipped"],
             "train_seconds": seconds, "train_windows_per_s": sums["windows"] / seconds}
    entry.update(evaluate_epoch(run, epoch) or {})
    state.history.append(entry)
    new_best = False
    if run.main and entry.get("scores"):
        value = select_value(entry["scores"], cfg.select_metric)
        if state.best is None or SELECT_METRICS[cfg.select_metric] * (value - state.best["value"]) > 0:
            state.best = {"epoch": epoch, "value": value, "metric": cfg.select_metric}
            save_checkpoint(run.out / "best", run.core, run.tokenizer, cfg, {"epoch": epoch, "scores": entry["scores"]})
            new_best = True
    state.epoch, state.step, state.sums = epoch + 1, 0, None
    state.save(run, same_weights_as=run.out / "best" if new_best else None)
    if segment:
        segment.record(global_step)
    if run.main:
        atomic_write_json(run.out / "history.json", state.history)
        write_training_figures(run.out, state.history, state.curve)


def evaluate_epoch(run: Run, epoch: int) -> dict[str, Any] | None:
    """Score the eval set after `epoch` (0: before training) and write its predictions under
    epochs/epoch_N/; None without an eval set or off the main process."""
    if not run.eval_examples or not run.main:
        return None
    t0 = time.time()
    result = evaluate_examples(run.core, run.tokenizer, run.eval_examples, run.cfg, run.precision, progress=True)
    seconds = time.time() - t0
    run.data_stats["eval_alignment"] = result.align.summary()
    run.data_stats["eval_span_tokens"] = result.align.span_tokens
    _write_epoch(run.out, epoch, run.eval_examples, result.predictions, result.scores)
    return {"scores": result.scores, "eval_seconds": seconds, "eval_questions_per_s": len(run.eval_examples) / seconds}


def evaluate_curve_point(run: Run, state: TrainingState, global_step: int, epoch: float,
                         sums: dict[str, float]) -> None:
    """One point of the learning curve: eval-set scores at this step, then back to training."""
    if not run.eval_examples or not run.main:
        return
    t0 = time.time()
    result = evaluate_examples(run.core, run.tokenizer, run.eval_examples, run.cfg, run.precision)
    state.curve.append({"step": global_step, "epoch": epoch,
                        "train_loss_epoch_so_far": sums["loss"] / max(sums["windows"], 1),
                        "scores": result.scores, "eval_seconds": time.time() - t0})
    atomic_write_json(run.out / "curve.json", state.curve)
    write_training_figures(run.out, state.history, state.curve)
    run.model.train()


def _finish(run: Run, state: TrainingState, global_step: int, stopped: str | None, t_start: float) -> dict[str, Any]:
    """The run's summary; on the main process its files (history, summary, data stats, report)."""
    summary = {
        "status": "interrupted" if stopped else "finished",
        "message": stopped,
        "epochs_done": len([h for h in state.history if h["epoch"] > 0]),
        "steps": global_step,
        "best": state.best,
        "final": state.history[-1] if state.history else None,
        "precision": run.precision,
        "processes": run.accelerator.num_processes,
        "wall_seconds": time.time() - t_start,
        "train_examples": len(run.train_examples),
        "train_windows": len(run.features),
        "eval_questions": len(run.eval_examples),
    }
    out = run.out
    if run.main and not stopped and not run.cfg.keep_resume_state:
        # only --resume reads the optimizer state (twice the weights): a finished run drops it
        (out / "last" / STATE_FILE).unlink(missing_ok=True)
    if run.main:
        atomic_write_json(out / "history.json", state.history)
        atomic_write_json(out / "summary.json", summary)
        atomic_write_json(out / "data_stats.json", run.data_stats)
        write_data_figures(out, run.train_examples, run.eval_examples, run.align,
                           run.data_stats.get("eval_span_tokens"))
        write_report(out, run.cfg, summary, state.history, run.data_stats, state.curve)
    run.accelerator.wait_for_everyone()
    return {**summary, "main_process": run.main}


def _write_epoch(out: Path, epoch: int, examples: list[Example], predictions, scores) -> None:
    folder = out / "epochs" / f"epoch_{epoch}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "predictions.json", {p.id: p.text for p in predictions})
    atomic_write_json(folder / "metrics.json", scores)
    first = [
        {"id": e.id, "question": e.question, "prediction": p.text, "gold": [a.text for a in e.answers]}
        for e, p in list(zip(examples, predictions))[:100]
    ]
    atomic_write_json(folder / "first100.json", first)
    shutil.copyfile(folder / "predictions.json", out / "predictions.json")


def _write_state(state: dict[str, Any], path: Path) -> None:
    """torch.save through memory: written straight to a full disk, torch's zip writer fails with
    a RuntimeError ("unexpected pos"), where a plain file write says ENOSPC, which `train` turns
    into its one-line disk-full message."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(buffer.getbuffer())


def _fresh_sums() -> dict[str, float]:
    return {"loss": 0.0, "start_hits": 0, "end_hits": 0, "windows": 0, "skipped": 0}
