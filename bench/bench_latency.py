"""Interactive latency: spokenqa's QA API versus transformers.pipeline("question-answering").

- load time in fresh processes (median of --load-runs): importing the library, loading the model
  (QA.load / pipeline(...)), the first call;
- one question over a 150-word Spoken-SQuAD transcript: p50/p90/p99 over --calls calls after
  --warmup calls (both sides), for QA.answer and the pipeline (same weights, exported as in
  bench_eval), in --repeats-single interleaved rounds (median and min-max over rounds): spokenqa
  as QA.load runs it (auto) and at torch fp32; the pipeline at fp32 (its default) and bf16
  (torch_dtype, where the CPU has native bf16); equal precision first in the table;
- what each inference setting gives on that call (spokenqa): fp32; bf16 autocast casting the
  weights at each call (the model as load_checkpoint returns it); bf16 with the Linear weights kept
  in bf16 (what QA.load now does); 1 vs 2 intra-op threads; 1 inter-op thread; OMP_WAIT_POLICY;
- how the cost grows: 1, 4, 16, 64 questions over the 150-word context (one call), and one
  question over contexts of one, two and four windows (384 tokens, stride 128), each point after
  one warm-up call on both sides; spokenqa default vs the pipeline's first fp32 round. Plot:
  bench/out/scaling.png (copied to docs/img/scaling.png with --doc-plot when < 150 KB).

    python bench/bench_latency.py
    python bench/bench_latency.py --calls 10 --warmup 2 --repeats 1 --load-runs 1 --repeats-single 2 \\
        --variant-calls 5 --checkpoint /tmp/ckpt  # smoke
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

from spokenqa.export import export_checkpoint

# --- workers (fresh processes) ----------------------------------------------------------------


def worker_load(args) -> None:
    times, _ = C.load_times(lambda: importlib.import_module("spokenqa.qa"),
                            lambda lib: lib.QA.load(args.checkpoint, threads=args.threads),
                            lambda qa: qa.answer(C.FIRST_CALL[0], context=C.FIRST_CALL[1]))
    C.emit(times)


def worker_single(args) -> None:
    import torch

    if args.interop:
        torch.set_num_interop_threads(args.interop)
    from spokenqa.qa import QA

    spec = json.loads(Path(args.spec).read_text())
    qa = QA.load(args.checkpoint, threads=args.threads)
    r = C.time_calls(lambda: qa.answer(spec["question"], context=spec["context"]), spec["warmup"], spec["variant_calls"])
    r["threads"], r["interop"] = torch.get_num_threads(), torch.get_num_interop_threads()
    C.emit(r)


def plot(spokenqa: dict, pipeline: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    ax = axes[0]
    for name, r, style in (("spokenqa QA.answer", spokenqa, "o-"), ("HF pipeline (default)", pipeline, "s--")):
        ns = [x["n"] for x in r["questions"]]
        ax.plot(ns, [1e3 * x["median_s"] for x in r["questions"]], style, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("questions over one 150-word transcript")
    ax.set_ylabel("ms per call (median)")
    ax.set_xticks([1, 4, 16, 64], ["1", "4", "16", "64"])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    for name, r, style in (("spokenqa QA.answer", spokenqa, "o-"), ("HF pipeline (default)", pipeline, "s--")):
        ax.plot([x["windows"] for x in r["context"]], [1e3 * x["median_s"] for x in r["context"]], style, label=name)
    ax.set_xlabel("context windows (384 tokens, stride 128), one question")
    ax.set_ylabel("ms per call (median)")
    ax.set_xticks([1, 2, 4])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle("Cost growth, 2-core CPU (lower is better)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=("load", "single"), help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--interop", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", default=None, help="default: the shipped model (else a quick one)")
    p.add_argument("--test-file", default=None)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--variant-calls", type=int, default=100, help="calls per inference-setting variant")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5, help="repeats per scaling point (median)")
    p.add_argument("--load-runs", type=int, default=3)
    p.add_argument("--repeats-single", type=int, default=3,
                   help="interleaved rounds of the single-question timing (spokenqa, then the pipeline in a fresh "
                        "process at fp32 and, with native bf16, bf16); tables give median and range over rounds")
    p.add_argument("--no-variants", action="store_true")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads on both sides (default: torch's, = cores)")
    p.add_argument("--hf-python", default=None)
    p.add_argument("--plot", default=str(C.OUT / "scaling.png"))
    p.add_argument("--doc-plot", action="store_true", help="also copy the plot to docs/img/ when < 150 KB")
    p.add_argument("--json", default=str(C.OUT / "bench_latency.json"))
    args = p.parse_args(argv)
    if args.worker == "load":
        return worker_load(args)
    if args.worker == "single":
        return worker_single(args)

    import torch

    from spokenqa.checkpoint import load_checkpoint
    from spokenqa.inference import cpu_supports_bf16
    from spokenqa.qa import QA

    th = C.use_threads(args.threads)
    started, busy = C.machine(), C.busy_processes()
    checkpoint = C.checkpoint_for(args.checkpoint)
    tmp = Path(tempfile.mkdtemp(prefix="bench_latency-"))
    export = export_checkpoint(checkpoint, tmp / "hf_model", dtype="fp32")
    hf = C.hf_python(args.hf_python)

    # load times, fresh processes, alternating sides
    loads = {"spokenqa": [], "pipeline": []}
    for _ in range(args.load_runs):
        loads["spokenqa"].append(C.run_json([sys.executable, __file__, "--worker", "load", "--checkpoint", str(checkpoint), *th]))
        loads["pipeline"].append(C.run_json([hf, str(C.BENCH / "hf_worker.py"), "load", "--model", str(export), *th]))
    load_summary = {side: C.median_load_times(rs) for side, rs in loads.items()}
    print(f"[bench_latency] load: {load_summary}", file=sys.stderr, flush=True)

    qa = QA.load(checkpoint)
    texts = C.latency_texts(Path(args.test_file or C.spoken_test()), qa.tokenizer, qa.cfg)
    spec = {"question": texts["question"], "context": texts["context"], "questions": texts["questions"],
            "contexts": [{k: c[k] for k in ("windows", "words", "context")} for c in texts["contexts"]],
            "n_questions": [1, 4, 16, 64], "warmup": args.warmup, "calls": args.calls,
            "variant_calls": args.variant_calls, "repeats": args.repeats}
    (tmp / "spec.json").write_text(json.dumps(spec))
    ask = lambda q=texts["question"], c=texts["context"]: qa.answer(q, context=c)
    fp32_model, tok, cfg = load_checkpoint(checkpoint)
    qa_fp32 = QA(fp32_model, tok, cfg.replace(mixed_precision="no"), torch.device("cpu"))
    ask_fp32 = lambda: qa_fp32.answer(texts["question"], context=texts["context"])
    default = f"spokenqa {qa.runtime.backend} {qa.runtime.precision_name}"  # QA.load's auto choice here
    sq_sides = {default: ask}
    if default != "spokenqa torch fp32":
        sq_sides["spokenqa torch fp32"] = ask_fp32
    pl_precisions = ["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"]
    singles: dict[str, list[dict]] = {name: [] for name in [*sq_sides, *(f"pipeline {x}" for x in pl_precisions)]}
    pipeline_runs: dict[str, list[dict]] = {x: [] for x in pl_precisions}
    # interleaved rounds; the pipeline in a fresh process each time
    for _, name in C.interleaved(args.repeats_single, singles, "bench_latency"):
        if name in sq_sides:
            singles[name].append(C.time_calls(sq_sides[name], args.warmup, args.calls))
            continue
        prec = name.removeprefix("pipeline ")
        r = C.run_json([hf, str(C.BENCH / "hf_worker.py"), "latency", "--model", str(export), "--spec",
                        str(tmp / "spec.json"), "--precision", prec, *th])
        pipeline_runs[prec].append(r)
        singles[name].append(r["single"])
    single_summary = {name: {k: C.spread([r[k] for r in rs]) for k in ("p50_ms", "p90_ms", "p99_ms")}
                      for name, rs in singles.items()}
    spokenqa = {"single": singles[default][0], "questions": [], "context": [],
                "answer": ask()[0].answers[0].text, "threads": torch.get_num_threads(), "runtime": str(qa.runtime)}
    pipeline = pipeline_runs["fp32"][0]  # the pipeline's default settings, for the scaling tables and plot
    print(f"[bench_latency] single question: {single_summary}", file=sys.stderr, flush=True)

    for n in spec["n_questions"]:
        qs = texts["questions"][:n]
        qa.answer(qs, context=texts["context"])
        median_s = C.median_call(lambda qs=qs: qa.answer(qs, context=texts["context"]), args.repeats)
        spokenqa["questions"].append({"n": n, "median_s": median_s})
    for c in texts["contexts"]:
        qa.answer(texts["question"], context=c["context"])
        median_s = C.median_call(lambda c=c: qa.answer(texts["question"], context=c["context"]), args.repeats)
        spokenqa["context"].append({"windows": c["windows"], "words": c["words"], "median_s": median_s})

    variants = []
    if not args.no_variants:
        n, w = args.variant_calls, args.warmup
        before = QA(fp32_model, tok, cfg, torch.device("cpu"))  # autocast casts the fp32 weights each call
        variants.append({"setting": "bf16 autocast, weights cast at each call (before)", "threads": torch.get_num_threads(),
                         **C.time_calls(lambda: before.answer(texts["question"], context=texts["context"]), w, n)})
        variants.append({"setting": "bf16, Linear weights kept in bf16 (QA.load now)", "threads": torch.get_num_threads(),
                         **C.time_calls(ask, w, n)})
        variants.append({"setting": "fp32", "threads": torch.get_num_threads(), **C.time_calls(ask_fp32, w, n)})
        threads = torch.get_num_threads()
        other = 1 if threads != 1 else 2
        torch.set_num_threads(other)
        variants.append({"setting": f"bf16 (QA.load now), {other} intra-op thread(s)", "threads": other, **C.time_calls(ask, w, n)})
        torch.set_num_threads(threads)
        for label, extra, env in (("bf16 (QA.load now), 1 inter-op thread", ["--interop", "1"], {}),
                                  ("bf16 (QA.load now), OMP_WAIT_POLICY=PASSIVE", [], {"OMP_WAIT_POLICY": "PASSIVE"}),
                                  ("bf16 (QA.load now), OMP_WAIT_POLICY=ACTIVE", [], {"OMP_WAIT_POLICY": "ACTIVE"})):
            r = C.run_json([sys.executable, __file__, "--worker", "single", "--checkpoint", str(checkpoint),
                            "--spec", str(tmp / "spec.json"), *th, *extra], env=env)
            variants.append({"setting": label, **r})
        for v in variants:
            print(f"[bench_latency] {v['setting']}: p50 {v['p50_ms']:.1f} ms", file=sys.stderr, flush=True)

    plot_path = Path(args.plot)
    plot(spokenqa, pipeline, plot_path)
    doc_plot = None
    if args.doc_plot and plot_path.stat().st_size < 150 * 1024:
        doc_plot = C.REPO / "docs" / "img" / "scaling.png"
        doc_plot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot_path, doc_plot)

    ls = load_summary
    md = C.table(["fresh process (median of --load-runs)", "spokenqa QA", "HF pipeline (fp32)", "pipeline / spokenqa"], [
        ["import s", ls["spokenqa"]["import_s"], ls["pipeline"]["import_s"], "-"],
        ["model load s (QA.load / pipeline())", f"{ls['spokenqa']['load_s']:.2f}", f"{ls['pipeline']['load_s']:.2f}",
         f"{ls['pipeline']['load_s'] / ls['spokenqa']['load_s']:.2f}x"],
        ["import + load s", f"{ls['spokenqa']['import_s'] + ls['spokenqa']['load_s']:.2f}",
         f"{ls['pipeline']['import_s'] + ls['pipeline']['load_s']:.2f}", "-"],
        ["first call s", f"{ls['spokenqa']['first_call_s']:.3f}", f"{ls['pipeline']['first_call_s']:.3f}", "-"],
    ])
    pairs = [("spokenqa torch fp32", "pipeline fp32", "equal precision: fp32 vs fp32"),
             ("spokenqa torch bf16", "pipeline bf16", "equal precision: bf16 vs bf16"),
             (default, "pipeline fp32", f"defaults: {default} (QA.load auto) vs pipeline fp32")]
    md_single = C.table(
        [f"1 question, 150 words ({texts['tokens_150']} tokens)", "spokenqa p50 ms", "pipeline p50 ms",
         "p50 pipeline / spokenqa", "spokenqa p99 ms", "pipeline p99 ms"],
        [[label, f"{a}: {C.fmt_spread(single_summary[a]['p50_ms'])}", f"{b}: {C.fmt_spread(single_summary[b]['p50_ms'])}",
          f"**{C.ratio_of_medians(single_summary[b]['p50_ms'], single_summary[a]['p50_ms'])}**",
          C.fmt_spread(single_summary[a]["p99_ms"]), C.fmt_spread(single_summary[b]["p99_ms"])]
         for a, b, label in pairs if a in single_summary and b in single_summary])
    md_scale = C.table(["questions over the 150-word context", "spokenqa ms", "pipeline ms", "pipeline / spokenqa"], [
        [a["n"], 1e3 * a["median_s"], 1e3 * b["median_s"], f"{b['median_s'] / a['median_s']:.2f}x"]
        for a, b in zip(spokenqa["questions"], pipeline["questions"])])
    md_ctx = C.table(["context (one question)", "spokenqa ms", "pipeline ms", "pipeline / spokenqa"], [
        [f"{a['windows']} window(s), {a['words']} words", 1e3 * a["median_s"], 1e3 * b["median_s"],
         f"{b['median_s'] / a['median_s']:.2f}x"] for a, b in zip(spokenqa["context"], pipeline["context"])])
    md_var = C.table(["spokenqa setting (1 question, 150 words)", "threads", "p50 ms", "p90 ms", "p99 ms"],
                     [[v["setting"], v.get("threads", "-"), v["p50_ms"], v["p90_ms"], v["p99_ms"]] for v in variants])
    report = {"checkpoint": str(checkpoint), "machine_at_start": started, "busy_at_start": busy, "machine_at_end": C.machine(),
              "texts": {k: v for k, v in texts.items() if k not in ("questions",)}, "loads": loads, "load_summary": load_summary,
              "single_runs": singles, "single_summary": single_summary, "pipeline_runs": pipeline_runs,
              "spokenqa": spokenqa, "pipeline": pipeline, "variants": variants, "plot": str(plot_path),
              "doc_plot": str(doc_plot) if doc_plot else None, "plot_bytes": plot_path.stat().st_size,
              "tables": [md_single, md, md_scale, md_ctx, md_var]}
    C.write_json(Path(args.json), report)
    print(f"\nbench_latency: checkpoint {checkpoint}; load average {started['loadavg']} -> "
          f"{report['machine_at_end']['loadavg']}; spokenqa answer: {spokenqa['answer']!r} (gold {texts['answer']!r})\n")
    print(f"{md_single}\n\n{md}\n\n{md_scale}\n\n{md_ctx}\n\n{md_var}")
    print(f"\nplot {plot_path} ({plot_path.stat().st_size // 1024} KB){' -> ' + str(doc_plot) if doc_plot else ''}; written {args.json}")


if __name__ == "__main__":
    main()
