"""HTTP latency and a bounded load test of `spokenqa serve` on loopback.

    python bench/http_load.py --checkpoint runs/demo/best [--seconds 30] [--clients 16] [--calls 200]

Starts `spokenqa serve` in a subprocess on a free loopback port (or uses --url), then:
1. latency: after --warmup calls, --calls sequential POST /v1/answer (one question over a
   ~150-word transcript, top_k 1) on one keep-alive connection;
2. load: --clients concurrent clients (httpx async), each posting the same request back to back
   for --seconds; counts errors (non-200 or transport errors) and throughput.
Prints a table of p50/p90/p99/max (client-side wall time per request), plus what the server
reports: the model's time (`elapsed_ms`) and the time spent waiting for the model (`queued_ms`). Numbers depend on the machine and its load: record both.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

ROOT = C.REPO
SAMPLE = ROOT / "src" / "spokenqa" / "sample" / "sample_spoken.json"
QUESTION = "when was the harbor lighthouse built"


def transcript(words: int = 150) -> str:
    """About `words` words of Spoken-SQuAD style text: the sample's paragraphs, cut at a sentence."""
    data = json.loads(SAMPLE.read_text())
    sentences = [s.strip() for a in data["data"] for p in a["paragraphs"] for s in p["context"].split(". ")]
    out: list[str] = []
    for s in sentences:
        if len(" ".join(out).split()) >= words:
            break
        out.append(s.rstrip("."))
    return ". ".join(out) + "."


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "spokenqa", "serve", "--checkpoint", args.checkpoint, "--port", "0", "--quiet"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stdout.read()}")
    url = line.split(" at ")[1].split()[0].rstrip("/")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe from filling
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the server did not answer /health")
        time.sleep(0.2)


def stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {k: float("nan") for k in ("p50", "p90", "p99", "max", "mean")}
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "mean": float(a.mean())}


def sequential(url: str, body: dict, calls: int, warmup: int) -> dict:
    wall, model, queued, errors = [], [], [], 0
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(warmup):
            c.post("/v1/answer", json=body)
        t_start = time.perf_counter()
        for _ in range(calls):
            t0 = time.perf_counter()
            try:
                r = c.post("/v1/answer", json=body)
            except httpx.HTTPError:
                errors += 1
                continue
            wall.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors += 1
            else:
                model.append(r.json()["elapsed_ms"])
                queued.append(r.json()["queued_ms"])
        total = time.perf_counter() - t_start
    return {"requests": calls, "errors": errors, "seconds": total, "rps": len(wall) / total,
            "wall": stats(wall), "model": stats(model), "queued": stats(queued)}


async def load(url: str, body: dict, clients: int, seconds: float) -> dict:
    wall: list[float] = []
    model: list[float] = []
    queued: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        deadline = time.perf_counter() + seconds

        async def one_client():
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/answer", json=body)
                except httpx.HTTPError as e:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                    continue
                wall.append((time.perf_counter() - t0) * 1000)
                if r.status_code == 200:
                    model.append(r.json()["elapsed_ms"])
                    queued.append(r.json()["queued_ms"])
                else:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

        t_start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        total = time.perf_counter() - t_start
    done = len(wall) + sum(v for k, v in errors.items() if not k.isdigit())
    return {"requests": done, "errors": sum(errors.values()), "error_kinds": errors, "seconds": total,
            "rps": len(model) / total, "wall": stats(wall), "model": stats(model), "queued": stats(queued)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, metavar="DIR")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the load test (default 30)")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients in the load test (default 16)")
    p.add_argument("--calls", type=int, default=200, help="sequential calls for the latency test (default 200)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, help="torch threads of the server (default: torch's)")
    p.add_argument("--url", help="use a running server instead of starting one")
    p.add_argument("--json", metavar="FILE", help="also write the results here")
    args = p.parse_args(argv)

    context = transcript()
    body = {"context": context, "questions": [QUESTION], "top_k": 1}
    proc = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        proc, url = start_server(args)
    try:
        health = httpx.get(url + "/health", timeout=10).json()
        load_before = os.getloadavg()
        seq = sequential(url, body, args.calls, args.warmup)
        conc = asyncio.run(load(url, body, args.clients, args.seconds))
        answer = httpx.post(url + "/v1/answer", json=body, timeout=60).json()["results"][0]["answers"][0]["text"]
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    info = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "checkpoint": args.checkpoint if not args.url else health.get("checkpoint"),
        "model": health.get("model"), "device": health.get("device"),
        "cpus": os.cpu_count(), "load_average_1m_before": round(load_before[0], 2),
        "python": platform.python_version(), "context_words": len(context.split()), "question": QUESTION,
        "answer": answer,
    }
    print("# spokenqa HTTP benchmark")
    for k, v in info.items():
        print(f"{k}: {v}")
    print()
    print("| test | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | model p50 ms | queued p50 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in ((f"sequential, {args.calls} calls", seq), (f"{args.clients} clients, {args.seconds:g} s", conc)):
        w = r["wall"]
        print(f"| {name} | {r['requests']} | {r['errors']} | {r['rps']:.1f} | {w['p50']:.1f} | {w['p90']:.1f} "
              f"| {w['p99']:.1f} | {w['max']:.1f} | {r['model']['p50']:.1f} | {r['queued']['p50']:.1f} |")
    if conc.get("error_kinds"):
        print(f"\nerrors under load: {conc['error_kinds']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "sequential": seq, "load": conc}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
