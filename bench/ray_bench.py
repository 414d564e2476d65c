"""Items/s of `spokenqa synthesize` on the local pool and on Ray, 1 and 2 workers (docs/SCALING.md).

Each configuration speaks and transcribes the same paragraphs (the first N of SQuAD train in
the order of shared/data/synth: --seed 42) into a fresh output file:

  local-1   the process pool, 1 worker        ray-1   a Ray started for the run, 1 CPU
  local-2   the process pool, 2 workers       ray-2   a Ray started for the run, 2 CPUs

in that interleaved order (so that a change of load during the run hits both sides), in this
process, one after the other. Per configuration: wall seconds from the first paragraph sent out
to the last written (Ray's start-up apart, in `startup_s`), paragraphs/s, the seconds a worker
spent in TTS + ASR per paragraph (its own clock: CPU-seconds when the machine is otherwise idle),
and the transcripts' SHA-256 (the same for
every configuration: the engines are deterministic). From those: Ray's overhead at one worker
(ray-1 wall / local-1 wall - 1) and the projection for all 18,896 SQuAD train paragraphs on N
cores: 18,896 x (local-1 wall per paragraph) x (1 + Ray overhead) / N, i.e. assuming the
cluster's cores are like this machine's and kept busy.

    nice -n 5 .venv/bin/python bench/ray_bench.py --paragraphs 40 --out bench/out/ray_bench.json

Run it on an idle machine: with other load the 2-worker rows measure the load, not the pool.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT, busy_processes, machine, squad_train

SQUAD_TRAIN_PARAGRAPHS = 18_896
CONFIGS = (("local-1", None, 1), ("ray-1", "auto", 1), ("local-2", None, 2), ("ray-2", "auto", 2))
PROJECT_CORES = (2, 16, 64, 256, 1024)


def transcripts_sha(path: Path) -> str:
    """SHA-256 of the transcripts and word times, sorted by key: what must not depend on where
    the paragraphs ran (timings do)."""
    rows = sorted(
        (json.loads(line) for line in path.read_text().splitlines()),
        key=lambda r: (r["article_index"], r["paragraph_index"]),
    )
    keep = [[r["article_index"], r["paragraph_index"], r["transcript"], r["words"]] for r in rows]
    return hashlib.sha256(json.dumps(keep).encode()).hexdigest()


def run(squad: Path, paragraphs: int, name: str, ray: str | None, workers: int, tmp: Path) -> dict:
    from spokenqa.corpus.synthesize import synthesize_squad

    out = tmp / f"{name}.jsonl"
    t0 = time.perf_counter()
    stats = synthesize_squad(
        squad, out, workers=workers, max_paragraphs=paragraphs, seed=42, progress=False, ray=ray
    )
    total = time.perf_counter() - t0
    if stats.failed:
        raise SystemExit(f"{name}: {stats.failed} paragraph(s) failed")
    n = stats.written
    return {
        "config": name,
        "workers": workers,
        "paragraphs": n,
        "wall_s": round(stats.wall_s, 2),
        "startup_s": round(stats.startup_s, 2),
        "total_s": round(total, 2),  # the call as a whole: loading the input, start-up, shutdown
        "paragraphs_per_s": round(n / stats.wall_s, 4),
        "worker_s_per_paragraph": round((stats.tts_s + stats.asr_s) / n, 2),
        "audio_h": round(stats.audio_s / 3600, 3),
        "ran_on": stats.ran_on,
        "transcripts_sha256": transcripts_sha(out),
    }


def summarize(rows: list[dict]) -> dict:
    by = {r["config"]: r for r in rows}
    local_per_para = by["local-1"]["wall_s"] / by["local-1"]["paragraphs"]
    overhead = by["ray-1"]["wall_s"] / by["local-1"]["wall_s"] - 1
    per_para = local_per_para * (1 + max(0.0, overhead))
    return {
        "ray_overhead_1_worker": round(overhead, 4),
        "ray_startup_s": by["ray-1"]["startup_s"],
        "speedup_2_workers": {
            "local": round(by["local-1"]["wall_s"] / by["local-2"]["wall_s"], 3),
            "ray": round(by["ray-1"]["wall_s"] / by["ray-2"]["wall_s"], 3),
        },
        "same_transcripts": len({r["transcripts_sha256"] for r in rows}) == 1,
        "core_s_per_paragraph": round(per_para, 2),
        "projection_squad_train_hours": {
            str(n): round(SQUAD_TRAIN_PARAGRAPHS * per_para / n / 3600, 2) for n in PROJECT_CORES
        },
    }


def table(rows: list[dict], summary: dict) -> str:
    lines = [
        "| config | paragraphs | wall s | Ray start-up s | paragraphs/s | worker TTS+ASR s per paragraph |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['paragraphs']} | {r['wall_s']} | {r['startup_s'] or '-'} | "
            f"{r['paragraphs_per_s']} | {r['worker_s_per_paragraph']} |"
        )
    proj = summary["projection_squad_train_hours"]
    lines += [
        "",
        (
            f"Ray overhead at one worker: {100 * summary['ray_overhead_1_worker']:.1f}% of the "
            f"wall time (start-up apart: {summary['ray_startup_s']} s); 2 workers: "
            f"{summary['speedup_2_workers']['local']}x (local), "
            f"{summary['speedup_2_workers']['ray']}x (Ray); same transcripts everywhere: "
            f"{summary['same_transcripts']}."
        ),
        "",
        f"All {SQUAD_TRAIN_PARAGRAPHS:,} SQuAD train paragraphs at "
        f"{summary['core_s_per_paragraph']} core-s each: "
        + ", ".join(f"{n} cores {h} h" for n, h in proj.items()),
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--squad", type=Path, default=squad_train(), help="SQuAD v1.1 JSON (default: shared train)"
    )
    ap.add_argument(
        "--paragraphs", type=int, default=40, help="paragraphs per configuration (default 40)"
    )
    ap.add_argument("--out", type=Path, default=OUT / "ray_bench.json")
    args = ap.parse_args()
    if args.paragraphs < 2:
        raise SystemExit("--paragraphs must be at least 2 (one per worker)")
    import ray

    info = {**machine(), "ray": ray.__version__, "busy_before": busy_processes()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        for name, ray, workers in CONFIGS:
            print(f"{name}: {args.paragraphs} paragraphs ...", file=sys.stderr, flush=True)
            rows.append(run(args.squad, args.paragraphs, name, ray, workers, Path(tmp)))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    summary = summarize(rows)
    info["loadavg_after"] = machine()["loadavg"]
    info["busy_after"] = busy_processes()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": info,
                "args": {"paragraphs": args.paragraphs, "squad": str(args.squad)},
                "rows": rows,
                "summary": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(table(rows, summary))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
