"""Shared fixtures: the shipped tokenizer, a tiny random-weight BERT folder, data paths."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from spokenqa.serve.limits import Limits

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "spokenqa" / "sample" / "sample_spoken.json"


def serving_line(proc, timeout: float = 180.0) -> str:
    """The "spokenqa: serving ... at URL" line of a `spokenqa serve` subprocess (stdout a text
    pipe), skipping the notices printed before it (the ASR engine, an ONNX export). Reads in a
    thread so that a server that never says it serves fails the test after `timeout` seconds
    instead of hanging the suite; the lines read so far are in the failure message."""
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(proc.stdout.readline, ""):
            lines.put(line)
            if "serving" in line:
                return
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if "serving" in line:
            return line
        if not line:
            break
        seen.append(line)
    proc.kill()
    raise AssertionError(f"no 'serving' line from spokenqa serve within {timeout:.0f} s; it printed: {''.join(seen)!r}")


def shared_data() -> Path:
    """SPOKENQA_DATA, or ../shared/data next to the repository."""
    return Path(os.environ.get("SPOKENQA_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def tokenizer():
    from spokenqa.config import preset
    from spokenqa.model import build_tokenizer

    return build_tokenizer(preset("cpu"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A 3-layer, 32-wide random BERT with the shipped vocabulary, saved like a hub folder."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_squad(path: Path, paragraphs: list[tuple[str, list[tuple[str, str, list[tuple[str, int]]]]]]) -> Path:
    """Write a SQuAD file from [(context, [(id, question, [(answer, start)])])]."""
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": c, "qas": [{"id": i, "question": q, "answers": [{"text": t, "answer_start": s} for t, s in a]}
                               for i, q, a in qas]}
        for c, qas in paragraphs]}]}
    path.write_text(json.dumps(data))
    return path


# --- serving (tests/test_serve.py, tests/test_browser.py) ----------------------------------

SERVE_LIMITS = Limits(
    max_body_bytes=300_000, max_json_bytes=20_000, max_audio_seconds=10.0, max_questions=4,
    max_context_chars=3000, max_top_k=10, max_transcripts=4,
)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_model_dir) -> Path:
    """A spokenqa checkpoint folder: the tiny random BERT with a fresh (untrained) head. Its
    answers are arbitrary spans in the right format; it loads in well under a second."""
    import torch

    from spokenqa.checkpoint import save_checkpoint
    from spokenqa.config import preset
    from spokenqa.model import build_model

    torch.manual_seed(0)
    cfg = preset("cpu").replace(model=str(tiny_model_dir), mixed_precision="no", eval_batch_size=8)
    model, tok = build_model(cfg)
    folder = tmp_path_factory.mktemp("tiny-checkpoint") / "best"
    save_checkpoint(folder, model, tok, cfg, info={"note": "untrained, for tests"})
    return folder


@pytest.fixture(scope="session")
def live_server(tiny_checkpoint):
    """The real app on uvicorn in a background thread on a free loopback port, with small limits
    (SERVE_LIMITS) and pocketsphinx for uploads (the tests of ASR in the server were written
    against its transcripts and timing; test_serve checks the default engine apart). Yields the
    BackgroundServer (`.url`, `.app`)."""
    import torch

    from spokenqa.serve.app import create_app
    from spokenqa.serve.server import BackgroundServer

    torch.set_num_threads(1)
    with BackgroundServer(create_app(tiny_checkpoint, SERVE_LIMITS, engine="pocketsphinx")) as server:
        yield server


@pytest.fixture(scope="session")
def archive_index(tmp_path_factory, tiny_model_dir) -> Path:
    """A small real archive index (tests/test_serve_archive.py): the sample's 5 SQuAD paragraphs
    and tests/data/bridge_1932.wav transcribed by pocketsphinx (a recording with word times),
    with the tiny encoder's vectors."""
    import shutil

    from spokenqa.archive import index

    folder = tmp_path_factory.mktemp("archive")
    shutil.copy(ROOT / "tests" / "data" / "bridge_1932.wav", folder / "bridge_1932.wav")
    path = folder / "archive.sqlite"
    index.build(path, [SAMPLE, folder / "bridge_1932.wav"], encoder=str(tiny_model_dir), engine="pocketsphinx")
    return path


@pytest.fixture(scope="session")
def archive_server(tiny_checkpoint, archive_index):
    """The real app over `archive_index` (``serve --index``) on uvicorn, like `live_server`."""
    import torch

    from spokenqa.serve.app import create_app
    from spokenqa.serve.server import BackgroundServer

    torch.set_num_threads(1)
    with BackgroundServer(create_app(tiny_checkpoint, SERVE_LIMITS, index=archive_index, engine="pocketsphinx")) as server:
        yield server


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run with one line that counts the skipped tests by reason, after pytest's own
    totals: a skip that CI could have run (a missing extra, missing shared data) must be seen,
    not buried in the middle of the log."""
    from collections import Counter

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    reasons = Counter()
    for report in reporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    total = sum(reasons.values())
    detail = "; ".join(f"{n} x {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    reporter.write_line(f"skipped: {total}" + (f" ({detail})" if detail else ""))
