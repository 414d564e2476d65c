"""Where exact dense search stops scaling (issue 19): the archive's exact search
(`Store.nearest`: numpy einsum over a float32 matrix, then the top 100) against FAISS on the same
vectors, one thread each, one question at a time, as the archive asks:

- FAISS `IndexFlatIP` (exact, its own kernels);
- FAISS HNSW (`IndexHNSWFlat`, M=32, efConstruction 80, efSearch 64 and 128): build time, query
  time, and recall@10 against the exact top 10;
- FAISS IVF-Flat (nlist = 4 sqrt(n), trained on 20,000 vectors; nprobe 16).

Vectors: random unit vectors of 384 dimensions (the shipped encoder's), the questions too. Query
cost does not depend on what the vectors hold for the exact searches, nor much for HNSW; recall
does: random high-dimensional vectors are the hardest case for an approximate index (real
passage vectors cluster), so the recall here is a lower bound. FAISS is not a spokenqa dependency:

    pip install --target /tmp/faiss faiss-cpu
    PYTHONPATH=/tmp/faiss:src python bench/archive_ann.py --sizes 10000 100000 300000 1000000 \\
        --hnsw-max 300000 --json runs/archive-scale/ann.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, percentiles

DIM = 384
DEPTH = 100  # what retrieve asks Store.nearest for


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def timed(fn, queries: np.ndarray) -> tuple[dict, list]:
    out, times = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t)
    return percentiles(times), out


def recall_at_10(found: list, exact: list) -> float:
    return float(np.mean([len(set(f[:10]) & set(e[:10])) / 10 for f, e in zip(found, exact, strict=True)]))


def measure(n: int, args, rng: np.random.Generator) -> dict:
    import faiss

    from spokenqa.archive.store import Store

    base = unit(rng, n)
    ids = np.arange(n, dtype=np.int64)
    queries = unit(rng, args.queries)
    store = types.SimpleNamespace(dense_matrix=lambda: (ids, base))
    row: dict = {"passages": n, "matrix_mib": base.nbytes / 2**20}
    row["exact_numpy"], exact = timed(lambda q: [i for i, _ in Store.nearest(store, q, DEPTH)], queries)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    row["faiss_flat"], _ = timed(lambda q: flat.search(q[None], DEPTH)[1][0].tolist(), queries)
    flat.reset()  # frees its copy of the vectors
    if n <= args.hnsw_max:
        t = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.add(base)
        row["hnsw_build_s"] = time.perf_counter() - t
        for ef in (64, 128):
            hnsw.hnsw.efSearch = max(ef, DEPTH)
            stats, found = timed(lambda q: hnsw.search(q[None], DEPTH)[1][0].tolist(), queries)
            row[f"hnsw_ef{max(ef, DEPTH)}"] = stats | {"recall_at_10": recall_at_10(found, exact)}
        hnsw.reset()
    if n > args.ivf_max:
        return row
    nlist = int(4 * np.sqrt(n))
    t = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(base[rng.choice(n, min(n, 20_000), replace=False)])
    ivf.add(base)
    row["ivf_build_s"] = time.perf_counter() - t
    ivf.nprobe = 16
    stats, found = timed(lambda q: ivf.search(q[None], DEPTH)[1][0].tolist(), queries)
    row["ivf_nprobe16"] = stats | {"nlist": nlist, "recall_at_10": recall_at_10(found, exact)}
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000, 1_000_000])
    p.add_argument("--hnsw-max", type=int, default=300_000, help="largest size to build HNSW for")
    p.add_argument("--ivf-max", type=int, default=1_000_000, help="largest size to build IVF for")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    result = {"machine": machine(), "faiss": faiss.__version__, "rows": []}
    for n in args.sizes:
        result["rows"].append(measure(n, args, rng))
        print(json.dumps(result["rows"][-1]), file=sys.stderr, flush=True)
    result["loadavg_after"] = [round(x, 2) for x in __import__("os").getloadavg()]
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
