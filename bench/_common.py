"""Shared helpers of the bench/ scripts: paths, the machine, timing, the latency texts, checkpoints.

Nothing here imports torch, transformers or spokenqa at module level, so `bench/hf_worker.py`
(run by the transformers-4.57 venv, which has no spokenqa) can use the timing helpers too; the
helpers that need spokenqa import it when called.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
HF_PYTHON_DEFAULT = REPO / ".venv-hf457" / "bin" / "python"
DONE_FLAG = REPO / "runs" / "experiments.done"
FIRST_CALL = ("what is it", "it is a test")  # (question, context) of the first call after a load


def data_root() -> Path:
    """$SPOKENQA_DATA, default ../shared/data beside the repo."""
    return Path(os.environ.get("SPOKENQA_DATA", REPO.parent / "shared" / "data"))


def spoken_test() -> Path:
    return data_root() / "spoken-squad" / "spoken_test-v1.1.json"


def squad_train() -> Path:
    return data_root() / "squad" / "train-v1.1.json"


# --- the machine --------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_flags() -> set[str]:
    """The CPU's feature flags (`spokenqa.runinfo.cpu_flags`): the vector extensions the numbers
    depend on, VNNI included, which `spokenqa.runinfo.cpu_model()` does not name."""
    from spokenqa.runinfo import cpu_flags

    return cpu_flags()


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
        from spokenqa.runinfo import cpu_model

        info["cpu"] = cpu_model()
        flags = cpu_flags()
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["amx_bf16"] = "amx_bf16" in flags
    except ImportError:
        pass
    info["as_cpu"] = os.environ.get("SPOKENQA_AS_CPU")  # bench/as_cpu.py: another CPU kind's code paths
    info["onednn_max_cpu_isa"] = os.environ.get("ONEDNN_MAX_CPU_ISA")
    try:
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


def use_threads(threads: int | None) -> list[str]:
    """--threads: sets torch's intra-op threads here (when given) and returns the flags that pass
    the same number on to a worker ([] when not given: torch's default everywhere)."""
    if not threads:
        return []
    import torch

    torch.set_num_threads(threads)
    return ["--threads", str(threads)]


# --- workers ------------------------------------------------------------------------------------


def hf_python(given: str | None) -> str:
    path = Path(given) if given else HF_PYTHON_DEFAULT
    if not Path(path).exists():
        raise SystemExit(f"{path}: no such interpreter; run bench/setup_hf457.sh first (or pass --hf-python)")
    return str(path)


def emit(obj: dict) -> None:
    """A worker's result: one JSON line, last on stdout (what `run_json` reads)."""
    sys.stdout.flush()
    print(json.dumps(obj), flush=True)


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


# --- timing -------------------------------------------------------------------------------------


class Clock:
    """Wall and CPU seconds since it was made: CPU of this process, or with `children=True` the
    user + system time of the child processes that finished meanwhile."""

    def __init__(self, children: bool = False) -> None:
        self.children = children
        self.t_wall, self.t_cpu = time.perf_counter(), self._cpu()

    def _cpu(self) -> float:
        if self.children:
            r = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r.ru_utime + r.ru_stime
        return time.process_time()

    @property
    def wall(self) -> float:
        return time.perf_counter() - self.t_wall

    @property
    def cpu(self) -> float:
        return self._cpu() - self.t_cpu


def call_times(fn: Callable[[], Any], warmup: int, calls: int) -> list[float]:
    """Seconds of each of `calls` calls of fn, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def percentiles(times: list[float]) -> dict:
    """p50/p90/p99 and mean of call times, in ms (nearest rank)."""
    times = sorted(times)
    pick = lambda q: times[min(len(times) - 1, round(q * (len(times) - 1)))]
    return {"p50_ms": 1e3 * pick(0.5), "p90_ms": 1e3 * pick(0.9), "p99_ms": 1e3 * pick(0.99),
            "mean_ms": 1e3 * statistics.fmean(times), "calls": len(times)}


def time_calls(fn: Callable[[], Any], warmup: int, calls: int) -> dict:
    """Latency of fn: percentiles of `calls` calls after `warmup` untimed ones."""
    return percentiles(call_times(fn, warmup, calls))


def median_call(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of `repeats` calls of fn (no warm-up: the caller's)."""
    return statistics.median(call_times(fn, 0, repeats))


def load_times(import_it: Callable[[], Any], load: Callable[[Any], Any], first_call: Callable[[Any], Any]) -> tuple[dict, Any]:
    """What a fresh process pays before its first answer: seconds of importing the library
    (import_it() returns what load needs), loading the model (load(that) returns the model) and
    its first call (first_call(model)). Returns ({import_s, load_s, first_call_s}, the model)."""
    t0 = time.perf_counter()
    lib = import_it()
    t1 = time.perf_counter()
    model = load(lib)
    t2 = time.perf_counter()
    first_call(model)
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2}, model


def median_load_times(runs: list[dict]) -> dict:
    """The median of each of `load_times`' numbers over fresh-process runs."""
    return {k: statistics.median(r[k] for r in runs) for k in ("import_s", "load_s", "first_call_s")}


def interleaved(repeats: int, sides: Iterable[str], tag: str) -> Iterator[tuple[int, str]]:
    """(round, side) for `repeats` rounds of every side once (A B A B ...), so that a change of
    load during the sitting hits every side alike; says `[tag] side run i/n ...` on stderr first."""
    sides = list(sides)
    for rep in range(repeats):
        for side in sides:
            print(f"[{tag}] {side} run {rep + 1}/{repeats} ...", file=sys.stderr, flush=True)
            yield rep, side


def spread(values: list[float]) -> dict:
    """Median and min-max of N repeated runs: the numbers reported, never the best one alone."""
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "runs": vals}


def fmt_spread(s: dict, digits: int = 1) -> str:
    """'12.3 (11.9-13.0, n=3)': the median with its range, as the tables print it."""
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}-{s['max']:,.{digits}f}, n={s['n']})"


def ratio_of_medians(a: dict, b: dict) -> str:
    """a's median over b's median (the ratio the docs quote)."""
    return f"{a['median'] / b['median']:.2f}x" if b["median"] else "-"


class StepLog:
    """A training run, step by step, as both training workers record it: when each step's batch
    started, when its optimizer step ended, its windows, real and padded tokens, and its loss."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.marks: list[float] = []
        self.windows: list[int] = []
        self.tokens: list[int] = []
        self.padded: list[int] = []
        self.losses: list[float] = []

    def begin(self) -> None:
        self.starts.append(time.perf_counter())

    def batch(self, batch) -> None:
        """The step's collated batch (input_ids, attention_mask)."""
        self.windows.append(int(batch["input_ids"].shape[0]))
        self.tokens.append(int(batch["attention_mask"].sum()))
        self.padded.append(int(batch["input_ids"].numel()))

    def loss(self, value: float) -> None:
        self.losses.append(value)

    def end(self) -> None:
        self.marks.append(time.perf_counter())

    def record(self, step) -> None:
        """One step as `spokenqa.train.train(on_step=...)` reports it (a `StepRecord`)."""
        self.starts.append(step.started)
        self.marks.append(step.ended)
        self.windows.append(step.windows)
        self.tokens.append(step.tokens)
        self.padded.append(step.padded_tokens)
        self.losses.append(step.loss)

    def summary(self, warmup_steps: int) -> dict:
        """Throughput over the timed steps: from the end of optimizer step `warmup_steps` (0: from
        the first step's start) to the end of the last one."""
        w, marks, losses = warmup_steps, self.marks, self.losses
        timed = slice(w, len(marks))
        seconds = marks[-1] - (marks[w - 1] if w else self.starts[0])
        return {
            "steps": len(marks),
            "timed_steps": len(marks) - w,
            "timed_seconds": seconds,
            "windows": sum(self.windows[timed]),
            "tokens_nonpad": sum(self.tokens[timed]),
            "tokens_padded": sum(self.padded[timed]),
            "windows_per_s": sum(self.windows[timed]) / seconds,
            "tokens_per_s": sum(self.tokens[timed]) / seconds,
            "loss_timed_mean": statistics.fmean(losses[timed]) if losses[timed] else None,
            "loss_last10_mean": statistics.fmean(losses[-10:]) if losses else None,
            "losses": losses,
        }


# --- checkpoints --------------------------------------------------------------------------------


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


def fresh_checkpoint(checkpoint: Path, root: Path, name: str = "checkpoint") -> Path:
    """A copy of `checkpoint` as root/name without its ONNX graph cache or training state: a
    first use, with no cache shared between runs, and the checkpoint itself left alone."""
    target = Path(root) / name
    shutil.copytree(checkpoint, target, ignore=shutil.ignore_patterns("onnx", "training_state.pt"))
    return target


# --- texts and data -----------------------------------------------------------------------------


def transcript_150(examples, words: int = 150):
    """The transcript of the single-question latency: the first `words` words of the first test
    context that long, and the first of its questions answered inside them (context, example)."""
    for e in examples:
        cut = e.context.split()
        if len(cut) >= words:
            ctx = " ".join(cut[:words])
            inside = [x for x in examples if x.context == e.context and x.answers and
                      x.answers[0].start + len(x.answers[0].text) <= len(ctx)]
            if inside:
                return ctx, inside[0]
    raise SystemExit(f"no test context of {words} words with an answer inside them")


def latency_texts(test_file: Path, tokenizer, cfg, n_questions: int = 64) -> dict:
    """The 150-word transcript and its question, 64 questions, contexts of 1, 2 and 4 windows."""
    from spokenqa.data import Example, load_squad
    from spokenqa.features import prepare_eval_features

    examples, _ = load_squad(test_file, lowercase=cfg.lowercase)
    ctx150, example = transcript_150(examples)
    question = example.question
    questions = []
    for e in examples:
        if e.question not in questions:
            questions.append(e.question)
        if len(questions) == n_questions:
            break
    seen, pool = set(), []
    for e in examples:
        if e.context not in seen:
            seen.add(e.context)
            pool += e.context.split()
        if len(pool) > 5000:
            break

    def windows(n_words: int) -> int:
        feats, _ = prepare_eval_features([Example("x", "", " ".join(pool[:n_words]), question, ())], tokenizer, cfg)
        return len(feats)

    contexts = []
    for k in (1, 2, 4):  # the most words that still give k windows
        lo, hi = 1, len(pool)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if windows(mid) <= k:
                lo = mid
            else:
                hi = mid - 1
        contexts.append({"windows": windows(lo), "words": lo, "context": " ".join(pool[:lo])})
    first = prepare_eval_features([Example("x", "", ctx150, question, ())], tokenizer, cfg)[0]
    return {"context": ctx150, "question": question, "answer": example.answers[0].text, "questions": questions,
            "contexts": contexts, "tokens_150": len(first.input_ids[0]), "windows_150": len(first)}


def read_paragraphs(jsonl: Path, limit: int | None = None) -> list[dict]:
    """The rows of a `spokenqa synthesize` JSONL in speaking order (`order`), the first `limit`."""
    rows = [json.loads(x) for x in Path(jsonl).read_text().splitlines() if x.strip()]
    rows.sort(key=lambda r: r["order"])
    return rows[:limit] if limit else rows


def paragraph_stem(row: dict) -> str:
    """AAA_PPP: the article and paragraph index, as the audio files of a paragraph are named."""
    return f"{row['article_index']:03d}_{row['paragraph_index']:03d}"


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


# --- output -------------------------------------------------------------------------------------


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
