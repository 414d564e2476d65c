"""The ONNX Runtime backend: a checkpoint's forward pass as an ONNX graph, fp32 or dynamic int8.

Why: spokenqa's CPU speed comes from bf16, which most CPUs lack. There torch runs fp32; ONNX
Runtime runs the same forward pass with its fused transformer kernels (attention, bias + GELU),
and its dynamic int8 quantisation of the Linear layers is faster again, at an
accuracy cost measured in docs/BENCHMARKS.md. `spokenqa.backends` decides when it is used; this
module builds, caches and runs the graphs.

The graphs (inputs `input_ids`, `attention_mask`[, `token_type_ids`], int64, (batch, sequence);
outputs `start_logits`, `end_logits`, float32, padding set to the torch model's MASKED) start
from the `SpanQAModel` exported by torch's dynamo exporter with dynamic batch and sequence axes,
so length-grouped batches of any size and width run unchanged. Three graphs per checkpoint:
- `exported`: the exporter's graph, the source of the other two (plain ONNX ops);
- `fp32`: the exported graph with ONNX Script's ONNX Runtime fusions (`_fuse`);
- `int8`: the exported graph dynamically quantised (`_quantize`), then fused the same way; the
  span head stays fp32, and the first layers' feed-forward output projections are quantised per
  token (`_int8_plan`, `_per_token_int8`).
A fused graph is checked against its unfused source on a padded batch before it is kept; where the
fusions fail or change the logits (an encoder whose attention they misread), the unfused graph is
used instead, with a one-line notice. Fused graphs use ONNX Runtime's contrib ops (com.microsoft),
so they run in ONNX Runtime only.

The graphs are built on first use and cached:
- in `<checkpoint>/onnx/` where the checkpoint folder may be written;
- else (the shipped model, which is installed package data; a folder without write permission)
  in `$SPOKENQA_CACHE/onnx/<hash of the checkpoint's path>/` (`spokenqa.files.cache_dir`: default `~/.cache/spokenqa`).
Each graph file carries its key in its metadata: the SHA-256 of the weights, `config.json`, the
head and the versions of the packages that produce the graph. A graph whose key no longer matches
(stale) or that cannot be loaded (corrupt, truncated) is rebuilt with a one-line notice.
Graphs are written to a temporary file in the same folder, fsynced and renamed, so a reader sees
the old graph or the new one, never a partial one, even with two processes building at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from spokenqa.errors import ConfigError, notice
from spokenqa.files import atomic_write, cache_dir
from spokenqa.inference import ForwardPass

GRAPH_FORMAT = 4  # bump when the build changes (inputs, options, fusions): every cache is rebuilt
PRECISIONS = ("fp32", "int8")
EXPORTED = "exported"  # the cached graph the fp32 and int8 graphs are built from
OUTPUTS = ("start_logits", "end_logits")
# The graph's metadata entries: its key, which graph it is (EXPORTED or a precision), its fusions.
KEY, PRECISION, FUSED = "spokenqa.key", "spokenqa.precision", "spokenqa.fused"
# The packages whose versions change the graph: the model code, the exporter, the fusions, the quantiser.
GRAPH_PACKAGES = ("torch", "transformers", "onnx", "onnxscript", "onnx_ir", "onnxruntime")
# The fused ops that matter for speed, counted into FUSED (and checked by the tests).
FUSED_OPS = ("Attention", "MultiHeadAttention", "BiasGelu")
# ONNX Runtime fusions a session must not make when it loads a graph (see `_split_skip_layer_norm`).
SESSION_DISABLED = ["SkipLayerNormFusion"]
# The int8 graph quantises the feed-forward output projections of this many first layers per
# token (`_int8_plan`), with weights of PER_TOKEN_WEIGHT_BITS bits (`_per_token_int8`).
PER_TOKEN_FFN_OUT = 2
PER_TOKEN_WEIGHT_BITS = 7
# A fused graph is kept when its mean |logit error| against the exported fp32 graph is at most
# FUSED_ERROR_RATIO x its unfused source's + FUSED_ERROR_SLACK. fp32: the unfused graph's error is
# 0 and fusing only reorders sums (mean ~1e-6 measured). int8: attention summed in another order
# moves values across int8 rounding steps of the next layer's dynamically quantised input, so the
# fused graph differs from the unfused one by about as much as either differs from fp32 (mean
# 0.147 against 0.139 with the shipped model), not by a fixed amount. A misread padding mask or
# head layout moves logits by whole units.
FUSED_ERROR_RATIO, FUSED_ERROR_SLACK = 1.5, 1e-3


def _require(*packages: str) -> None:
    """A one-line error naming the first missing package of the ONNX extra."""
    for name in packages:
        try:
            __import__(name)
        except ImportError:
            raise ConfigError(f"the ONNX backend needs the {name} package: pip install 'spokenqa[onnx]' "
                              "(or use --backend torch)") from None


def _versions() -> dict[str, str]:
    found = {}
    for name in GRAPH_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def graph_key(checkpoint: Path, head: str) -> str:
    """What a cached graph must have been built from: the checkpoint's weights, encoder config and
    head, and the package versions (hashing ~90 MB of weights takes ~0.1 s)."""
    h = hashlib.sha256(json.dumps({"format": GRAPH_FORMAT, "head": head, "versions": _versions()},
                                  sort_keys=True).encode())
    for name in ("config.json", "model.safetensors"):
        with open(checkpoint / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _writable(folder: Path) -> bool:
    """Whether the cache may live in the checkpoint folder. Not in the shipped model (package
    data, which an editable install would otherwise grow by a graph), and not in a folder without
    write permission bits, even for root, who could write there anyway."""
    from spokenqa.checkpoint import RELEASE_MODEL

    if folder.resolve() == RELEASE_MODEL.resolve():
        return False
    return bool(folder.stat().st_mode & 0o222) and os.access(folder, os.W_OK)


def cache_folder(checkpoint: Path) -> Path:
    """Where the graphs of `checkpoint` live (see the module docstring)."""
    checkpoint = checkpoint.resolve()
    if _writable(checkpoint):
        return checkpoint / "onnx"
    return cache_dir("onnx", hashlib.sha256(str(checkpoint).encode()).hexdigest()[:16])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter and the quantiser print progress, warnings and log lines, some on stdout, which
    carries the command's result; their failures still raise."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _export(checkpoint: Path):
    """The checkpoint's fp32 forward pass as an onnx.ModelProto with dynamic batch and sequence."""
    _require("onnx", "onnxscript")
    from spokenqa.checkpoint import load_checkpoint

    model, tokenizer, _ = load_checkpoint(checkpoint)
    # Two windows of a few tokens: a batch or length of 1 would be specialised by the exporter.
    enc = tokenizer(["what is it"] * 2, ["it is the example of an export"] * 2, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]  # as collate gives them
    try:
        with _quiet():
            program = torch.onnx.export(
                model, tuple(enc[n] for n in names), input_names=names, output_names=list(OUTPUTS),
                dynamic_shapes=tuple({0: "batch", 1: "sequence"} for _ in names), dynamo=True,
                optimize=True, verbose=False,
            )
            return program.model_proto
    except Exception as e:  # the exporter fails in many ways; each is one line for the user
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"{checkpoint}: cannot export the model to ONNX ({type(e).__name__}: {first}); "
                          "use --backend torch") from e


def _int8_plan(proto) -> tuple[list[str], list[str]]:
    """(the MatMuls left fp32, the MatMuls quantised per token): the span head (weight h x 2), a
    negligible share of the work whose rounding would go straight into the logits, stays fp32;
    the feed-forward output projections (weight intermediate x h) of the first PER_TOKEN_FFN_OUT
    layers are quantised per token (`_per_token_int8`); every other MatMul with a weight gets
    `_quantize`'s dynamic int8 with one activation scale per batch.

    Why those two: the feed-forward output projection reads GELU's output, whose few large values
    would set the one uint8 scale of its whole batch, and the first layers' rounding travels
    through all the others (int8 weights in one group at a time: the feed-forward projections and
    layers 0-2 moved the logits most). Measured on the validation set (synth_val, 3,514
    questions, shipped model; docs/BENCHMARKS.md, "Fast on CPUs without bf16"), official F1
    against fp32 at batch 16 / 8 / 32: per-batch int8 there too -0.57 / -0.48 / -0.38 (AVX2);
    these two fp32 (the recipe of the second to fourth passes) -0.28 / -0.28 / -0.54 (AVX2), -0.17
    / -0.38 / -0.11 (VNNI); per token (this recipe, fifth pass) -0.21 / -0.52 / -0.38 (AVX2),
    -0.20 / -0.22 / -0.24 (VNNI): the same means, and ~3% less forward time on AVX2 code paths
    (BENCHMARKS.md, "Fifth pass")."""
    shapes = {t.name: tuple(t.dims) for t in proto.graph.initializer}
    weighted = [(n.name, shapes[n.input[1]]) for n in proto.graph.node
                if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2]
    head = [name for name, (_, out) in weighted if out == 2]
    ffn_out = [name for name, (into, out) in weighted if out != 2 and into > out]
    return head, ffn_out[:PER_TOKEN_FFN_OUT]


def _quantize(proto):
    """Dynamic int8 of the encoder's Linear layers: MatMuls with a weight, int8 weights per output
    channel, activations quantised per call to uint8 with one scale per batch; of `_int8_plan`'s,
    the head stays fp32 and the others are quantised per token (`_per_token_int8`).

    Applied to the exported graph, before the fusions: the fused graph packs the query, key and
    value projections into one Attention op, whose int8 form (QAttention) takes no attention bias,
    which is how this graph masks padding, so those three products would stay fp32 (measured
    ~9% slower). Quantised first, they run int8 and the fusions still make MultiHeadAttention."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, per_token = _int8_plan(proto)
    with tempfile.TemporaryDirectory(prefix="spokenqa-int8-") as tmp, _quiet():
        out = Path(tmp) / "int8.onnx"
        quantize_dynamic(proto, out, weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=fp32 + per_token)
        return _per_token_int8(onnx.load(out), per_token)


def _per_token_int8(proto, names: list[str]):
    """The fp32 MatMuls `names` (x @ W, x of shape (..., K)) as int8 products with one activation
    scale per token (row of x) instead of one per batch: each row quantised to uint8 around 128
    by its own max |x| / 127, W per output channel to PER_TOKEN_WEIGHT_BITS-bit integers.

    Why: one large GELU output sets the scale of a whole batch under per-batch quantisation; per
    row it only coarsens its own token. Why 7-bit weights: without VNNI (AVX2) ONNX Runtime
    multiplies uint8 by int8 with VPMADDUBSW, whose 16-bit sums of two products saturate at
    32,767; rows centred at 128 reach 255, and 255 x 64 x 2 fits where 255 x 127 x 2 does not
    (8-bit weights here: validation F1 -18.8). ONNX Runtime's integer products take one
    activation scale per call, so the rows' scales are applied after the product (a Mul). On
    AVX2 code paths the two blocks took 8.6% of the forward pass (1.9% the row scales and
    quantisation), the fp32 products they replace 11.7%."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = {t.name: t for t in proto.graph.initializer}
    limit = 2 ** (PER_TOKEN_WEIGHT_BITS - 1)
    nodes, added, replaced = [], [], set()

    def const(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(value, name))
        return name

    for n in proto.graph.node:
        if n.name not in names:
            nodes.append(n)
            continue
        (x, w), y, p = n.input, n.output[0], f"{n.name}/per_token"
        weight = numpy_helper.to_array(weights[w]).astype(np.float32)
        w_scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / limit
        w_int = np.clip(np.round(weight / w_scale), -limit, limit).astype(np.int8)
        K, N = weight.shape
        replaced.add(w)
        block = [
            helper.make_node("Reshape", [x, const(f"{p}/rows_shape", np.array([-1, K], np.int64))], [f"{p}/rows"]),
            helper.make_node("Abs", [f"{p}/rows"], [f"{p}/abs"]),
            helper.make_node("ReduceMax", [f"{p}/abs", const(f"{p}/axis", np.array([1], np.int64))], [f"{p}/max"],
                             keepdims=0),
            helper.make_node("Max", [f"{p}/max", const(f"{p}/tiny", np.array(1e-8, np.float32))], [f"{p}/max_pos"]),
            helper.make_node("Mul", [f"{p}/max_pos", const(f"{p}/inv127", np.array(1 / 127, np.float32))],
                             [f"{p}/scale"]),
            helper.make_node("Shape", [f"{p}/scale"], [f"{p}/n_rows"]),
            helper.make_node("Expand", [const(f"{p}/u128", np.array(128, np.uint8)), f"{p}/n_rows"], [f"{p}/zero"]),
            helper.make_node("QuantizeLinear", [f"{p}/rows", f"{p}/scale", f"{p}/zero"], [f"{p}/rows_u8"], axis=0),
            helper.make_node("MatMulInteger", [f"{p}/rows_u8", const(f"{p}/w", w_int),
                                               const(f"{p}/a_zero", np.array(128, np.uint8)),
                                               const(f"{p}/w_zero", np.zeros(N, np.int8))], [f"{p}/int"]),
            helper.make_node("Cast", [f"{p}/int"], [f"{p}/float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{p}/float", const(f"{p}/w_scale", w_scale.astype(np.float32))],
                             [f"{p}/by_w"]),
            helper.make_node("Unsqueeze", [f"{p}/scale", f"{p}/axis"], [f"{p}/scale_col"]),
            helper.make_node("Mul", [f"{p}/by_w", f"{p}/scale_col"], [f"{p}/out_rows"]),
            helper.make_node("Shape", [x], [f"{p}/lead"], end=-1),
            helper.make_node("Concat", [f"{p}/lead", const(f"{p}/n_out", np.array([N], np.int64))],
                             [f"{p}/out_shape"], axis=0),
            helper.make_node("Reshape", [f"{p}/out_rows", f"{p}/out_shape"], [y]),
        ]
        for i, node in enumerate(block):
            node.name = f"{p}/{i}"
        nodes += block
    still_read = {i for n in nodes for i in n.input}
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.graph.node[:], out.graph.initializer[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend([t for t in proto.graph.initializer if t.name not in replaced or t.name in still_read])
    out.graph.initializer.extend(added)
    return out


def _fuse(proto):
    """ONNX Script's ONNX Runtime fusions (`optimize_for_ort`): the dynamo exporter's attention
    (scaled dot-product attention spelt out in MatMul, Softmax, Where) becomes one Attention or
    MultiHeadAttention op, bias + GELU BiasGelu; then `_split_skip_layer_norm`.
    ONNX Runtime's own optimizer (`onnxruntime.transformers.optimizer`, model_type "bert") knows
    the TorchScript exporter's attention, not this graph's: it fuses no attention here."""
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    with _quiet():
        fused, _ = optimize_for_ort(ir.from_proto(proto))
        return _split_skip_layer_norm(ir.to_proto(fused))


def _split_skip_layer_norm(proto):
    """Each SkipLayerNormalization (residual + bias + LayerNorm in one op, which `optimize_for_ort`
    makes) back into Add and LayerNormalization. Why: on an AVX2 CPU ONNX Runtime's CPU kernel for
    it cost ~10% of the whole forward pass more than the two ops it replaces (fp32 and int8; ONNX
    Runtime's profiler gave it 12.7% of an int8 pass), so sessions also turn off ONNX Runtime's
    own fusion of it (SESSION_DISABLED)."""
    import onnx
    from onnx import helper

    nodes = []
    for n in proto.graph.node:
        if n.op_type != "SkipLayerNormalization":
            nodes.append(n)
            continue
        epsilon = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "epsilon"), 1e-12)
        x, skip, gamma, beta, bias = (list(n.input) + [""] * 5)[:5]
        total = f"{n.name}/sum"
        nodes.append(helper.make_node("Add", [x, skip], [total + "0" if bias else total], name=f"{n.name}/add"))
        if bias:
            nodes.append(helper.make_node("Add", [total + "0", bias], [total], name=f"{n.name}/bias"))
        if len(n.output) > 3 and n.output[3]:  # the residual sum itself, read by the next layer
            nodes.append(helper.make_node("Identity", [total], [n.output[3]], name=f"{n.name}/sum_out"))
        nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []),
                                      [n.output[0]], name=f"{n.name}/norm", axis=-1, epsilon=epsilon))
    split = onnx.ModelProto()
    split.CopyFrom(proto)
    del split.graph.node[:]
    split.graph.node.extend(nodes)
    return split


def _fused_ops(proto) -> str:
    """What `_fuse` made, as "Attention=6 BiasGelu=6" ("none" when nothing)."""
    counts = {op: sum(n.op_type == op for n in proto.graph.node) for op in FUSED_OPS}
    return " ".join(f"{op}={n}" for op, n in counts.items() if n) or "none"


def _check_batch(proto, vocab_size: int) -> dict[str, np.ndarray]:
    """A padded batch of three windows of different lengths, of fixed random tokens."""
    ids = np.random.default_rng(0).integers(1, vocab_size, (3, 29))
    mask = (np.arange(29) < np.array([[29], [17], [6]])).astype(np.int64)
    given = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {i.name: given[i.name] for i in proto.graph.input}


def _session(source: str | bytes, threads: int, profile: str | None = None):
    """An ONNX Runtime CPU session over a graph file or serialised graph: all graph optimizations
    but SESSION_DISABLED, `threads` intra-op threads, errors only in the log. One place, so the
    check in `_fused_or_plain` runs a graph as `OnnxModel` will, and a benchmark's profile
    (`profile`: the profiler's file prefix, bench/alt_runtimes.py) sees the same kernels."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile:
        options.enable_profiling, options.profile_file_prefix = True, profile
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=SESSION_DISABLED)


def _logits(graph, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    return _session(graph.SerializeToString(), 1).run(list(OUTPUTS), batch)


def _fused_or_plain(plain, exported, precision: str, vocab_size: int, checkpoint: Path):
    """(`plain` fused (see `_fuse`), what was fused) where that keeps its logits, else (`plain`,
    "none") with a notice. `exported` is the fp32 graph `plain` was made from (itself for fp32)."""
    try:
        fused = _fuse(plain)
        batch = _check_batch(exported, vocab_size)
        real = batch["attention_mask"].astype(bool)
        reference = _logits(exported, batch)

        def error(graph) -> float:
            return float(np.mean([np.abs(a - b)[real].mean() for a, b in zip(_logits(graph, batch), reference)]))

        plain_error = 0.0 if plain is exported else error(plain)
        fused_error = error(fused)
        allowed = FUSED_ERROR_RATIO * plain_error + FUSED_ERROR_SLACK
        problem = None if fused_error <= allowed else f"mean logit error {fused_error:.3g}, above {allowed:.3g}"
    except Exception as e:  # noqa: BLE001 - the rewriter and onnxruntime fail in many ways
        problem = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:120]}"
    if problem is None:
        return fused, _fused_ops(fused)
    notice(f"ONNX Runtime's fused kernels do not fit {checkpoint}'s encoder ({problem}): "
           f"using its unfused {precision} graph, which is slower")
    return plain, "none"


def _with_key(proto, key: str, precision: str, fused: str | None = None) -> bytes:
    import onnx

    props = {p.key: p.value for p in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**props, KEY: key, PRECISION: precision,
                                        **({FUSED: fused} if fused is not None else {})})
    return proto.SerializeToString()


class OnnxModel(ForwardPass):
    """An ONNX Runtime session over a cached graph, called by `predict_logits` like a model.

    Calls run with this process's torch thread count (`QA.load(threads=)`, `--threads`); a call
    marked `one_thread` (a batch run beside others, see `predict_logits`) uses a second,
    single-threaded session, made on first need. Sessions are thread-safe, so one object serves
    concurrent requests.
    """

    def __init__(self, graph: Path | bytes, precision: str) -> None:
        import onnxruntime  # noqa: F401 - fails here, not in a worker thread

        self.graph, self.precision = graph, precision
        self.threads = torch.get_num_threads()
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()
        session = self.session(self.threads)  # a corrupt graph fails now, at load
        self.inputs = [i.name for i in session.get_inputs()]
        self.metadata = dict(session.get_modelmeta().custom_metadata_map)

    def session(self, threads: int):
        with self._lock:
            if threads not in self._sessions:
                source = self.graph if isinstance(self.graph, bytes) else str(self.graph)
                self._sessions[threads] = _session(source, threads)
            return self._sessions[threads]

    def __call__(self, batch: dict[str, torch.Tensor], one_thread: bool = False) -> tuple[np.ndarray, np.ndarray]:
        session = self.session(1 if one_thread else self.threads)
        start, end = session.run(list(OUTPUTS), {name: batch[name].numpy() for name in self.inputs})
        return start, end


def _cached(path: Path, key: str, kind: str) -> tuple[OnnxModel | None, str | None]:
    """(the graph at `path` loaded, None) when it is there and current; else (None, why it is not
    used: stale or unreadable), or (None, None) when there is none."""
    if not path.is_file():
        return None, None
    try:
        model = OnnxModel(path, kind)
    except Exception as e:  # noqa: BLE001 - onnxruntime's load errors share no base class
        return None, f"unreadable ({(str(e).strip().splitlines() or [''])[0][:120]})"
    if model.metadata.get(KEY) == key and model.metadata.get(PRECISION) == kind:
        return model, None
    return None, "stale (built from other weights, package versions or graph recipe)"


def _exported(checkpoint: Path, folder: Path, key: str):
    """The exporter's graph of `checkpoint`: from the cache when current, else exported and cached
    (a cache that cannot be written is left to the caller's notice)."""
    import onnx

    path = folder / f"model-{EXPORTED}.onnx"
    cached, _ = _cached(path, key, EXPORTED)
    if cached is not None:
        return onnx.load(path)
    proto = _export(checkpoint)
    with contextlib.suppress(OSError):
        atomic_write(path, _with_key(proto, key, EXPORTED))
    return proto


def onnx_model(checkpoint: Path, precision: str, head: str) -> OnnxModel:
    """The checkpoint's graph in `precision`, from the cache when it is there and current, else
    built (from the exported graph, itself cached), written to the cache and loaded."""
    if precision not in PRECISIONS:
        raise ConfigError(f"ONNX precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    _require("onnxruntime")
    folder = cache_folder(checkpoint)
    path = folder / f"model-{precision}.onnx"
    key = graph_key(checkpoint, head)
    model, problem = _cached(path, key, precision)
    if model is not None:
        return model
    what = "exporting {} to ONNX" + (" and quantising it to int8" if precision == "int8" else "")
    notice(f"the cached ONNX graph {path} is {problem}: rebuilding it" if problem
           else f"{what.format(checkpoint)} for ONNX Runtime, once: cached as {path}")
    exported = _exported(checkpoint, folder, key)
    plain = _quantize(exported) if precision == "int8" else exported
    vocab_size = json.loads((checkpoint / "config.json").read_text())["vocab_size"]
    proto, fused = _fused_or_plain(plain, exported, precision, vocab_size, checkpoint)
    graph = _with_key(proto, key, precision, fused)
    try:
        atomic_write(path, graph)
    except OSError as e:
        notice(f"cannot cache the ONNX graph in {path.parent} ({e.strerror or e}): using it from memory; "
               "set SPOKENQA_CACHE to a writable folder")
        return OnnxModel(graph, precision)
    return OnnxModel(path, precision)


def load_onnx(checkpoint: str | Path, precision: str = "fp32"):
    """(OnnxModel, tokenizer, cfg) of a checkpoint folder; the torch model is built only when the
    graph has to be exported, so a cached graph loads without it."""
    from transformers import AutoTokenizer

    from spokenqa.checkpoint import checkpoint_config

    checkpoint = Path(checkpoint)
    cfg = checkpoint_config(checkpoint)
    model = onnx_model(checkpoint, precision, cfg.head)
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint, use_fast=True)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{checkpoint}: cannot load the tokenizer ({str(e).splitlines()[0]})") from e
    return model, tokenizer, cfg


def export_onnx(checkpoint: str | Path, out: str | Path, precision: str = "fp32") -> Path:
    """Write `out`, a folder with the checkpoint's graph (`model.onnx`, from the cache when it is
    current), its tokenizer files, `config.json` and `spokenqa.json`: what another ONNX Runtime
    program needs to run the model. Atomic, like every checkpoint folder."""
    from spokenqa.checkpoint import TOKENIZER_FILES, checkpoint_config
    from spokenqa.files import atomic_folder

    checkpoint, out = Path(checkpoint), Path(out)
    cfg = checkpoint_config(checkpoint)
    model = onnx_model(checkpoint, precision, cfg.head)
    graph = model.graph if isinstance(model.graph, bytes) else model.graph.read_bytes()
    saved = json.loads((checkpoint / "spokenqa.json").read_text())
    saved["checkpoint"] = {**saved.get("checkpoint", {}), "exported_from": str(checkpoint), "format": "onnx",
                           "precision": precision, "inputs": model.inputs, "outputs": list(OUTPUTS)}

    def write(tmp: Path) -> None:
        (tmp / "model.onnx").write_bytes(graph)
        (tmp / "spokenqa.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
        for name in ("config.json", *TOKENIZER_FILES):
            if (checkpoint / name).is_file():
                (tmp / name).write_bytes((checkpoint / name).read_bytes())

    atomic_folder(out, write)
    return out
