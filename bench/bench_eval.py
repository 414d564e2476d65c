"""Whole Spoken-SQuAD test: spokenqa's evaluation versus transformers.pipeline("question-answering").

The same trained weights on both sides: the spokenqa checkpoint (the shipped model, or
--checkpoint) is exported as a BertForQuestionAnswering folder (head "linear"
= qa_outputs) into a temp folder and loaded by the pipeline in the transformers-4.57 venv.

- spokenqa: `spokenqa.inference.answer_examples` (features -> logits -> n-best decode), what
  `spokenqa predict` and `evaluate` run, model prepared as they prepare it (bf16: Linear weights
  kept in bf16), once per variant in --variants: bf16 (torch; the default where the CPU has
  native bf16), fp32 (torch; the reference for "answers changed"), onnx-fp32 and onnx-int8 (ONNX
  Runtime, `--backend onnx [--quantize int8]`; the graph from the checkpoint's cache, exported
  first if there is none: that is in the variant's load_s, not in its time). Timed after the
  model is loaded; scoring is not timed on either side.
- pipeline: default settings (batch_size 1; more with --pipeline-batches 0,16), at fp32 (its
  default) and bf16 (`torch_dtype=torch.bfloat16`, --pipeline-precisions), each run in a fresh
  process; timed from the call to its return, after loading.

Each side runs --repeats times (default 3), interleaved (every side once per round); tables give
the median wall time with its min-max range, and speed-ups are ratios of medians, equal precision
first (fp32 vs fp32, bf16 vs bf16), then each side's default (spokenqa auto vs pipeline fp32).
bf16 runs are skipped on a CPU without native bf16.

Every side's answers are scored here with the official SQuAD v1.1 metric
(spokenqa.metrics.official_scores); the table gives wall time, questions/s, EM/F1 and how many
answers differ between runs.

    python bench/bench_eval.py                               # whole test, the shipped model
    python bench/bench_eval.py --questions 40 --checkpoint /tmp/ckpt --repeats 2   # smoke
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

from spokenqa.export import export_checkpoint

# --variants name -> (backend, precision as spokenqa.inference / onnx_backend take it)
VARIANTS = {"bf16": ("torch", "bf16"), "fp32": ("torch", "no"), "onnx-fp32": ("onnx", "fp32"),
            "onnx-int8": ("onnx", "int8")}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="spokenqa checkpoint folder (default: the shipped model)")
    p.add_argument("--quick-steps", type=int, default=150, help="steps of the fallback checkpoint")
    p.add_argument("--test-file", default=None, help="default: $SPOKENQA_DATA/spoken-squad/spoken_test-v1.1.json")
    p.add_argument("--questions", type=int, default=None, help="first N questions only (smoke)")
    p.add_argument("--variants", default="bf16,fp32",
                   help="spokenqa variants to run: bf16, fp32 (torch), onnx-fp32, onnx-int8 (ONNX Runtime)")
    p.add_argument("--pipeline-batches", default="0", help="pipeline batch sizes, 0 = its default (e.g. 0,16)")
    p.add_argument("--pipeline-precisions", default="fp32,bf16",
                   help="pipeline weights' dtype: fp32 (its default), bf16 (torch_dtype; skipped without native bf16)")
    p.add_argument("--repeats", type=int, default=3, help="runs per side, interleaved; tables give median and range")
    p.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: torch's)")
    p.add_argument("--max-answer-tokens", type=int, default=None, help="spokenqa's answer cap (default: the checkpoint's)")
    p.add_argument("--eval-batch-size", type=int, default=None, help="spokenqa's batch per stream (default: the checkpoint's)")
    p.add_argument("--hf-python", default=None)
    p.add_argument("--json", default=str(C.OUT / "bench_eval.json"))
    args = p.parse_args(argv)

    import torch

    from spokenqa.checkpoint import load_checkpoint
    from spokenqa.data import load_squad
    from spokenqa.inference import answer_examples, cpu_supports_bf16, keep_linear_weights_in
    from spokenqa.metrics import _f1, normalize_answer, official_scores

    th = C.use_threads(args.threads)
    started, busy = C.machine(), C.busy_processes()
    checkpoint = C.checkpoint_for(args.checkpoint, args.quick_steps)
    t0 = time.perf_counter()
    model, tokenizer, cfg = load_checkpoint(checkpoint)
    cfg = cfg.replace(max_answer_tokens=args.max_answer_tokens, eval_batch_size=args.eval_batch_size)
    load_s = time.perf_counter() - t0
    test_file = Path(args.test_file or C.spoken_test())
    examples, _ = load_squad(test_file, lowercase=cfg.lowercase, max_questions=args.questions)
    print(f"[bench_eval] {checkpoint}: {len(examples)} questions", file=sys.stderr, flush=True)

    has_bf16 = cpu_supports_bf16()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        if variant not in VARIANTS:
            raise SystemExit(f"--variants: unknown {variant!r}; choose from {', '.join(VARIANTS)}")
    if not has_bf16 and "bf16" in variants:
        print("[bench_eval] this CPU has no native bf16: skipping the bf16 runs", file=sys.stderr)
    variants = [v for v in variants if has_bf16 or VARIANTS[v][1] != "bf16"]
    pipelines = [(int(b), pr) for pr in args.pipeline_precisions.split(",") if pr.strip() and (has_bf16 or pr != "bf16")
                 for b in args.pipeline_batches.split(",") if b.strip()]

    tmp = Path(tempfile.mkdtemp(prefix="bench_eval-"))
    export = export_checkpoint(checkpoint, tmp / "hf_model", dtype="fp32")
    rows = [{"id": e.id, "question": e.question, "context": e.context} for e in examples]
    (tmp / "rows.json").write_text(json.dumps(rows))

    def run_spokenqa(variant: str) -> tuple[dict, dict[str, str]]:
        backend, precision = VARIANTS[variant]
        variant_load_s = load_s
        if backend == "onnx":
            from spokenqa.backends.ort import load_onnx

            t0 = time.perf_counter()
            prepared, _, _ = load_onnx(checkpoint, precision)
            variant_load_s = time.perf_counter() - t0
        else:
            prepared = copy.deepcopy(model)
            keep_linear_weights_in(prepared, precision)
        t0 = time.perf_counter()
        predictions, align = answer_examples(prepared, tokenizer, examples, cfg, precision)
        seconds = time.perf_counter() - t0
        return ({"seconds": seconds, "questions_per_s": len(examples) / seconds, "load_s": variant_load_s,
                 "precision": "fp32" if precision == "no" else precision, "windows": align.windows,
                 "batch_size": cfg.eval_batch_size, "threads": torch.get_num_threads(),
                 "max_answer_tokens": cfg.max_answer_tokens}, {p.id: p.text for p in predictions})

    def run_pipeline(batch: int, precision: str) -> tuple[dict, dict[str, str]]:
        out = tmp / f"preds_{batch}_{precision}.json"
        cmd = [C.hf_python(args.hf_python), str(C.BENCH / "hf_worker.py"), "eval", "--rows", str(tmp / "rows.json"),
               "--model", str(export), "--out", str(out), "--batch-size", str(batch), "--precision", precision, *th]
        return C.run_json(cmd), json.loads(out.read_text())

    jobs = {f"spokenqa {v}": lambda v=v: run_spokenqa(v) for v in variants}
    jobs.update({f"pipeline {pr} " + (f"batch {b}" if b else "default"): lambda b=b, pr=pr: run_pipeline(b, pr)
                 for b, pr in pipelines})
    runs: dict[str, dict] = {}
    preds: dict[str, dict[str, str]] = {}
    for rep, name in C.interleaved(args.repeats, jobs, "bench_eval"):  # every side once per round, N rounds
        r, answers = jobs[name]()
        if name not in runs:  # answers and settings of the first run; both sides are deterministic
            runs[name], preds[name] = {**r, "all_seconds": []}, answers
        elif answers != preds[name]:
            runs[name]["answers_differ_between_runs"] = True
        runs[name]["all_seconds"].append(r["seconds"])
        print(f"[bench_eval] {name} run {rep + 1}: {r['seconds']:.1f} s", file=sys.stderr, flush=True)
    for r in runs.values():
        r["wall"] = C.spread(r.pop("all_seconds"))
        r["seconds"] = r["wall"]["median"]
        r["questions_per_s"] = len(examples) / r["seconds"]

    for name, pr in preds.items():
        runs[name]["official"] = official_scores(examples, pr)

    def differ(a: str, b: str) -> dict:
        pa, pb = preds[a], preds[b]
        changed = sum(pa[e.id] != pb[e.id] for e in examples)
        changed_norm = sum(normalize_answer(pa[e.id]) != normalize_answer(pb[e.id]) for e in examples)
        f1_diff = runs[a]["official"]["f1"] - runs[b]["official"]["f1"]
        # per-question F1 of a's answer against b's answer: how far apart the texts are
        agree = 100 * sum(_f1(normalize_answer(pa[e.id]).split(), normalize_answer(pb[e.id]).split())
                          if normalize_answer(pa[e.id]) or normalize_answer(pb[e.id]) else 1.0 for e in examples) / len(examples)
        return {"a": a, "b": b, "answers_changed": changed, "answers_changed_normalized": changed_norm,
                "f1_difference": f1_diff, "em_difference": runs[a]["official"]["exact_match"] - runs[b]["official"]["exact_match"],
                "mutual_f1": agree}

    comparisons = []
    names = list(runs)
    default_pl = next((n for n in ("pipeline fp32 default", *names) if n.startswith("pipeline") and n in runs), None)
    if "spokenqa fp32" in runs:  # what each faster variant changes against torch fp32
        comparisons += [differ(n, "spokenqa fp32") for n in names if n.startswith("spokenqa") and n != "spokenqa fp32"]
    for s in [n for n in names if n.startswith("spokenqa")]:
        for pl in [n for n in names if n.startswith("pipeline")]:
            comparisons.append(differ(s, pl))
    comparisons += [differ(n, default_pl) for n in names if n.startswith("pipeline") and n != default_pl]

    table_rows = [[name, r["precision"], C.fmt_spread(r["wall"]), r["questions_per_s"], r["official"]["exact_match"],
                   f"{r['official']['f1']:.2f}"] for name, r in runs.items()]
    md = C.table(["run", "precision", "wall s median (min-max)", "questions/s (median)", "EM", "F1"], table_rows)
    auto = "bf16" if has_bf16 else "fp32"
    pairs = [("spokenqa fp32", "pipeline fp32 default", "equal precision: fp32 vs fp32"),
             ("spokenqa bf16", "pipeline bf16 default", "equal precision: bf16 vs bf16"),
             (f"spokenqa {auto}", "pipeline fp32 default", f"defaults: spokenqa auto ({auto} here) vs the pipeline's fp32")]
    speed_rows = [[label, f"{a}: {C.fmt_spread(runs[a]['wall'])} s", f"{b}: {C.fmt_spread(runs[b]['wall'])} s",
                   f"**{C.ratio_of_medians(runs[b]['wall'], runs[a]['wall'])}**"]
                  for a, b, label in pairs if a in runs and b in runs]
    md_speed = C.table(["comparison", "spokenqa", "pipeline", "speed-up (pipeline s / spokenqa s, medians)"], speed_rows)
    md2 = C.table(["a", "b", "answers changed (raw / normalised)", "F1 a - b", "EM a - b", "F1 of a's answers vs b's"],
                  [[c["a"], c["b"], f"{c['answers_changed']} / {c['answers_changed_normalized']}",
                    f"{c['f1_difference']:+.2f}", f"{c['em_difference']:+.2f}", f"{c['mutual_f1']:.1f}"] for c in comparisons])
    report = {"checkpoint": str(checkpoint), "checkpoint_info": json.loads((checkpoint / "spokenqa.json").read_text()).get("checkpoint"),
              "test_file": str(test_file), "questions": len(examples), "machine_at_start": started, "busy_at_start": busy,
              "machine_at_end": C.machine(), "repeats": args.repeats, "runs": runs, "comparisons": comparisons,
              "table_speed": md_speed, "table": md, "table_changes": md2}
    C.write_json(Path(args.json), report)
    C.write_json(Path(args.json).with_name(Path(args.json).stem + "_predictions.json"), preds)
    print(f"\nbench_eval: {len(examples)} questions of {test_file.name}, checkpoint {checkpoint}; "
          f"{args.repeats} interleaved run(s) per side; load average {started['loadavg']} -> "
          f"{report['machine_at_end']['loadavg']}\n")
    print(md_speed + "\n\n" + md + "\n\n" + md2)
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
