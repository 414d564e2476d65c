"""Training under faults: Ctrl-C, kills while a checkpoint is written, unusable outputs and models
caught before the first step, non-finite losses skipped, same seed -> same predictions.

Tolerance: on CPU with the same seed, runs are bitwise identical (weights compared with
torch.equal, predictions with ==). Tiny random BERT (tests/conftest.py), one torch thread.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SAMPLE
from safetensors.torch import load_file

from spokenqa.cli import main
from spokenqa.config import preset
from spokenqa.train import train

ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
ENV.pop("SPOKENQA_DEBUG", None)


STEPS = 14  # 27 sample questions -> 27 windows -> 14 batches of 2; one epoch


def flags(model_dir: Path, checkpoint_every: int, lr: str = "1e-3", evaluate: bool = True) -> list[str]:
    return ["--train", str(SAMPLE), *(["--eval", str(SAMPLE), "--max-eval-examples", "4"] if evaluate else []),
            "--model", str(model_dir), "--epochs", "1", "--batch-size", "2", "--lr", lr, "--mixed-precision", "no",
            "--threads", "1", "--max-length", "128", "--doc-stride", "32", "--max-question-tokens", "16",
            "--checkpoint-every", str(checkpoint_every)]


def config(model_dir: Path, out: Path, evaluate: bool = True, **changes):
    """The config `spokenqa train <flags(...)>` builds, for in-process runs."""
    settings = {"train_files": [str(SAMPLE)], "model": str(model_dir), "epochs": 1, "train_batch_size": 2,
                "learning_rate": 1e-3, "mixed_precision": "no", "num_threads": 1, "max_length": 128,
                "doc_stride": 32, "max_question_tokens": 16, "checkpoint_every": 4, "out_dir": str(out)}
    if evaluate:
        settings.update(eval_file=str(SAMPLE), max_eval_examples=4)
    return preset("cpu").replace(**{**settings, **changes})


@pytest.fixture(scope="module", autouse=True)
def one_thread_no_figures():
    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    mp.setattr("spokenqa.report._hist", lambda *a, **k: None)
    mp.setattr("spokenqa.report._curve", lambda *a, **k: None)
    yield
    mp.undo()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, tiny_model_dir) -> Path:
    """One uninterrupted run: the reference for every interrupted one."""
    out = tmp_path_factory.mktemp("straight")
    assert train(config(tiny_model_dir, out))["status"] == "finished"
    return out


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last" / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_predictions_and_weights(straight, tmp_path, tiny_model_dir):
    again = tmp_path / "again"
    train(config(tiny_model_dir, again))
    for name in ("predictions.json", "epochs/epoch_1/predictions.json", "epochs/epoch_1/metrics.json"):
        assert (straight / name).read_text() == (again / name).read_text(), name
    assert_same_weights(straight, again)
    losses = [[h["train_loss"] for h in json.loads((run / "history.json").read_text())] for run in (straight, again)]
    assert losses[0] == losses[1]


# --- Ctrl-C and kills ---------------------------------------------------------------------------

# Imports spokenqa once, then forks one `spokenqa.cli.main(argv)` child per job read from stdin
# (a fresh `python -m spokenqa` costs ~4 s of imports on this machine). The parent runs no torch
# op before a fork, figures are stubbed (test_train.py checks them), the child's output goes to a log.
FORK_SERVER = r"""
import json, os, sys
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import transformers.models.bert.modeling_bert
from transformers import AutoConfig, AutoTokenizer
import spokenqa.inference, spokenqa.model, spokenqa.report, spokenqa.train
from spokenqa.cli import main
spokenqa.report._hist = spokenqa.report._curve = lambda *a, **k: None
AutoConfig.from_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(sys.argv[1])
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = 99
        try:
            code = main(job["argv"])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    print(json.dumps({"status": os.waitpid(pid, 0)[1]}), flush=True)
"""


class ForkServer:
    def __init__(self, model_dir: Path, logs: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(model_dir)], env=ENV, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.logs, self.jobs = logs, 0

    def start(self, argv: list[str]) -> int:
        """Start `spokenqa <argv>` in a child; its pid."""
        self.jobs += 1
        self.log = self.logs / f"job-{self.jobs}.log"
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(self.log)}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["pid"]

    def wait(self) -> int:
        """The wait status of the child started last."""
        return json.loads(self.proc.stdout.readline())["status"]

    def run(self, argv: list[str]) -> int:
        self.start(argv)
        status = self.wait()
        assert os.WIFEXITED(status), f"killed ({status}): {self.log.read_text()[-2000:]}"
        return os.WEXITSTATUS(status)


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    srv = ForkServer(tiny_model_dir, tmp_path_factory.mktemp("fork-server"))
    yield srv
    srv.proc.kill()  # it only waits for jobs; no need to pay for an orderly interpreter exit
    srv.proc.communicate()


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_ctrl_c_saves_exits_130_and_resume_matches_uninterrupted(straight, server, tmp_path, tiny_model_dir):
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "spokenqa", "train", "--out", str(out), *flags(tiny_model_dir, 4)],
                            env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: (out / "last" / "spokenqa.json").is_file(), proc, "the first checkpoint (step 4)")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stdout + stderr
    message = [line for line in stderr.splitlines() if line.startswith("spokenqa:")]
    assert len(message) == 1 and "interrupted at epoch 1, step" in message[0] and "--resume" in message[0], message
    assert json.loads(stdout)["status"] == "interrupted"
    info = json.loads((out / "last" / "spokenqa.json").read_text())["checkpoint"]
    assert info["epoch"] == 1 and 4 <= info["step"] < STEPS, info  # saved where it stopped, mid-epoch

    assert server.run(["train", "--out", str(out), "--resume"]) == 0, server.log.read_text()[-2000:]
    assert "Traceback" not in server.log.read_text()
    assert "| epoch | loss |" in server.log.read_text()  # the finished run prints its scores
    assert_same_weights(straight, out)
    for name in ("predictions.json", "epochs/epoch_1/metrics.json"):
        assert (straight / name).read_text() == (out / name).read_text(), name


def _check_last(out: Path) -> str:
    """`last/` is absent or a complete checkpoint: loadable model and training state."""
    from spokenqa.checkpoint import load_checkpoint

    last = out / "last"
    if not last.exists():
        return "absent"
    load_checkpoint(last)
    state = torch.load(last / "training_state.pt", map_location="cpu", weights_only=False)
    assert {"epoch", "step", "optimizer", "scheduler", "rng"} <= set(state)
    return "complete"


KILLS = 6


def test_kills_during_checkpoint_writes_never_leave_a_half_checkpoint(straight, server, tmp_path, tiny_model_dir):
    out = tmp_path / "killed"

    def argv() -> list[str]:
        if (out / "last").exists() or any(out.glob(".last.old-*")):
            return ["train", "--out", str(out), "--resume"]
        return ["train", "--out", str(out), *flags(tiny_model_dir, 1)]  # a checkpoint after every step

    rng = random.Random(7)
    mid_write, seen, states = 0, set(), []
    for _ in range(KILLS):
        pid = server.start(argv())
        writes, deadline = rng.randint(1, 3), time.time() + 120
        new: set[Path] = set()
        while len(new) < writes and time.time() < deadline:  # wait for the n-th checkpoint write to begin
            new |= set(out.glob(".last.tmp-*")) - seen
            time.sleep(0.001)
        time.sleep(rng.choice([0.0, rng.uniform(0, 0.03)]))  # at once (mid-write) or a little later
        os.kill(pid, signal.SIGKILL)
        status = server.wait()
        assert os.WIFSIGNALED(status), f"the run ended ({status}) before the kill: {server.log.read_text()[-2000:]}"
        left = set(out.glob(".last.tmp-*")) - seen  # a kill mid-write leaves its temp folder behind
        mid_write += len(left)
        seen |= left
        states.append(_check_last(out))
    assert server.run(argv()) == 0, server.log.read_text()[-2000:]
    print(f"{KILLS} kills, {mid_write} while a checkpoint folder was being written; last/ after each: {states}")
    assert mid_write >= 1  # at least one kill really landed inside a checkpoint write (5 of 6 here)
    from spokenqa.checkpoint import load_checkpoint

    load_checkpoint(out / "last")  # finished: loadable weights, and the resume state dropped
    assert not (out / "last" / "training_state.pt").exists()
    assert_same_weights(straight, out)


def test_resume_recovers_a_checkpoint_set_aside_by_a_kill_between_renames(straight, tmp_path, tiny_model_dir):
    """atomic_folder moves `last` to `.last.old-PID` before renaming the new one in: a kill
    between the two renames must not lose the run."""
    out = tmp_path / "renamed"
    cfg = config(tiny_model_dir, out)
    calls = {"n": 0}
    real_save = sys.modules["spokenqa.train"].TrainingState.save

    def stop_after_first_checkpoint(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        raise KeyboardInterrupt  # a hard stop right after the step-4 checkpoint

    mp = pytest.MonkeyPatch()
    mp.setattr("spokenqa.train.TrainingState.save", stop_after_first_checkpoint)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    finally:
        mp.undo()
    assert calls["n"] == 1 and not (out / "history.json").exists()
    os.replace(out / "last", out / ".last.old-12345")  # the kill landed between the renames
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert_same_weights(straight, out)


# --- preflight: caught before the first training step ------------------------------------------


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if a training step (or model build) is reached."""

    def boom(*a, **k):
        raise AssertionError("preflight let the run reach the model")

    monkeypatch.setattr("spokenqa.train.build_model", boom)
    monkeypatch.setattr("spokenqa.train.span_loss", boom)


def _preflight_fails(args: list[str], capsys, *expected: str) -> None:
    capsys.readouterr()
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and err.startswith("spokenqa: error: "), err
    for text in expected:
        assert text in err, err
    assert "Traceback" not in out + err


def _can_mount() -> bool:
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    probe = Path(f"/tmp/spokenqa-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True, check=False).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    finally:
        probe.rmdir()


MOUNT = _can_mount()
needs_mount = pytest.mark.skipif(not MOUNT, reason="needs root and `mount -t tmpfs` (not allowed here)")


@pytest.fixture()
def tmpfs(tmp_path):
    """Mount a tmpfs with the given options under tmp_path; unmounted afterwards."""
    mounted = []

    def make(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_output_under_a_file_is_not_writable(tmp_path, tiny_model_dir, capsys, no_training):
    """Root ignores permission bits (chmod 0o500 would not stop it): a folder under a FILE
    cannot be created by anyone."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "run"
    _preflight_fails(["train", "--out", str(out), *flags(tiny_model_dir, 4)], capsys,
                     f"{out}: output folder is not writable (Not a directory)")


@needs_mount
def test_read_only_output_folder(tmpfs, tiny_model_dir, capsys, no_training):
    out = tmpfs("ro,size=1m") / "run"
    _preflight_fails(["train", "--out", str(out), *flags(tiny_model_dir, 4)], capsys,
                     f"{out}: output folder is not writable (Read-only file system)")


@needs_mount
def test_disk_too_small_and_disk_full(tmpfs, tiny_model_dir, capsys, no_training):
    small = tmpfs("size=1m") / "run"
    _preflight_fails(["train", "--out", str(small), *flags(tiny_model_dir, 4)], capsys,
                     f"{small}: less than 1 GiB free")
    full = tmpfs("size=64k")
    with open(full / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    _preflight_fails(["train", "--out", str(full / "run"), *flags(tiny_model_dir, 4)], capsys,
                     "output folder is not writable (No space left on device)")


@needs_mount
def test_disk_full_during_training_keeps_the_last_checkpoint(tmpfs, tiny_model_dir, capsys, monkeypatch):
    """20 MiB fit one 13 MB checkpoint, not a second beside it. Free space is faked past the
    1 GiB preflight check. The failed write is one line (status 1: the input was fine) and the
    previous `last/` is untouched and loadable."""
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 40, 0, 1 << 40))
    out = tmpfs("size=20m") / "run"
    capsys.readouterr()
    code = main(["train", "--out", str(out), *flags(tiny_model_dir, 1, evaluate=False)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err[-2000:]
    assert (f"spokenqa: error: {out}: disk full (No space left on device); the last complete checkpoint "
            f"{out / 'last'} is kept: free space, then run again with --resume\n") in err, err
    assert _check_last(out) == "complete"
    assert json.loads((out / "last" / "spokenqa.json").read_text())["checkpoint"] == {"epoch": 1, "step": 1}
    assert not list(out.glob(".last.tmp-*"))  # the failed write cleaned up after itself


def test_missing_data_file(tmp_path, tiny_model_dir, capsys, no_training):
    args = flags(tiny_model_dir, 4)
    args[1] = str(tmp_path / "nowhere.json")
    _preflight_fails(["train", "--out", str(tmp_path / "run"), *args], capsys,
                     f"{tmp_path / 'nowhere.json'}: no such data file")
    assert not (tmp_path / "run" / "config.json").exists()


def test_model_folder_without_weights(tmp_path, tiny_model_dir, capsys, no_training):
    empty = tmp_path / "model"
    empty.mkdir()
    for p in tiny_model_dir.iterdir():
        if not p.name.endswith((".safetensors", ".bin")):
            (empty / p.name).write_bytes(p.read_bytes())
    _preflight_fails(["train", "--out", str(tmp_path / "run"), *flags(empty, 4)], capsys,
                     f"{empty}: model folder has no weights")


def test_evaluate_predict_stats_unusable_outputs(tmp_path, straight, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    ckpt = str(straight / "last")
    _preflight_fails(["evaluate", "--checkpoint", ckpt, "--data", str(SAMPLE), "--out", str(blocker / "ev")], capsys,
                     f"{blocker / 'ev'}: cannot create the output folder")
    _preflight_fails(["predict", "--checkpoint", ckpt, "--data", str(SAMPLE), "--out", str(blocker / "p.json")], capsys,
                     f"{blocker}: cannot create the output folder")
    _preflight_fails(["predict", "--checkpoint", ckpt, "--data", str(SAMPLE), "--out", str(tmp_path)], capsys,
                     f"{tmp_path}: is a folder")
    _preflight_fails(["stats", "--data", str(SAMPLE), "--out", str(blocker / "st")], capsys,
                     f"{blocker / 'st'}: cannot create the output folder")
    assert blocker.read_text() == "x"


# --- numerical faults ---------------------------------------------------------------------------


def test_skip_nonfinite_skips_injected_nan_batches_and_counts_them(tmp_path, tiny_model_dir, monkeypatch):
    from spokenqa import train as train_module

    real = train_module.span_loss
    calls = {"n": 0}
    poisoned = {2, 5, 11}

    def nan_sometimes(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] in poisoned else loss

    monkeypatch.setattr("spokenqa.train.span_loss", nan_sometimes)
    out = tmp_path / "nan"
    summary = train(config(tiny_model_dir, out, evaluate=False, skip_nonfinite=True))
    assert summary["status"] == "finished"
    history = json.loads((out / "history.json").read_text())
    assert [h["skipped_batches"] for h in history] == [3]
    assert summary["steps"] == STEPS - 3  # skipped batches make no optimiser step
    assert all(torch.isfinite(w).all() for w in weights(out).values())
    assert all(math.isfinite(h["train_loss"]) for h in history)


def _poison_gradients(monkeypatch, poisoned: set[int]) -> None:
    """Make the gradient of one weight infinite in the backward passes numbered `poisoned`
    while the loss stays finite."""
    from spokenqa import train as train_module

    real = train_module.span_loss
    calls = {"n": 0}

    def loss_with_inf_gradient(start_logits, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] in poisoned:
            start_logits.register_hook(lambda g: g * float("inf"))
        return real(start_logits, *args, **kwargs)

    monkeypatch.setattr("spokenqa.train.span_loss", loss_with_inf_gradient)


def test_nonfinite_gradient_with_finite_loss_stops_with_one_line(tmp_path, tiny_model_dir, monkeypatch):
    from spokenqa.errors import TrainingError

    _poison_gradients(monkeypatch, {3})
    with pytest.raises(TrainingError, match=r"non-finite gradient norm \(\w+\) with a finite loss at epoch 1, step 3"):
        train(config(tiny_model_dir, tmp_path / "inf", evaluate=False))


def test_skip_nonfinite_skips_batches_with_nonfinite_gradients(tmp_path, tiny_model_dir, monkeypatch):
    _poison_gradients(monkeypatch, {2, 7})
    out = tmp_path / "inf-skip"
    summary = train(config(tiny_model_dir, out, evaluate=False, skip_nonfinite=True))
    assert summary["status"] == "finished" and summary["steps"] == STEPS - 2
    assert [h["skipped_batches"] for h in json.loads((out / "history.json").read_text())] == [2]
    assert all(torch.isfinite(w).all() for w in weights(out).values())


def test_skip_nonfinite_from_the_command_line_runs_on_after_overflow(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "overflow"
    args = flags(tiny_model_dir, 100, lr="1e12", evaluate=False)
    code = main(["train", "--out", str(out), *args, "--max-grad-norm", "1e30", "--skip-nonfinite"])
    assert code == 0, capsys.readouterr().err[-2000:]
    history = json.loads((out / "history.json").read_text())
    skipped = sum(h["skipped_batches"] for h in history)
    steps = json.loads((out / "summary.json").read_text())["steps"]
    assert skipped > 0 and steps + skipped == STEPS
