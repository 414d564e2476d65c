"""Issue 13 in one command: the ONNX Runtime backend against torch and the pipeline, on this CPU.

Run it with the machine otherwise idle (every JSON records the load average and the busiest
processes at start and end):

    python bench/bench_onnx.py                  # whole Spoken-SQuAD test, the shipped model
    python bench/bench_onnx.py --checkpoint DIR --questions 20 --calls 10 --warmup 2 --load-runs 1 \\
        --backend-calls 3                       # smoke

All runs use a copy of the checkpoint without an ONNX cache (so the first-use export is measured
and the checkpoint is left alone). Variants: torch bf16 (where this CPU has native bf16: what
`auto` runs here, and spokenqa before this backend), torch fp32 (what torch runs on a CPU without
bf16; forced here by the CPU probe), ONNX Runtime fp32 (what `auto` runs on such a CPU) and ONNX
Runtime int8 (`--quantize int8`). In order:

1. the CPU: model, native bf16 (what `auto` keys on), AVX2 / AVX-512 / VNNI;
2. forward pass alone, one window and a batch of 64 (bench_backends.py): the per-window ratios;
3. load time in fresh processes (import, `QA.load`, first call): ONNX first use (export, and
   quantisation for int8) once, then --load-runs loads with the cache (median);
4. one question over a 150-word transcript: p50/p90/p99 of `QA.answer` per variant;
5. the whole test (bench_eval.py): wall time, official EM/F1 of each variant and of the pipeline
   (default settings), answers changed against torch fp32 (count and F1);
6. the issue's targets, met or not; on a CPU with bf16 the AVX2-only case cannot be measured, and
   the projection from the per-window ratios is printed as a projection.

Writes bench/out/bench_onnx.json and bench/out/bench_onnx.md (tables), plus the JSON of the
bench_eval and bench_backends runs beside them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

# label -> (backend, quantize, CPU probe forced to "no bf16")
VARIANTS = {
    "torch bf16": ("torch", None, False),
    "torch fp32": ("torch", None, True),
    "onnx fp32": ("onnx", None, False),
    "onnx int8": ("onnx", "int8", False),
}
EVAL_NAMES = {"torch bf16": "spokenqa bf16", "torch fp32": "spokenqa fp32", "onnx fp32": "spokenqa onnx-fp32",
              "onnx int8": "spokenqa onnx-int8"}
# spokenqa torch fp32 against the pipeline, whole test, AMD EPYC Zen 3 (AVX2, no bf16), issue 13
AVX2_TORCH_FP32_SPEEDUP = 1.70


def load_qa(checkpoint: Path, label: str, threads: int | None):
    """QA.load as a user's `--backend/--quantize` would, the CPU probe answering "no bf16" for
    torch fp32."""
    from spokenqa.qa import QA

    backend, quantize, no_bf16 = VARIANTS[label]
    return QA.load(checkpoint, threads=threads, backend=backend, quantize=quantize,
                   cpu_bf16=(lambda: False) if no_bf16 else None)


def worker_load(args) -> None:
    times, qa = C.load_times(lambda: importlib.import_module("spokenqa.qa"),  # the import a user pays
                             lambda _: load_qa(Path(args.checkpoint), args.variant, args.threads),
                             lambda qa: qa.answer(C.FIRST_CALL[0], context=C.FIRST_CALL[1]))
    C.emit({**times, "runtime": str(qa.runtime)})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", default=None, help="default: the shipped model (else a quick one)")
    p.add_argument("--test-file", default=None, help="default: $SPOKENQA_DATA/spoken-squad/spoken_test-v1.1.json")
    p.add_argument("--questions", type=int, default=None, help="first N test questions only (smoke)")
    p.add_argument("--calls", type=int, default=200, help="timed calls per variant (latency)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--load-runs", type=int, default=3, help="fresh-process loads with the cache (median)")
    p.add_argument("--backend-calls", type=int, default=30, help="calls per forward-pass measurement")
    p.add_argument("--threads", type=int, default=None, help="CPU threads on every side (default: torch's)")
    p.add_argument("--no-pipeline", action="store_true", help="skip the pipeline (needs .venv-hf457)")
    p.add_argument("--repeats", type=int, default=3,
                   help="whole-test runs per variant, interleaved (bench_eval.py): median and range")
    p.add_argument("--hf-python", default=None)
    p.add_argument("--avx2-fp32-speedup", type=float, default=AVX2_TORCH_FP32_SPEEDUP,
                   help="spokenqa torch fp32 / pipeline measured on an AVX2-only CPU (issue 13: 1.70); "
                   "the base of the projection printed on a CPU with bf16")
    p.add_argument("--json", default=str(C.OUT / "bench_onnx.json"))
    args = p.parse_args(argv)
    if args.worker == "load":
        return worker_load(args)

    import bench_backends
    import bench_eval
    import torch

    from spokenqa.backends import choose_backend
    from spokenqa.inference import cpu_supports_bf16

    th = C.use_threads(args.threads)
    started, busy = C.machine(), C.busy_processes()
    flags = C.cpu_flags()
    cpu = {"name": started.get("cpu"), "native_bf16": cpu_supports_bf16(), "avx2": "avx2" in flags,
           "avx512f": "avx512f" in flags, "avx512_vnni": "avx512_vnni" in flags, "avx_vnni": "avx_vnni" in flags,
           "threads": torch.get_num_threads()}
    checkpoint = C.checkpoint_for(args.checkpoint)
    auto = choose_backend("auto", None, "auto", "cpu")
    labels = [v for v in VARIANTS if v != "torch bf16" or cpu["native_bf16"]]
    print(f"[bench_onnx] {cpu}; auto here: {auto}; checkpoint {checkpoint}", file=sys.stderr, flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench_onnx-"))
    out_dir = Path(args.json).parent

    # 2. forward pass alone (its own fresh copy: its one-off includes the export)
    bench_backends.main(["--checkpoint", str(checkpoint), "--calls", str(args.backend_calls),
                         "--json", str(out_dir / "bench_onnx_backends.json")])
    backends = json.loads((out_dir / "bench_onnx_backends.json").read_text())

    # 3. load times in fresh processes: first use, then with the cache
    loads: dict[str, dict] = {}
    for label in labels:
        folder = C.fresh_checkpoint(checkpoint, work, label.replace(" ", "_"))
        cmd = [sys.executable, __file__, "--worker", "load", "--variant", label, "--checkpoint", str(folder), *th]
        first = C.run_json(cmd) if label.startswith("onnx") else None
        cached = [C.run_json(cmd) for _ in range(args.load_runs)]
        loads[label] = {"first_use": first, "runtime": cached[0]["runtime"],
                        **C.median_load_times(cached)}
        print(f"[bench_onnx] load {label}: {loads[label]}", file=sys.stderr, flush=True)
    ready = work / "onnx_int8"  # has both graphs now (int8 is quantised from the fp32 graph)

    # 4. one question over 150 words
    latency: dict[str, dict] = {}
    texts = None
    for label in labels:
        qa = load_qa(ready, label, args.threads)
        texts = texts or C.latency_texts(Path(args.test_file or C.spoken_test()), qa.tokenizer, qa.cfg)

        def ask(qa=qa, texts=texts):
            return qa.answer(texts["question"], context=texts["context"])

        latency[label] = {**C.time_calls(ask, args.warmup, args.calls), "runtime": str(qa.runtime),
                          "answer": ask()[0].answers[0].text}
        print(f"[bench_onnx] latency {label}: p50 {latency[label]['p50_ms']:.1f} ms", file=sys.stderr, flush=True)

    # 5. the whole test, against the pipeline
    eval_json = out_dir / "bench_onnx_eval.json"
    variants = ",".join({"torch bf16": "bf16", "torch fp32": "fp32", "onnx fp32": "onnx-fp32",
                         "onnx int8": "onnx-int8"}[v] for v in labels)
    eval_args = ["--checkpoint", str(ready), "--variants", variants, "--json", str(eval_json),
                 "--pipeline-batches", "" if args.no_pipeline else "0", "--pipeline-precisions", "fp32",
                 "--repeats", str(args.repeats), *th]
    for flag, value in (("--questions", args.questions), ("--test-file", args.test_file), ("--hf-python", args.hf_python)):
        if value is not None:
            eval_args += [flag, str(value)]
    bench_eval.main(eval_args)
    evaluation = json.loads(eval_json.read_text())
    shutil.rmtree(work, ignore_errors=True)

    # 6. tables and targets
    runs, changes = evaluation["runs"], {c["a"]: c for c in evaluation["comparisons"] if c["b"] == "spokenqa fp32"}
    pipeline = runs.get("pipeline fp32 default")
    rows = []
    for label in labels:
        r = runs[EVAL_NAMES[label]]
        c = changes.get(EVAL_NAMES[label])
        rows.append([label, r["seconds"], f"{pipeline['seconds'] / r['seconds']:.2f}x" if pipeline else "-",
                     f"{r['official']['exact_match']:.2f}", f"{r['official']['f1']:.2f}",
                     f"{c['answers_changed']} ({c['f1_difference']:+.2f} F1)" if c else "(reference)",
                     f"{latency[label]['p50_ms']:.1f}", f"{latency[label]['p99_ms']:.1f}",
                     f"{loads[label]['load_s']:.2f}", f"{loads[label]['first_use']['load_s']:.1f}" if loads[label]["first_use"] else "-"])
    if pipeline:
        rows.append(["pipeline (default)", pipeline["seconds"], "1.00x", f"{pipeline['official']['exact_match']:.2f}",
                     f"{pipeline['official']['f1']:.2f}", "-", "-", "-", "-", "-"])
    md = C.table(["variant", "whole test s", "vs pipeline", "EM", "F1", "answers changed vs torch fp32",
                  "1 question p50 ms", "p99 ms", "load s (cached)", "first-use load s (export)"], rows)

    targets = []
    fp32_s = runs["spokenqa fp32"]["seconds"]
    for label in ("onnx fp32", "onnx int8"):
        r, c = runs[EVAL_NAMES[label]], changes[EVAL_NAMES[label]]
        speed = pipeline["seconds"] / r["seconds"] if pipeline else None
        if cpu["native_bf16"]:
            how, met = "not measurable here (this CPU has bf16)", "see the projection"
        else:
            how, met = "measured (this CPU has no bf16)", "-" if speed is None else ("yes" if speed >= 3 else "no")
        targets.append([f"{label}: whole test >= 3x the pipeline on an AVX2-only CPU", how,
                        f"{speed:.2f}x here" if speed else "-", met])
        targets.append([f"{label}: official F1 within 0.5 of torch fp32", "measured", f"{c['f1_difference']:+.2f}",
                        "yes" if abs(c["f1_difference"]) <= 0.5 else "no"])
    for label in labels:
        ok = latency[label]["p50_ms"] <= 20 and loads[label]["load_s"] <= 2
        targets.append([f"{label}: one question p50 <= 20 ms and load <= 2 s (cache present)", "measured",
                        f"{latency[label]['p50_ms']:.1f} ms, {loads[label]['load_s']:.2f} s", "yes" if ok else "no"])
    if cpu["native_bf16"]:
        bf16_s = runs["spokenqa bf16"]["seconds"]
        fastest = min(labels, key=lambda v: runs[EVAL_NAMES[v]]["seconds"])
        targets.append(["bf16 CPU: no slower than today (auto keeps torch bf16)", "measured",
                        f"torch bf16 {bf16_s:.1f} s; fastest here: {fastest}", "yes (unchanged path)"])
    md_targets = C.table(["target", "how", "value", "met?"], targets)

    projection = None
    if cpu["native_bf16"]:
        by_name = {r["backend"]: r for r in backends["results"]}
        fp32_row = by_name["torch fp32"]
        projection = {"base_torch_fp32_vs_pipeline_avx2": args.avx2_fp32_speedup, "rows": []}
        for r in backends["results"]:
            if r["backend"].startswith("ONNX Runtime"):
                single = fp32_row["single"]["median_ms"] / r["single"]["median_ms"]
                bulk = fp32_row["bulk"]["median_ms"] / r["bulk"]["median_ms"]
                whole = fp32_s / runs[EVAL_NAMES["onnx int8" if "int8" in r["backend"] else "onnx fp32"]]["seconds"]
                projection["rows"].append([r["backend"], f"{single:.2f}x", f"{bulk:.2f}x", f"{whole:.2f}x",
                                           f"{args.avx2_fp32_speedup * bulk:.2f}x", f"{args.avx2_fp32_speedup * whole:.2f}x"])
        projection["table"] = C.table(
            ["ONNX variant", "vs torch fp32: 1 window", "batch of 64", "whole test",
             f"PROJECTED vs pipeline on AVX2 ({args.avx2_fp32_speedup:.2f}x x batch ratio)",
             "PROJECTED (x whole-test ratio)"], projection["rows"])

    report = {"cpu": cpu, "auto_here": str(auto), "checkpoint": str(checkpoint), "questions": evaluation["questions"],
              "machine_at_start": started, "busy_at_start": busy, "machine_at_end": C.machine(),
              "loads": loads, "latency": latency, "eval": {k: v for k, v in evaluation.items() if k != "table"},
              "backends": backends["results"], "projection": projection, "table": md, "targets": md_targets}
    C.write_json(Path(args.json), report)
    text = [(f"bench_onnx: {cpu['name']} (native bf16: {cpu['native_bf16']}, AVX-512: {cpu['avx512f']}, "
             f"VNNI: {cpu['avx512_vnni'] or cpu['avx_vnni']}), {cpu['threads']} threads; `auto` here: {auto}; "
             f"{evaluation['questions']} questions; load average {started['loadavg']} -> "
             f"{report['machine_at_end']['loadavg']}"),
            "", md, "", md_targets, "", "Forward pass alone (bench_backends.py):", "", backends["table"]]
    if projection:
        text += ["", ("This CPU has native bf16, so the AVX2-only case is not measured here. PROJECTION (not a "
                      "measurement) from this CPU's ratios to torch fp32, times spokenqa torch fp32's measured "
                      "speed-up over the pipeline on an AVX2-only CPU. This CPU's AVX-512 and VNNI may favour "
                      "ONNX Runtime (int8 above all) more than AVX2 does."), "", projection["table"]]
    Path(args.json).with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n" + "\n".join(text))
    print(f"\nwritten {args.json} and {Path(args.json).with_suffix('.md')}")


if __name__ == "__main__":
    main()
