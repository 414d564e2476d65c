"""The archive at scale (issue 19, item 5): an index of 100,000 passages or more, built from
spokenised SQuAD train paragraphs (copies of them with different simulated ASR noise, as
`spokenqa data spokenize --noise-rate 0.2 --seed S` writes them), and what it costs: build time,
file size by table, peak memory of the build and of a searching process, query latency p50/p95
for bm25/dense/hybrid, and a projection to 10 million passages from the measured per-passage
costs.

    python bench/archive_scale.py --out runs/archive-scale/scale.sqlite --passages 100000 \\
        --json runs/archive-scale/scale.json SPOKEN_TRAIN_S1.json SPOKEN_TRAIN_S2.json ...

The build goes through the same code as `spokenqa index build` (`index.Writer`, the shipped
encoder, `SQLiteStore`), documents taken in file order until --passages is reached. Encoding
100,000 passages takes about 70 CPU-minutes with the shipped encoder (~40 ms a passage on one
AVX2 core), so `--embed-sample N` encodes only N passages, spread evenly over the stream, and
gives the others random unit vectors: the index, its size and every search cost are then those
of a real one (exact search reads every vector whatever it holds; BM25 sees the real text), the
dense hits are not meaningful, and the encoding time of the whole build is the sample's CPU time
per passage times the passages (labelled "projected"). Without it the build is whole.

Searches run in a fresh process (`--search-only INDEX`), so its peak memory is what a searching
process needs (the encoder, the vector matrix), not the build's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import machine, percentiles

PROJECT_TO = 10_000_000


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries that
    over fork and exec, so a child started by a bigger parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SampledEncoder:
    """The real encoder on every `every`-th passage of the stream, random unit vectors for the
    rest (see the module docstring); counts the real passages and their CPU seconds."""

    def __init__(self, encoder, every: int, seed: int = 0) -> None:
        self.encoder, self.every = encoder, max(1, every)
        self.name, self.dim = encoder.name, encoder.dim
        self.rng = np.random.default_rng(seed)
        self.seen = self.real = 0
        self.cpu_s = self.wall_s = 0.0

    def encode(self, texts: list[str]) -> np.ndarray:
        picked = [i for i in range(len(texts)) if (self.seen + i) % self.every == 0]
        self.seen += len(texts)
        out = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        out = out.astype(np.float16)
        if picked:
            c, t = time.process_time(), time.perf_counter()
            out[picked] = self.encoder.encode([texts[i] for i in picked])
            self.cpu_s += time.process_time() - c
            self.wall_s += time.perf_counter() - t
            self.real += len(picked)
        return out


def read_documents(files: list[str], passages: int):
    """Whole documents (SQuAD paragraphs) in file order until `passages` passages."""
    from spokenqa.archive.index import read_squad_documents
    from spokenqa.archive.passages import cut_passages

    docs, total = [], 0
    for f in files:
        for doc in read_squad_documents(os.path.abspath(f)):
            if total >= passages:
                return docs, total
            docs.append(doc)
            total += len(cut_passages(doc.text))
    if total < passages:
        raise SystemExit(f"the inputs hold only {total:,} passages, fewer than --passages {passages:,}: "
                         "give more spokenised copies")
    return docs, total


def table_sizes(path: str) -> dict[str, int]:
    """Bytes per table and its indexes (SQLite's dbstat), FTS5's shadow tables together."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return {}
    finally:
        conn.close()
    out: dict[str, int] = {}
    for name, size in rows:
        key = "fts5" if name.startswith("passages_fts") else name
        key = {"sqlite_autoindex_documents_1": "indexes", "documents_source": "indexes",
               "sqlite_autoindex_passages_1": "indexes"}.get(key, key)
        out[key] = out.get(key, 0) + int(size)
    return out


def build(args) -> dict:
    from spokenqa.archive.embed import Encoder
    from spokenqa.archive.index import RunStats, Writer
    from spokenqa.archive.store import open_store

    t0 = time.perf_counter()
    docs, passages = read_documents(args.inputs, args.passages)
    read_s = time.perf_counter() - t0
    encoder = Encoder(threads=args.threads)
    sample = args.embed_sample or passages
    model = SampledEncoder(encoder, passages // sample) if sample < passages else encoder
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out}: exists; give a new path")
    writes = {"s": 0.0}
    t1, c1 = time.perf_counter(), time.process_time()
    store = open_store(args.out, create=True, encoder=encoder.name, encoder_dim=encoder.dim)
    put = store.put_documents

    def timed_put(items):
        t = time.perf_counter()
        try:
            return put(items)
        finally:
            writes["s"] += time.perf_counter() - t

    store.put_documents = timed_put
    stats = RunStats(args.out)
    with store:
        writer = Writer(store, model, stats)
        for doc in docs:
            writer.put(doc)
        writer.flush()
    wall = time.perf_counter() - t1
    out = {"documents": stats.added, "passages": stats.passages, "read_and_cut_s": read_s,
           "build_wall_s": wall, "build_cpu_s": time.process_time() - c1, "sqlite_writes_s": writes["s"],
           "build_peak_rss_mib": peak_rss_mib(), "file_bytes": os.path.getsize(args.out),
           "tables_bytes": table_sizes(args.out)}
    if model is not encoder:
        per = model.cpu_s / model.real
        out["embed"] = {"real_passages": model.real, "real_cpu_s": model.cpu_s, "real_wall_s": model.wall_s,
                        "cpu_s_per_passage": per,
                        "projected_full_encode_cpu_s": per * stats.passages,
                        "projected_build_cpu_s": out["build_cpu_s"] - model.cpu_s + per * stats.passages}
    return out


def questions(files: list[str], n: int, seed: int) -> list[str]:
    from spokenqa.files import read_json

    qs = [qa["question"] for f in files[:1] for art in read_json(f)["data"]
          for par in art["paragraphs"] for qa in par["qas"]]
    rng = np.random.default_rng(seed)
    return [qs[i] for i in rng.choice(len(qs), min(n, len(qs)), replace=False)]


def search_only(args) -> dict:
    """In a fresh process: load times, latency per mode, and the exact-search and BM25 parts."""
    from spokenqa.archive import retrieve
    from spokenqa.archive.embed import load_encoder
    from spokenqa.archive.store import open_store

    qs = questions(args.inputs, args.questions, args.seed)
    out: dict = {"questions": len(qs), "k": args.k}
    with open_store(args.search_only) as store:
        t = time.perf_counter()
        encoder = load_encoder(store.encoder)
        out["encoder_load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ids, _ = store.dense_matrix()
        out["matrix_load_s"] = time.perf_counter() - t
        out["passages"] = len(ids)
        retrieve.search(store, "warm up", k=1)
        for mode in retrieve.MODES:
            times = []
            for q in qs:
                t = time.perf_counter()
                retrieve.search(store, q, k=args.k, mode=mode, encoder=encoder)
                times.append(time.perf_counter() - t)
            out[mode] = percentiles(times) | {"p95_ms": 1e3 * float(np.percentile(times, 95))}
        vectors = [retrieve.question_vector(store, retrieve.spoken_question(q), encoder) for q in qs]
        times = []
        for v in vectors:
            t = time.perf_counter()
            store.nearest(v, retrieve.DEPTH)
            times.append(time.perf_counter() - t)
        out["exact_nearest"] = percentiles(times)
        times = []
        for q in qs:
            terms = retrieve.question_terms(q)
            t = time.perf_counter()
            retrieve.bm25_ranking(store, terms, retrieve.DEPTH)
            times.append(time.perf_counter() - t)
        out["bm25_query"] = percentiles(times)
        times = []
        for q in qs:
            t = time.perf_counter()
            retrieve.question_vector(store, retrieve.spoken_question(q), encoder)
            times.append(time.perf_counter() - t)
        out["question_encode"] = percentiles(times)
    out["search_peak_rss_mib"] = peak_rss_mib()
    return out


def projection(built: dict, searched: dict, dim: int = 384) -> dict:
    """Linear projections to PROJECT_TO passages from the per-passage costs measured."""
    n = built["passages"]
    scale = PROJECT_TO / n
    out = {"passages": PROJECT_TO, "file_gb": built["file_bytes"] * scale / 1e9,
           "tables_gb": {k: v * scale / 1e9 for k, v in built["tables_bytes"].items()},
           "matrix_float32_gib": PROJECT_TO * dim * 4 / 2**30,
           "matrix_load_s": searched["matrix_load_s"] * scale,
           "exact_search_ms": searched["exact_nearest"]["p50_ms"] * scale,
           "exact_search_us_per_1k_passages": searched["exact_nearest"]["p50_ms"] * 1e3 / n * 1e3,
           "bm25_ms_if_linear": searched["bm25_query"]["p50_ms"] * scale}
    embed = built.get("embed")
    per = embed["cpu_s_per_passage"] if embed else built["build_cpu_s"] / n
    out["encode_cpu_hours"] = per * PROJECT_TO / 3600
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="spokenised SQuAD-format files, used in order")
    p.add_argument("--out", required=True, help="the index to build (a new file)")
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--embed-sample", type=int, default=0, metavar="N",
                   help="encode only N passages for real (0: all; see the module docstring)")
    p.add_argument("--threads", type=int, default=None, help="encoder batches at once (default: cores)")
    p.add_argument("--questions", type=int, default=200, help="questions (from the first input) to time")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results here too")
    p.add_argument("--search-only", default=None, metavar="INDEX", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.search_only:
        print(json.dumps(search_only(args)))
        return
    result: dict = {"machine": machine(), "argv": sys.argv[1:]}
    result["build"] = build(args)
    print(json.dumps(result["build"], indent=1), file=sys.stderr, flush=True)
    child = subprocess.run([sys.executable, __file__, *args.inputs, "--out", args.out, "--search-only",
                            args.out, "--questions", str(args.questions), "--k", str(args.k),
                            "--seed", str(args.seed)], capture_output=True, text=True, check=False)
    if child.returncode:
        raise SystemExit(f"the search process failed:\n{child.stderr[-2000:]}")
    result["search"] = json.loads(child.stdout.strip().splitlines()[-1])
    result["projection"] = projection(result["build"], result["search"])
    result["machine_after"] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
