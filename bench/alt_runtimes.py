"""Issue 22: other CPU runtimes for the same forward pass, against what `auto` runs without bf16.

Is there a faster way to run the shipped reader on a CPU without native bf16 than spokenqa's
ONNX Runtime int8 graph? Forward passes alone, one thread (each of spokenqa's two CPU streams
runs one), over the windows of the first --questions Spoken-SQuAD test questions, batched as
`spokenqa evaluate` batches them (--batch-size, longest first, padded to the batch's longest);
--rounds interleaved rounds, CPU time of the process, median and range. Variants, all built from
the checkpoint's cached graphs (spokenqa.backends.ort, built on first use):

- ort int8: spokenqa's int8 graph, what `auto` runs on a CPU without bf16;
- ort fp32: spokenqa's fused fp32 graph (`--backend onnx`);
- ort nbits8 / nbits4: the fused fp32 graph's Linear layers (the span head and the fused
  attention's q/k/v kept) as ONNX Runtime's MatMulNBits, symmetric 8-bit weights in blocks of 128
  or 4-bit in blocks of 32, accuracy level 4 (activations quantised to int8 per block);
- ov fp32: OpenVINO on the exported graph, fp32 inference precision;
- ov int8 weights + dq: NNCF int8 weight compression, OpenVINO's dynamic quantisation of the
  activations (groups of 32);
- ov int8 static: NNCF post-training quantisation (transformer preset), calibrated on the windows
  of the first --questions validation questions (--calibration), never on the test set.

Accuracy is checked against ort fp32 on every window: largest start-logit difference and how
often the argmax start and end agree (the answers' F1 is `spokenqa evaluate`'s job). OpenVINO and
NNCF are not spokenqa dependencies: `pip install openvino nncf` first, or their rows are skipped.

    python bench/alt_runtimes.py --rounds 5                    # this CPU's own code paths
    python bench/as_cpu.py avx2 -- python bench/alt_runtimes.py --rounds 5   # its AVX2 paths
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

if TYPE_CHECKING:
    import numpy as np

Batch = dict[str, "np.ndarray"]


def window_batches(path: Path, questions: int, batch_size: int, tokenizer, cfg) -> list[Batch]:
    """The collated batches `spokenqa evaluate` would run for the first `questions` of `path`."""
    from spokenqa.data import load_squad
    from spokenqa.features import collate, length_grouped_batches, prepare_eval_features

    examples, _ = load_squad(path, max_questions=questions)
    feats, _ = prepare_eval_features(examples, tokenizer, cfg)
    order = length_grouped_batches(feats.lengths(), batch_size, seed=None, group=True)
    return [{k: v.numpy() for k, v in collate(feats, b, tokenizer.pad_token_id, labels=False).items()}
            for b in order]


def source(graph) -> str | bytes:
    """What ONNX Runtime and onnx.load take: an OnnxModel's graph is a cached file's Path, or the
    serialised graph itself where the cache could not be written; a ModelProto is serialised."""
    if isinstance(graph, Path):
        return str(graph)
    return graph if isinstance(graph, bytes | str) else graph.SerializeToString()


def ort_runner(graph) -> Callable[[Batch], list]:
    """One single-threaded ONNX Runtime session, with the options spokenqa's backend uses."""
    from spokenqa.backends.ort import _session

    session = _session(source(graph), 1)
    names = [i.name for i in session.get_inputs()]
    return lambda b: session.run(None, {n: b[n] for n in names})


def op_shares(graph: str | bytes, batches: list[Batch]) -> dict[str, float]:
    """Share of kernel time per operator type (ONNX Runtime's profiler, one thread, the session
    spokenqa's backend makes) over `batches`: where the time of `graph` goes, after ONNX Runtime's
    own load-time fusions."""
    import collections
    import json

    from spokenqa.backends.ort import _session

    with tempfile.TemporaryDirectory(prefix="spokenqa-profile-") as tmp:
        session = _session(graph, 1, profile=str(Path(tmp) / "profile"))
        names = [i.name for i in session.get_inputs()]
        for b in batches:
            session.run(None, {n: b[n] for n in names})
        events = json.loads(Path(session.end_profiling()).read_text())
    micros: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            micros[e["args"]["op_name"]] += e["dur"]
    total = sum(micros.values())
    return {op: us / total for op, us in micros.most_common()}


def nbits(fp32_graph: str | bytes, bits: int, block: int):
    """The fused fp32 graph with its Linear layers (not the span head) as MatMulNBits."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from spokenqa.backends.ort import _int8_plan

    proto = onnx.load_from_string(fp32_graph) if isinstance(fp32_graph, bytes) else onnx.load(fp32_graph)
    head, _ = _int8_plan(proto)  # the span head, as spokenqa's int8 graph keeps it fp32
    quantizer = MatMulNBitsQuantizer(proto, bits=bits, block_size=block, is_symmetric=True, accuracy_level=4,
                                     nodes_to_exclude=head)
    quantizer.process()
    return quantizer.model.model


def ov_runner(model, **config) -> Callable[[Batch], list]:
    """One OpenVINO CPU request, one thread, fp32 inference precision (OpenVINO would pick bf16 on
    a CPU with it, which is not what this compares)."""
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
                                                      "INFERENCE_PRECISION_HINT": "f32", **config})
    names = [i.get_any_name() for i in compiled.inputs]
    request = compiled.create_infer_request()
    return lambda b: [v.copy() for v in request.infer({n: b[n] for n in names}).values()]


def variants(checkpoint: Path, head: str, graphs: dict[str, str | bytes],
             calibration: list[Batch]) -> dict[str, Callable[[], Callable]]:
    """label -> builder of a runner, from spokenqa's int8 and fp32 `graphs` of `checkpoint` and its
    exported graph; OpenVINO's rows only where openvino and nncf are installed."""
    from spokenqa.backends.ort import _exported, cache_folder, graph_key

    out: dict[str, Callable[[], Callable]] = {
        "ort int8": lambda: ort_runner(graphs["int8"]),
        "ort fp32": lambda: ort_runner(graphs["fp32"]),
        "ort nbits8 (block 128)": lambda: ort_runner(nbits(graphs["fp32"], 8, 128)),
        "ort nbits4 (block 32)": lambda: ort_runner(nbits(graphs["fp32"], 4, 32)),
    }
    if importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None:
        print("openvino or nncf not installed: OpenVINO rows skipped (pip install openvino nncf)", file=sys.stderr)
        return out

    exported = _exported(checkpoint, cache_folder(checkpoint), graph_key(checkpoint, head)).SerializeToString()

    def ov_model():
        import io

        import openvino as ov

        return ov.convert_model(io.BytesIO(exported))  # the exporter's graph: no ONNX Runtime contrib ops

    def ov_wc8():
        import nncf

        return ov_runner(nncf.compress_weights(ov_model(), mode=nncf.CompressWeightsMode.INT8_ASYM),
                         DYNAMIC_QUANTIZATION_GROUP_SIZE=32)

    def ov_static():
        import nncf

        model = nncf.quantize(ov_model(), nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(calibration))
        return ov_runner(model)

    out.update({"ov fp32": lambda: ov_runner(ov_model()), "ov int8 weights + dq": ov_wc8,
                "ov int8 static": ov_static})
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="default: the shipped model")
    p.add_argument("--questions", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calibration", default=str(C.REPO / "runs" / "data" / "synth_val.json"),
                   help="validation set whose windows calibrate the static int8 variant")
    p.add_argument("--profile", action="store_true", help="also print where ort int8's time goes, by operator")
    p.add_argument("--json", default=str(C.OUT / "alt_runtimes.json"))
    args = p.parse_args(argv)

    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from spokenqa.backends.ort import onnx_model
    from spokenqa.checkpoint import checkpoint_config, resolve_checkpoint

    torch.set_num_threads(1)
    checkpoint = Path(resolve_checkpoint(args.checkpoint))

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, use_fast=True)
    cfg = checkpoint_config(checkpoint).for_inference()
    batches = window_batches(C.spoken_test(), args.questions, args.batch_size, tokenizer, cfg)
    calibration = window_batches(Path(args.calibration), args.questions, args.batch_size, tokenizer, cfg)
    started = C.machine()
    graphs = {p: source(onnx_model(checkpoint, p, cfg.head).graph) for p in ("int8", "fp32")}  # built if missing
    runners = {}
    for label, build in variants(checkpoint, cfg.head, graphs, calibration).items():
        print(f"[alt_runtimes] building {label} ...", file=sys.stderr, flush=True)
        runners[label] = build()
    outputs = {label: [run(b) for b in batches] for label, run in runners.items()}
    ref = outputs["ort fp32"]
    rows = {}
    for label, outs in outputs.items():
        agree = [float(np.mean(o[k].argmax(-1) == r[k].argmax(-1))) for o, r in zip(outs, ref) for k in (0, 1)]
        rows[label] = {"max_start_logit_diff": max(float(np.abs(o[0] - r[0]).max()) for o, r in zip(outs, ref)),
                       "argmax_agree": statistics.mean(agree), "cpu_s": []}
    for _, label in C.interleaved(args.rounds, runners, "alt_runtimes"):
        t = time.process_time()
        for b in batches:
            runners[label](b)
        rows[label]["cpu_s"].append(time.process_time() - t)
    for row in rows.values():
        row["cpu_s"] = C.spread(row["cpu_s"])
    windows = sum(len(b["input_ids"]) for b in batches)
    base = rows["ort int8"]["cpu_s"]
    print(f"{windows} windows of the first {args.questions} test questions, batch {args.batch_size}, 1 thread; "
          f"{started['cpu']}" + (f", RUN AS {started['as_cpu']}" if started.get("as_cpu") else ""))
    print(C.table(["variant", "CPU s", "ort int8 / variant", "max |start logit diff| vs ort fp32",
                   "argmax agrees"],
                  [[label, C.fmt_spread(r["cpu_s"], 2), C.ratio_of_medians(base, r["cpu_s"]),
                    f"{r['max_start_logit_diff']:.3f}", f"{100 * r['argmax_agree']:.1f}%"] for label, r in rows.items()]))
    profile = None
    if args.profile:
        profile = op_shares(graphs["int8"], batches)
        print("ort int8, share of kernel time by operator: "
              + ", ".join(f"{op} {100 * share:.1f}%" for op, share in profile.items() if share >= 0.005))
    C.write_json(Path(args.json), {"machine": started, "machine_end": C.machine(), "args": vars(args),
                                   "windows": windows, "variants": rows, "ort_int8_profile": profile,
                                   "versions": {m: getattr(__import__(m), "__version__", None)
                                                for m in ("onnxruntime", "openvino", "nncf")
                                                if importlib.util.find_spec(m)}})


if __name__ == "__main__":
    main()
