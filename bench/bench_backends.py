"""Forward-pass backends for spokenqa inference on this CPU: what to keep.

The model alone (no tokenisation, no decoding), on (a) one window of the 150-word transcript
question (the interactive case) and (b) a batch of --batch Spoken-SQuAD windows of similar length
(the bulk case, as evaluate_examples batches them):

- torch fp32 (eager)
- torch bf16 autocast, weights cast at every call (spokenqa before)
- torch bf16 autocast, Linear weights kept in bf16 (QA.load now; bit-identical logits)
- ONNX Runtime fp32 and dynamic int8: spokenqa's ONNX backend as `--backend onnx [--quantize int8]`
  runs it (spokenqa.backends.ort: dynamo export, ORT graph optimisations on), first use from a
  copy of the checkpoint without a cache, so the one-off cost includes the export. ORT's CPU
  provider has no bf16 matrix kernels
- torch.compile (inductor, dynamic shapes, freezing) over bf16 autocast (--compile; slow to build)

Reported: median/min ms over --calls, the one-off cost (export, session, compile), and the largest
logit difference from torch fp32. Needs the onnx extra (onnx, onnxscript, onnxruntime).

    python bench/bench_backends.py --compile
"""

from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--calls", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--compile", action="store_true", help="also try torch.compile (minutes on 2 cores)")
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument("--json", default=str(C.OUT / "bench_backends.json"))
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from spokenqa.checkpoint import load_checkpoint
    from spokenqa.data import Example, load_squad
    from spokenqa.features import collate, length_grouped_batches, prepare_eval_features
    from spokenqa.inference import autocast, cpu_supports_bf16

    started = C.machine()
    checkpoint = C.checkpoint_for(args.checkpoint)
    model, tok, cfg = load_checkpoint(checkpoint)
    examples, _ = load_squad(C.spoken_test(), lowercase=True, max_questions=600)
    context, example = C.transcript_150(examples)
    single_feats, _ = prepare_eval_features([Example("x", "", context, example.question, ())], tok, cfg)
    single = collate(single_feats, [0], tok.pad_token_id, labels=False)
    feats, _ = prepare_eval_features(examples, tok, cfg)
    batches = length_grouped_batches(feats.lengths(), args.batch, seed=None, group=True)
    mid = batches[len(batches) // 2]  # a batch of typical length
    bulk = collate(feats, mid, tok.pad_token_id, labels=False)
    cases = {"single": single, "bulk": bulk}
    shapes = {k: list(v["input_ids"].shape) for k, v in cases.items()}
    cpu = torch.device("cpu")

    def timed(fn) -> dict:
        ts = C.call_times(fn, 3, args.calls)
        return {"median_ms": 1e3 * statistics.median(ts), "min_ms": 1e3 * min(ts)}

    def torch_runner(m, precision):
        def run(batch):
            with torch.inference_mode(), autocast(precision, cpu):
                s, _ = m(**batch)
            return s.float().numpy()
        return run

    precast = copy.deepcopy(model)
    for mod in precast.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.to(torch.bfloat16)
    runners = {"torch fp32": (torch_runner(model, "no"), 0.0)}
    if cpu_supports_bf16():  # without native bf16 these are emulated: slow and beside the point
        runners["torch bf16 autocast (cast per call, before)"] = (torch_runner(model, "bf16"), 0.0)
        runners["torch bf16, Linear weights kept in bf16 (QA.load now)"] = (torch_runner(precast, "bf16"), 0.0)
    if not args.no_onnx:
        import onnxruntime as ort

        from spokenqa.backends.ort import load_onnx

        fresh = C.fresh_checkpoint(checkpoint, tempfile.mkdtemp(prefix="bench_backends-"))  # no cache: first use
        for precision in ("fp32", "int8"):
            t0 = time.perf_counter()
            onnx_model, _, _ = load_onnx(fresh, precision)  # int8: quantised from the fp32 graph just made
            runners[f"ONNX Runtime {ort.__version__} {precision} (--backend onnx)"] = (
                lambda batch, m=onnx_model: m(batch)[0], time.perf_counter() - t0)
    if args.compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(copy.deepcopy(model), dynamic=True)
        run = torch_runner(compiled, "bf16")
        t0 = time.perf_counter()
        run(single)
        run(bulk)
        runners["torch.compile (inductor, freezing) bf16"] = (run, time.perf_counter() - t0)

    ref = {k: runners["torch fp32"][0](b) for k, b in cases.items()}
    results = []
    for name, (run, once) in runners.items():
        row = {"backend": name, "one_off_s": once}
        for k, b in cases.items():
            out = run(b)
            mask = b["attention_mask"].numpy().astype(bool)
            row[k] = timed(lambda b=b, run=run: run(b))
            row[k]["max_logit_diff_vs_fp32"] = float(np.abs(out - ref[k])[mask].max())
        results.append(row)
        print(f"[bench_backends] {name}: single {row['single']['median_ms']:.1f} ms, bulk {row['bulk']['median_ms']:.1f} ms",
              file=sys.stderr, flush=True)
    base = results[0]
    md = C.table(
        ["backend", f"1 window {shapes['single']} median ms", "vs fp32",
         f"batch {shapes['bulk']} median ms", "windows/s", "vs fp32", "one-off s", "max |logit diff| vs fp32"],
        [[r["backend"], r["single"]["median_ms"], f"{base['single']['median_ms'] / r['single']['median_ms']:.2f}x",
          r["bulk"]["median_ms"], 1e3 * shapes["bulk"][0] / r["bulk"]["median_ms"],
          f"{base['bulk']['median_ms'] / r['bulk']['median_ms']:.2f}x", f"{r['one_off_s']:.1f}",
          f"{max(r['single']['max_logit_diff_vs_fp32'], r['bulk']['max_logit_diff_vs_fp32']):.4f}"] for r in results])
    report = {"checkpoint": str(checkpoint), "machine_at_start": started, "machine_at_end": C.machine(),
              "busy_at_start": C.busy_processes(), "shapes": shapes, "threads": torch.get_num_threads(),
              "results": results, "table": md}
    C.write_json(Path(args.json), report)
    if not args.no_onnx:
        shutil.rmtree(fresh.parent, ignore_errors=True)
    print(f"\nbench_backends: threads {torch.get_num_threads()}, load average {started['loadavg']} -> "
          f"{report['machine_at_end']['loadavg']}\n")
    print(md)


if __name__ == "__main__":
    main()
