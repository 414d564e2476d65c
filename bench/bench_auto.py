"""Whole `spokenqa evaluate` commands as a user runs them: `auto` against `--backend torch`, and
both against the Hugging Face pipeline (issue 22's targets on a CPU without bf16).

Sides, each a fresh process, timed from its start to its exit (import, model load, features,
forward, decoding, scoring: the whole command):
- `auto`: `spokenqa evaluate --data TEST` (what this CPU's `auto` picks: torch bf16 with native
  bf16, ONNX Runtime otherwise; the backend and precision it picked are in the table);
- `torch`: `... --backend torch` (fp32 on a CPU without bf16);
- `onnx fp32`: `... --backend onnx` (ONNX Runtime fp32: equal precision against torch fp32);
- `onnx int8`: `... --backend onnx --quantize int8` (optional);
- `torch bf16`: `... --backend torch` on a copy of the checkpoint that asks for bf16 (optional:
  what `auto` ran on AVX-512 CPUs without native bf16 before the CPU probe knew them apart);
- `pipeline`: `pipeline("question-answering")` with default settings (fp32, batch 1) in the
  transformers-4.57 venv (bench/hf_worker.py eval), the same weights exported as a
  BertForQuestionAnswering folder; its process wall includes importing transformers and loading.

Before the timed rounds every spokenqa side runs once on two questions, untimed, so the ONNX
graphs are built and cached (that first-use time is reported apart) and every timed run starts
from the same state. Then --rounds rounds of every side once, interleaved (A B C D A B C D), so a
change of load hits every side alike; the table gives medians with min-max, and speed-ups are
ratios of medians. Official SQuAD v1.1 F1/EM per side: spokenqa's from the command's own output,
the pipeline's scored with spokenqa.metrics.official_scores.

    python bench/bench_auto.py                        # whole Spoken-SQuAD test, 2 rounds
    python bench/bench_auto.py --questions 100 --rounds 2 --no-pipeline   # smoke
    python bench/as_cpu.py avx512-vnni -- python bench/bench_auto.py --sides "auto,torch,onnx int8,torch bf16"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

SPOKENQA_SIDES = {"auto": [], "torch": ["--backend", "torch"], "onnx fp32": ["--backend", "onnx"],
                  "onnx int8": ["--backend", "onnx", "--quantize", "int8"], "torch bf16": ["--backend", "torch"]}


def bf16_copy(checkpoint: Path, out: Path) -> Path:
    """`checkpoint` as a folder of links whose config asks for bf16 (mixed_precision "bf16"), which
    torch then runs whatever the CPU probe says."""
    out.mkdir(parents=True)
    for f in checkpoint.iterdir():
        if f.is_file() and f.name != "spokenqa.json":
            (out / f.name).symlink_to(f.resolve())
    info = json.loads((checkpoint / "spokenqa.json").read_text())
    info["config"]["mixed_precision"] = "bf16"
    (out / "spokenqa.json").write_text(json.dumps(info, indent=2))
    return out


def spokenqa_command(args: argparse.Namespace, flags: list[str], questions: int | None,
                     checkpoint: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "spokenqa", "evaluate", "--data", str(args.test_file), *flags]
    if checkpoint or args.checkpoint:
        cmd += ["--checkpoint", str(checkpoint or args.checkpoint)]
    if questions:
        cmd += ["--max-eval-examples", str(questions)]
    return cmd


def run_spokenqa(cmd: list[str]) -> dict:
    """One whole command: its wall time and its JSON result (scores, backend, precision)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    notices = [line for line in proc.stderr.splitlines() if line.startswith("spokenqa:")]
    return {"seconds": seconds, "result": json.loads(proc.stdout), "notices": notices}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="spokenqa checkpoint folder (default: the shipped model)")
    p.add_argument("--test-file", default=None, help="default: $SPOKENQA_DATA/spoken-squad/spoken_test-v1.1.json")
    p.add_argument("--questions", type=int, default=None, help="first N questions only (smoke)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every side (default 2)")
    p.add_argument("--sides", default="auto,torch,onnx fp32",
                   help=f"spokenqa sides, comma-separated: {', '.join(SPOKENQA_SIDES)}")
    p.add_argument("--no-pipeline", action="store_true", help="leave out the Hugging Face pipeline")
    p.add_argument("--hf-python", default=None, help="the transformers-4.57 venv's python (bench/setup_hf457.sh)")
    p.add_argument("--json", default=str(C.OUT / "bench_auto.json"))
    args = p.parse_args(argv)

    from spokenqa.data import load_squad
    from spokenqa.export import export_checkpoint
    from spokenqa.metrics import official_scores

    args.test_file = Path(args.test_file or C.spoken_test())
    started, busy = C.machine(), C.busy_processes()
    flags = C.cpu_flags()
    vnni = sorted(f for f in flags if "vnni" in f)
    kind = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) + (
        f"; VNNI: {', '.join(vnni)}" if vnni else "; no VNNI") + (
        f"; RUN AS {started['as_cpu']} (bench/as_cpu.py)" if started.get("as_cpu") else "")
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    for side in sides:
        if side not in SPOKENQA_SIDES:
            raise SystemExit(f"--sides: unknown {side!r}; choose from {', '.join(SPOKENQA_SIDES)}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_auto-"))
    checkpoints = {side: None for side in sides}
    if "torch bf16" in sides:
        checkpoints["torch bf16"] = bf16_copy(C.checkpoint_for(args.checkpoint), tmp / "bf16_checkpoint")
    jobs = {side: (lambda side=side: run_spokenqa(
                spokenqa_command(args, SPOKENQA_SIDES[side], args.questions, checkpoints[side])))
            for side in sides}
    examples = None
    if not args.no_pipeline:
        hf_python = C.hf_python(args.hf_python)
        checkpoint = C.checkpoint_for(args.checkpoint)
        export = export_checkpoint(checkpoint, tmp / "hf_model", dtype="fp32")
        examples, _ = load_squad(args.test_file, lowercase=True, max_questions=args.questions)
        rows = [{"id": e.id, "question": e.question, "context": e.context} for e in examples]
        (tmp / "rows.json").write_text(json.dumps(rows))

        def pipeline() -> dict:
            out = tmp / "pipeline_predictions.json"
            cmd = [hf_python, str(C.BENCH / "hf_worker.py"), "eval", "--rows", str(tmp / "rows.json"),
                   "--model", str(export), "--out", str(out)]
            t0 = time.perf_counter()
            r = C.run_json(cmd)
            seconds = time.perf_counter() - t0
            scores = official_scores(examples, json.loads(out.read_text()))
            return {"seconds": seconds, "call_s": r["seconds"], "load_s": r["load_s"],
                    "result": {"official": scores, "backend": f"transformers {r['transformers']}",
                               "precision": r["precision"], "device": "cpu"}}

        jobs["pipeline"] = pipeline

    first_use = {}
    for side in sides:  # untimed: builds and caches the ONNX graphs, warms the page cache
        print(f"[bench_auto] {side}: first use (2 questions, untimed)", file=sys.stderr, flush=True)
        first = run_spokenqa(spokenqa_command(args, SPOKENQA_SIDES[side], 2, checkpoints[side]))
        first_use[side] = {"seconds": first["seconds"], "notices": first["notices"]}

    runs: dict[str, dict] = {}
    for rnd, side in C.interleaved(args.rounds, jobs, "bench_auto"):
        r = jobs[side]()
        runs.setdefault(side, {"all_seconds": [], "results": []})
        runs[side]["all_seconds"].append(r["seconds"])
        runs[side]["results"].append(r["result"])
        runs[side].update({k: v for k, v in r.items() if k in ("call_s", "load_s", "notices")})
        print(f"[bench_auto] {side} round {rnd + 1}: {r['seconds']:.1f} s, F1 {r['result']['official']['f1']:.2f}",
              file=sys.stderr, flush=True)
    for r in runs.values():
        r["wall"] = C.spread(r.pop("all_seconds"))
        r["official"] = r["results"][0]["official"]
        r["answered_by"] = f"{r['results'][0]['backend']} {r['results'][0]['precision']}"
        r["same_scores_every_round"] = all(x["official"] == r["official"] for x in r["results"])
        del r["results"]

    questions = next(iter(runs.values()))["official"]["questions"]
    table = C.table(["side", "answered by", "wall s, median (min-max)", "questions/s", "EM", "F1"],
                    [[side, r["answered_by"], C.fmt_spread(r["wall"]), questions / r["wall"]["median"],
                      f"{r['official']['exact_match']:.2f}", f"{r['official']['f1']:.2f}"] for side, r in runs.items()])
    pairs = [("auto", "torch", "defaults: auto vs --backend torch (target >= 1.5x, F1 within 0.3)"),
             ("onnx fp32", "torch", "equal precision: ONNX Runtime fp32 vs torch fp32"),
             ("onnx int8", "onnx fp32", "ONNX Runtime int8 vs fp32"),
             ("onnx int8", "torch", "ONNX Runtime int8 vs --backend torch"),
             ("onnx int8", "pipeline", "ONNX Runtime int8 vs the pipeline"),
             ("torch", "torch bf16", "torch fp32 vs torch bf16"),
             ("auto", "torch bf16", "auto vs torch bf16"),
             ("auto", "pipeline", "defaults: auto vs the pipeline (target >= 3x)"),
             ("torch", "pipeline", "torch fp32 vs the pipeline (fp32 both)"),
             ("onnx fp32", "pipeline", "ONNX Runtime fp32 vs the pipeline (fp32 both)")]
    ratio_rows = [[label, C.ratio_of_medians(runs[b]["wall"], runs[a]["wall"]),
                   f"{runs[a]['official']['f1'] - runs[b]['official']['f1']:+.2f}"]
                  for a, b, label in pairs if a in runs and b in runs]
    ratios = C.table(["comparison", "speed-up (median s of the second / of the first)", "F1 first - second"], ratio_rows)
    first_table = C.table(["side", "first use s (2 questions; builds the ONNX graphs if not cached)"],
                          [[side, f"{v['seconds']:.1f}"] for side, v in first_use.items()])
    report = {"test_file": str(args.test_file), "questions": questions, "rounds": args.rounds, "cpu_kind": kind,
              "machine_at_start": started, "busy_at_start": busy, "machine_at_end": C.machine(),
              "busy_at_end": C.busy_processes(), "first_use": first_use, "runs": runs,
              "table": table, "table_ratios": ratios}
    C.write_json(Path(args.json), report)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nbench_auto: {questions} questions of {args.test_file.name}; {args.rounds} interleaved round(s); "
          f"{started.get('cpu', '?')} ({kind}), {os.cpu_count()} CPUs; load average {started['loadavg']} -> "
          f"{report['machine_at_end']['loadavg']}; {started['date_utc']} -> {report['machine_at_end']['date_utc']} UTC\n")
    print(table + "\n\n" + ratios + "\n\n" + first_table)
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
