"""spokenqa.corpus.runner on a real Ray cluster started by the tests (ray.init, 2 CPUs, this machine
only, stopped at the end): `transcribe --out` and `synthesize` with --ray write what the local path
writes, a killed worker is retried with nothing lost or written twice, a killed driver is
resumed, a bad recording is an error line, and a missing ray package is one line."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from spokenqa.cli import main

ROOT = Path(__file__).resolve().parents[1]
BRIDGE_WAV = Path(__file__).parent / "data" / "bridge_1932.wav"

needs_sphinx = pytest.mark.skipif(
    importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed"
)
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray not installed (pip install 'spokenqa[ray]')"
)
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU Ray on this machine, for this module; its address, for drivers in subprocesses."""
    import logging

    import ray

    ray.init(
        address="local", num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False,
        log_to_driver=False, logging_level=logging.ERROR,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """Eight recordings of 2 or 3 times the checked-in sentence (about 1 CPU-s of decoding each,
    long enough to kill a worker in the middle of a batch) and one text file named .wav."""
    import soundfile as sf

    from spokenqa.audio.asr import load_audio, to_int16

    folder = tmp_path_factory.mktemp("recordings")
    bridge, _ = load_audio(BRIDGE_WAV)
    pause = np.zeros(8000, dtype=np.float32)
    for i in range(8):
        audio = np.concatenate([bridge, pause] * (2 + i % 2))
        sf.write(folder / f"r{i:02d}.wav", to_int16(audio), 16000, subtype="PCM_16")
    (folder / "r05_notes.wav").write_text("not audio\n")
    return folder


@pytest.fixture(scope="module")
def local_lines(recordings, tmp_path_factory) -> list[str]:
    """The reference: what the local path writes, sorted by key (the file)."""
    from spokenqa.corpus.transcribe import transcribe_files

    out = tmp_path_factory.mktemp("local") / "out.jsonl"
    stats = transcribe_files([recordings], out, engine="pocketsphinx", progress=False)
    assert (stats.written, stats.failed) == (8, 1)
    return sorted(out.read_text().splitlines())


def _lines(path: Path) -> list[str]:
    lines = sorted(path.read_text().splitlines())
    keys = [json.loads(line)["file"] for line in lines]
    assert len(keys) == len(set(keys)), "a recording was written twice"
    return lines


@needs_ray
@needs_sphinx
def test_ray_writes_what_local_writes_and_a_bad_file_is_an_error_line(
    ray_cluster, recordings, local_lines, tmp_path
):
    from spokenqa.corpus.transcribe import transcribe_files

    out = tmp_path / "ray.jsonl"
    stats = transcribe_files([recordings], out, engine="pocketsphinx", ray="auto", batch_size=3, progress=False)
    assert (stats.written, stats.failed, stats.skipped, stats.retried) == (8, 1, 0, 0)
    assert _lines(out) == local_lines  # byte for byte, after sorting by file
    errors = [json.loads(line) for line in local_lines if '"error"' in line]
    assert [Path(e["file"]).name for e in errors] == ["r05_notes.wav"]
    assert "r05_notes.wav: not a readable audio file" in errors[0]["error"]


def _kill_first_batch_worker(killed: list[int], stop: threading.Event) -> None:
    """Kill (SIGKILL) the first Ray worker seen running a batch: a descendant of this test
    process (the Ray it started) whose title Ray set to the task's name."""
    import psutil

    me = psutil.Process()
    while not stop.is_set():
        for proc in me.children(recursive=True):
            try:
                if proc.name() == "ray::_run_batch":
                    proc.send_signal(signal.SIGKILL)
                    killed.append(proc.pid)
                    return
            except psutil.Error:
                continue
        time.sleep(0.05)


@needs_ray
@needs_sphinx
def test_killed_worker_is_retried_nothing_lost_or_twice(ray_cluster, recordings, local_lines, tmp_path):
    from spokenqa.corpus.transcribe import transcribe_files

    out = tmp_path / "ray.jsonl"
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_batch_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        stats = transcribe_files([recordings], out, engine="pocketsphinx", ray="auto", batch_size=4, progress=False)
    finally:
        stop.set()
        killer.join(timeout=10)
    assert len(killed) == 1, "no worker was seen running a batch"
    assert stats.retried >= 1  # the killed worker's batch, run again by Ray
    assert (stats.written, stats.failed) == (8, 1)
    assert _lines(out) == local_lines


@needs_ray
@needs_sphinx
def test_killed_driver_is_resumed(ray_cluster, recordings, local_lines, tmp_path):
    from spokenqa.corpus.transcribe import transcribe_files

    out = tmp_path / "ray.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [sys.executable, "-m", "spokenqa", "transcribe", str(recordings), "--out", str(out),
           "--ray", ray_cluster, "--batch-size", "1", "--engine", "pocketsphinx", "--no-progress"]
    driver = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (out.exists() and out.read_text().count("\n") >= 2):
            assert driver.poll() is None, f"driver ended early: {driver.stderr.read().decode()}"
            assert time.monotonic() < deadline, "the driver wrote nothing in 300 s"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    before = len(out.read_text().splitlines())
    assert 2 <= before < 9
    stats = transcribe_files([recordings], out, engine="pocketsphinx", ray="auto", progress=False)
    assert stats.skipped == before and stats.written + stats.failed == 9 - before
    assert _lines(out) == local_lines


@needs_ray
@pytest.mark.slow
def test_synthesize_on_ray_writes_what_local_writes(ray_cluster, tmp_path):
    from test_synthesize import SQUAD, needs_stack

    if needs_stack.args[0]:
        pytest.skip(needs_stack.kwargs["reason"])
    from spokenqa.corpus.synthesize import synthesize_squad

    squad = tmp_path / "tiny.json"
    squad.write_text(json.dumps(SQUAD))
    one, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    synthesize_squad(squad, one, workers=1, progress=False)
    stats = synthesize_squad(squad, ray_out, ray="auto", progress=False)
    assert (stats.written, stats.failed, stats.retried) == (3, 0, 0)

    def rows(path: Path) -> list[str]:  # timings differ from run to run; the rest must not
        out = []
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out.append(json.dumps({k: v for k, v in row.items() if k not in ("tts_s", "asr_s")}))
        return sorted(out)

    assert rows(ray_out) == rows(one)


def _warm_nothing(cfg) -> None:
    """The test work below loads no model."""


def _work_or_fail(item: int, cfg) -> dict:
    """A work function with two bad items: one whose worker dies each time, one that raises."""
    if item == cfg["dies"]:
        os._exit(1)
    if item == cfg["raises"]:
        raise RuntimeError(f"item {item} is broken")
    return {"item": item}


@needs_ray
def test_a_failing_batch_is_split_and_only_the_bad_items_fail(ray_cluster):
    import ray.cloudpickle

    from spokenqa.corpus.runner import Executor

    # the work function travels by value: Ray's workers cannot import this test module
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor = Executor(ray="auto", batch_size=3, max_retries=1)
    outcomes = {o.item: o for o in executor.run(range(6), _work_or_fail, _warm_nothing, {"dies": 4, "raises": 1})}
    assert sorted(outcomes) == list(range(6))
    assert [i for i, o in outcomes.items() if o.row == {"item": i}] == [0, 2, 3, 5]
    assert outcomes[1].error == "RuntimeError: item 1 is broken" and not outcomes[1].retried
    assert outcomes[4].error.startswith("its worker died 2 times") and outcomes[4].retried
    # the other items of the two failed batches were run again, one per task
    assert {i for i, o in outcomes.items() if o.retried} == {0, 2, 3, 4, 5}


@pytest.mark.parametrize("command", ["transcribe", "synthesize"])
def test_missing_ray_is_one_line(command: str, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    argv = (["transcribe", str(BRIDGE_WAV), "--out", str(tmp_path / "o.jsonl")]
            if command == "transcribe" else ["synthesize", str(tmp_path / "in.json"), str(tmp_path / "o.jsonl")])
    assert main([*argv, "--ray", "auto"]) == 2
    err = capsys.readouterr().err
    assert err == "spokenqa: error: --ray needs the 'ray' package, which is not installed: pip install 'spokenqa[ray]'\n"
    assert not (tmp_path / "o.jsonl").exists()
