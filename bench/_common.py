"""Shared helpers of the bench/ scripts (main venv side: spokenqa importable).

Nothing here imports torch or transformers at module level, so `bench/hf_worker.py` (run by the
transformers-4.57 venv) can stay independent of it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
HF_PYTHON_DEFAULT = REPO / ".venv-hf457" / "bin" / "python"
DONE_FLAG = REPO / "runs" / "experiments.done"


def data_root() -> Path:
    """$SPOKENQA_DATA, default ../shared/data beside the repo."""
    return Path(os.environ.get("SPOKENQA_DATA", REPO.parent / "shared" / "data"))


def spoken_test() -> Path:
    return data_root() / "spoken-squad" / "spoken_test-v1.1.json"


def squad_train() -> Path:
    return data_root() / "squad" / "train-v1.1.json"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    """What the numbers were measured on, and how busy the machine was."""
    info = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "experiments_done_flag": DONE_FLAG.exists(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["amx_bf16"] = "amx_bf16" in flags
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["mem_gib"] = round(int(mem) / 2**20, 1)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def busy_processes(limit: int = 5) -> list[str]:
    """The processes using the most CPU right now (ps), minus ourselves: the load while measuring."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines()[1:]
    except (OSError, subprocess.TimeoutExpired):
        return []
    mine = {str(os.getpid()), str(os.getppid())}
    rows = [line.strip()[:160] for line in out if line.split()[0] not in mine and "ps -eo" not in line]
    return rows[:limit]


def hf_python(given: str | None) -> str:
    path = Path(given) if given else HF_PYTHON_DEFAULT
    if not Path(path).exists():
        raise SystemExit(f"{path}: no such interpreter; run bench/setup_hf457.sh first (or pass --hf-python)")
    return str(path)


def run_json(cmd: list[str], env: dict | None = None, timeout: float | None = None) -> dict:
    """Run a worker that prints one JSON line last on stdout; stderr passes through."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"worker printed no JSON: {' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}")
    result = json.loads(lines[-1])
    result.setdefault("process_wall_s", time.perf_counter() - t0)
    return result


def checkpoint_for(arg: str | None, quick_steps: int = 150) -> Path:
    """The checkpoint a benchmark measures: --checkpoint if given, else the model shipped with
    spokenqa (what users get), else a small one trained here on text SQuAD (a checkout without
    the weights), so every benchmark runs on a fresh clone."""
    if arg:
        return Path(arg)
    from spokenqa.checkpoint import RELEASE_MODEL

    if (RELEASE_MODEL / "model.safetensors").is_file():
        return RELEASE_MODEL
    out = OUT / "quick_ckpt"
    if not (out / "last" / "spokenqa.json").is_file():
        from spokenqa.config import preset
        from spokenqa.train import train

        print(f"[bench] no shipped model: training a quick {quick_steps}-step checkpoint", file=sys.stderr)
        train(preset("cpu").replace(train_files=[str(squad_train())], out_dir=str(out),
                                    max_train_examples=quick_steps * 32, max_steps=quick_steps, epochs=1,
                                    checkpoint_every=0))
    return out / "last"


def examples_to_rows(examples) -> list[dict]:
    """spokenqa Examples -> the flat rows of the Hugging Face SQuAD dataset."""
    return [
        {
            "id": e.id,
            "title": e.title,
            "context": e.context,
            "question": e.question,
            "answers": {"text": [a.text for a in e.answers], "answer_start": [a.start for a in e.answers]},
        }
        for e in examples
    ]


def examples_to_squad(examples) -> dict:
    """spokenqa Examples -> a SQuAD v1.1 file (one paragraph per distinct context, order kept)."""
    paragraphs: dict[tuple[str, str], dict] = {}
    for e in examples:
        para = paragraphs.setdefault((e.title, e.context), {"context": e.context, "qas": []})
        para["qas"].append(
            {"id": e.id, "question": e.question, "answers": [{"text": a.text, "answer_start": a.start} for a in e.answers]}
        )
    articles: dict[str, dict] = {}
    for (title, _), para in paragraphs.items():
        articles.setdefault(title, {"title": title, "paragraphs": []})["paragraphs"].append(para)
    return {"version": "1.1", "data": list(articles.values())}


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def fmt(x, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def spread(values: list[float]) -> dict:
    """Median and min-max of N repeated runs: the numbers reported, never the best one alone."""
    import statistics

    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "runs": vals}


def fmt_spread(s: dict, digits: int = 1) -> str:
    """'12.3 (11.9-13.0, n=3)': the median with its range, as the tables print it."""
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}-{s['max']:,.{digits}f}, n={s['n']})"


def ratio_of_medians(a: dict, b: dict) -> str:
    """a's median over b's median (the ratio the docs quote)."""
    return f"{a['median'] / b['median']:.2f}x" if b["median"] else "-"

