"""The command line as a user meets it (issue 11): every option explained, commands that do all
they are asked, bad input told at once and before the model loads, and failed commands that leave
nothing behind."""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE

from spokenqa.cli import build_parser, main
from spokenqa.config import MODEL_FIELDS, RunConfig, preset

SRC = ROOT / "src" / "spokenqa"


def _options(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, "/".join(action.option_strings) or action.dest, action.help


def test_every_option_of_every_subcommand_has_help():
    missing = [f"{cmd} {opt}" for cmd, opt, text in _options(build_parser(), "spokenqa") if not text]
    assert not missing, missing


def _spokenqa_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spokenqa")}


# --- a checkpoint carries the model's settings, not its training run's ----------------------------

RUN_SETTINGS = dict(  # every field that is not in MODEL_FIELDS, away from its default
    train_files=("t.json",), eval_file="e.json", out_dir="runs/x", expand_answers=True, max_train_examples=5,
    max_eval_examples=4, negative_window_keep=0.5, loss="focal", focal_gamma=2.0, epochs=9, max_steps=3,
    train_batch_size=2, learning_rate=1e-3, weight_decay=0.5, decay_bias_and_norm=True, warmup_ratio=0.5,
    max_grad_norm=9.0, seed=7, group_by_length=False, checkpoint_every=3, eval_every=2, skip_nonfinite=True,
    baseline=True, select_metric="reference_wer", num_threads=1, keep_resume_state=True, init_from="runs/a/best",
    snapshot_every=5,
)


def test_every_setting_is_either_the_models_or_the_runs():
    fields = {f for f in RunConfig.__dataclass_fields__}
    assert set(MODEL_FIELDS) | set(RUN_SETTINGS) == fields and not set(MODEL_FIELDS) & set(RUN_SETTINGS)
    model = dict(preset="reference", lowercase=False, model="m", head="reference", head_dropout=0.3, max_length=200,
                 doc_stride=50, max_question_tokens=20, decoder="argmax", n_best=5, max_answer_tokens=9,
                 eval_batch_size=1, mixed_precision="no")
    saved = RunConfig().replace(**model, **RUN_SETTINGS)
    assert saved.for_inference() == RunConfig().replace(**model)


@pytest.fixture(scope="module")
def limited_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint as if trained with --max-eval-examples 4 (and other run-only limits)."""
    folder = tmp_path_factory.mktemp("limited") / "best"
    shutil.copytree(tiny_checkpoint, folder)
    saved = json.loads((folder / "spokenqa.json").read_text())
    saved["config"].update(max_eval_examples=4, max_train_examples=5, num_threads=1, eval_file="gone.json")
    (folder / "spokenqa.json").write_text(json.dumps(saved))
    return folder


def test_evaluate_and_predict_do_the_whole_file_whatever_the_training_run_limited(limited_checkpoint, tmp_path,
                                                                                 capsys):
    assert main(["evaluate", "--checkpoint", str(limited_checkpoint), "--data", str(SAMPLE)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["official"]["questions"] == 27 and scores["reference"]["answers"] == 27
    assert main(["evaluate", "--checkpoint", str(limited_checkpoint), "--max-eval-examples", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["official"]["questions"] == 3  # its own flag limits it
    out = tmp_path / "p.json"
    assert main(["predict", "--checkpoint", str(limited_checkpoint), "--data", str(SAMPLE), "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())) == 27


def test_ask_and_serve_load_the_models_settings_only(limited_checkpoint):
    from spokenqa.qa import QA

    qa = QA.load(limited_checkpoint, device="cpu")
    assert qa.cfg.max_eval_examples is None and qa.cfg.eval_file is None and qa.cfg.num_threads is None
    assert qa.cfg.model == preset("cpu").replace(model=qa.cfg.model).model  # the model's own fields kept
    assert qa.cfg.mixed_precision == "no" and qa.cfg.eval_batch_size == 8


# --- bad input: one line, before the model loads ---------------------------------------------------

def _cli(args: list[str], cwd: Path) -> tuple[int, str, bool, float]:
    """Run the CLI in a fresh interpreter: (status, stderr, whether torch got imported, seconds).

    Torch is what model loading needs first; not importing it shows no model work began."""
    code = ("import sys, time; t = time.perf_counter(); from spokenqa.cli import main; rc = main(sys.argv[1:]); "
            "print(f'@@ {\"torch\" in sys.modules} {time.perf_counter() - t:.3f}', file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    *lines, marker = proc.stderr.strip().splitlines()
    _, torch_loaded, seconds = marker.split()
    return proc.returncode, "\n".join(lines), torch_loaded == "True", float(seconds)


def test_bad_input_is_told_before_the_model_loads(tiny_checkpoint, tmp_path):
    """Seen before the fix: about 8.6 s to each of these errors (model loaded first). Now no torch
    import at all; the bound is generous for a loaded 2-core machine (measured 2026-12-02: 0.1-1.9 s
    per case at lowest priority beside a training run and other tests)."""
    not_json = tmp_path / "notes.json"
    not_json.write_text("these are notes, not JSON")
    ckpt = str(tiny_checkpoint)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        (["evaluate", "--checkpoint", ckpt, "--data", str(tmp_path / "missing.json")], "missing.json: no such"),
        (["evaluate", "--checkpoint", ckpt, "--data", str(not_json)], "notes.json: not valid JSON"),
        (["evaluate", "--checkpoint", str(tmp_path / "nope"), "--data", str(SAMPLE)], "nope: no such checkpoint folder"),
        (["evaluate", "--checkpoint", ckpt, "--data", str(SAMPLE), "--out", str(blocker / "ev")],
         "cannot create the output folder"),
        (["predict", "--checkpoint", ckpt, "--data", str(not_json), "--out", str(tmp_path / "p.json")],
         "not valid JSON"),
        (["ask", "--checkpoint", ckpt, "--question", "when", "--context", "  "], "--context: the context is empty"),
        (["ask", "--checkpoint", ckpt, "--question", " ", "--context", "text"], "--question: question 1 is empty"),
        (["ask", "--checkpoint", ckpt, "--question", "when", "--audio", str(tmp_path / "gone.wav")],
         "gone.wav: no such audio file"),
        (["ask", "--checkpoint", str(tmp_path / "nope"), "--question", "when", "--context", "text"],
         "no such checkpoint folder"),
        (["train", "--train", str(tmp_path / "missing.json"), "--out", str(tmp_path / "run")], "no such data file"),
        (["serve", "--checkpoint", str(tmp_path / "nope")], "no such checkpoint folder"),
    ]
    for args, expected in cases:
        status, err, torch_loaded, seconds = _cli(args, tmp_path)
        assert status == 2 and len(err.splitlines()) == 1 and expected in err, (args, err)
        assert "no speech" not in err
        assert not torch_loaded, f"{args}: torch was imported before the input was checked"
        assert seconds < 5.0, f"{args}: {seconds:.2f} s to the error"


def test_missing_checkpoint_folder_is_named_as_such(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nowhere"), "--data", str(SAMPLE)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nowhere'}: no such checkpoint folder" in err and "safetensors" not in err


def test_text_context_errors_carry_no_audio_hint(tiny_checkpoint):
    from spokenqa.errors import ConfigError
    from spokenqa.qa import QA

    qa = QA.load(tiny_checkpoint, device="cpu")
    with pytest.raises(ConfigError, match=r"^the context is empty$"):
        qa.answer("when", context=" \n")


def test_failed_commands_create_no_outputs(tiny_checkpoint, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"paragraphs": [{"context": "c"}]}]}')  # no 'qas'
    commands = {
        "stats": ["stats", "--data", str(bad), "--out", str(tmp_path / "stats" / "deep")],
        "evaluate": ["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(bad), "--out",
                     str(tmp_path / "ev")],
        "predict": ["predict", "--checkpoint", str(tiny_checkpoint), "--data", str(bad), "--out",
                    str(tmp_path / "pred" / "p.json")],
        "train": ["train", "--train", str(bad), "--out", str(tmp_path / "run"), "--model", str(tiny_checkpoint)],
    }
    for name, args in commands.items():
        assert main(args) == 2, name
        assert "missing 'qas'" in capsys.readouterr().err, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_evaluate_and_stats_print_the_same_answer_counts(tiny_checkpoint, tmp_path, capsys):
    """An empty gold answer is skipped; the terminal says so, and both commands count alike."""
    data = json.loads(SAMPLE.read_text())
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"].append({"text": "", "answer_start": 0})
    path = tmp_path / "one_empty.json"
    path.write_text(json.dumps(data))
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(path)]) == 0
    captured = capsys.readouterr()
    line = f"spokenqa: {path}: 27 questions, 28 answer entries: 27 used, 1 skipped (empty or not in the context)"
    assert line in captured.err.splitlines()
    assert json.loads(captured.out)["reference"]["answers"] == 27
    assert main(["stats", "--data", str(path), "--out", str(tmp_path / "st")]) == 0
    assert line in capsys.readouterr().err.splitlines()


def test_version_is_written_once(capsys):
    """pyproject takes the version from spokenqa.__version__; the CLI and the installed metadata
    report that one."""
    from importlib.metadata import version

    import spokenqa

    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"spokenqa {spokenqa.__version__}" == f"spokenqa {version('spokenqa')}"


@pytest.mark.parametrize(("flags", "message"), [
    (["--batch-size", "-1"], "--batch-size must be positive, got -1"),
    (["--lr", "-1"], "--lr must be > 0, got -1.0"),
    (["--warmup-ratio", "1.5"], "--warmup-ratio must be in [0, 1), got 1.5"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_train_flags_are_checked_before_loading_and_named_as_flags(flags, message, tmp_path):
    """A bad training flag is one line naming the flag and its value, before torch is imported."""
    code = ("import sys; from spokenqa.cli import main; rc = main(sys.argv[1:]); "
            "print('torch' in sys.modules, file=sys.stderr); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "train", "--out", str(tmp_path / "run"), *flags],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[-2] == f"spokenqa: error: {message}" and lines[-1] == "False", lines
    assert not (tmp_path / "run").exists()


def test_train_help_shows_choices_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("{linear,reference}", "{ce,focal}", "{nbest,pipeline,argmax}", "{reference,cpu}",
                  "cpu preset: 0.0003", "cpu preset: 32"):
        assert shown in text, shown


def test_ask_refuses_an_overlong_question_before_loading_and_http_uses_the_same_limit(tmp_path):
    """One rule for the CLI, QA.answer and the HTTP API (data.MAX_QUESTION_CHARS): a question of
    2,300 words is one line, exit 2, before the model or torch loads."""
    from spokenqa.data import MAX_QUESTION_CHARS
    from spokenqa.serve.limits import Limits

    assert Limits().max_question_chars == MAX_QUESTION_CHARS == 500
    code = ("import sys; from spokenqa.cli import main; rc = main(sys.argv[1:]); "
            "print('torch' in sys.modules, file=sys.stderr); sys.exit(rc)")
    question = " ".join(["word"] * 2300)
    done = subprocess.run([sys.executable, "-c", code, "ask", "--question", question, "--context", "a b c"],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[-1] == "False", lines
    assert lines[-2] == ("spokenqa: error: --question: question 1 is 11,499 characters long; a question may have "
                         "at most 500 (the model reads its first 64 tokens)")


def test_ask_audio_shows_the_transcript_and_names_the_formats(tmp_path, capsys, monkeypatch):
    from conftest import ROOT as root

    from spokenqa.audio import asr

    assert main(["ask", "--question", "when was the bridge built", "--audio",
                 str(root / "tests" / "data" / "bridge_1932.wav")]) == 0
    out = capsys.readouterr().out
    default = "pocketsphinx" if asr.whisper_missing() else "whisper"  # --engine auto
    assert out.startswith(f"Transcript ({default}): ") and "nineteen" in out.splitlines()[0]
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio")
    monkeypatch.setattr(asr, "_announced", set())  # a fresh process: auto has said nothing yet
    assert main(["ask", "--question", "q", "--audio", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "not a readable audio file; send WAV, FLAC, OGG or MP3" in err
    assert "ASR engine" not in err  # no engine notice before the error
