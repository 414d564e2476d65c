"""Every data-reading command over every case of the bad-input corpus (tests/data/bad/cases.json).

Bad input must end with exit status 2 and exactly one stderr line naming the file and the place,
never a traceback, and must not touch what an earlier good run wrote. Content problems a user can
live with (a wrong answer_start, an empty answer, unicode, a long question, a huge context) must
work and be counted in the command's report.

Runs in-process through `spokenqa.cli.main` (a subprocess costs ~4 s of imports here); a few
cases also run as `python -m spokenqa` subprocesses. Figures are stubbed out (test_train.py
covers them); torch runs on one thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from spokenqa.cli import main
from spokenqa.data import load_squad

BAD = Path(__file__).parent / "data" / "bad"
MANIFEST = json.loads((BAD / "cases.json").read_text(encoding="utf-8"))
CASES = {c["file"]: c for c in MANIFEST["cases"]}
COMMANDS = MANIFEST["commands"]
LOADERS = ("train", "train-eval", "evaluate", "predict", "stats")
GOOD = BAD / "utf8_bom.json"
SMALL = ["--max-length", "128", "--doc-stride", "32", "--max-question-tokens", "16"]


def expectation(case: dict, command: str) -> dict:
    if command in case.get("commands", {}):
        return case["commands"][command]
    return case["expect"] if command in LOADERS else case.get("data", case["expect"])


def _generate(kind: str, path: Path) -> None:
    ctx_words = ["the", "of", "and", "a", "to", "in", "was", "river", "city", "its"]
    if kind == "huge_context":
        rng = random.Random(0)
        words = [rng.choice(ctx_words) for _ in range(100_000)]
        words[60_000] = "Rollo"
        context = " ".join(words)
        qa = {"id": "huge-1", "question": "Who led them?",
              "answers": [{"text": "Rollo", "answer_start": context.index("Rollo")}]}
        path.write_text(json.dumps({"data": [{"title": "Huge", "paragraphs": [{"context": context, "qas": [qa]}]}]}))
    elif kind == "deep_nesting":
        path.write_text('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}")
    elif kind == "lone_surrogate":
        context = "The Normans \ud800 were led by Rollo."
        qa = {"id": "s-1", "question": "Who?", "answers": [{"text": "Rollo", "answer_start": context.index("Rollo")}]}
        path.write_text(json.dumps({"data": [{"title": "S", "paragraphs": [{"context": context, "qas": [qa]}]}]}))
        assert "\\ud800" in path.read_text()
    elif kind == "folder":
        path.mkdir()
    elif kind != "missing":
        raise AssertionError(kind)


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_dir):
    """Tiny checkpoint, generated cases, one-thread torch, no figures; previous outputs lazily."""
    import torch

    from spokenqa.checkpoint import save_checkpoint
    from spokenqa.config import preset
    from spokenqa.model import build_model

    root = tmp_path_factory.mktemp("bad")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setattr("spokenqa.report._hist", lambda *a, **k: None)
    mp.setattr("spokenqa.report._curve", lambda *a, **k: None)
    cfg = preset("cpu").replace(model=str(tiny_model_dir), mixed_precision="no", max_length=128, doc_stride=32,
                                max_question_tokens=16, eval_batch_size=256)
    model, tokenizer = build_model(cfg)
    save_checkpoint(root / "ckpt", model, tokenizer, cfg, {"epoch": 0})
    generated = root / "generated"
    generated.mkdir()
    for case in MANIFEST["cases"]:
        if "generate" in case:
            _generate(case["generate"], generated / case["file"])
    # Two cases through `python -m spokenqa`, run in the background while the in-process ones go.
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    child_env.pop("SPOKENQA_DEBUG", None)
    runs = [(["train", "--train", str(generated / "deep_nesting.json"), "--model", str(tiny_model_dir),
              "--out", str(root / "sub-train")], generated / "deep_nesting.json"),
            (["data", "sample", str(BAD / "wrong_shape_list.json"), str(root / "sub.json"), "--questions", "1"],
             BAD / "wrong_shape_list.json")]
    subprocesses = [(subprocess.Popen([sys.executable, "-m", "spokenqa", *args], env=child_env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE), data) for args, data in runs]
    yield {"root": root, "model": tiny_model_dir, "ckpt": root / "ckpt", "generated": generated, "previous": {},
           "subprocesses": subprocesses}
    for proc, _ in subprocesses:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    mp.undo()
    torch.set_num_threads(threads)


def case_path(env, case: dict) -> Path:
    return (env["generated"] if "generate" in case else BAD) / case["file"]


def argv(env, command: str, data: Path, out: Path) -> list[str]:
    """The command line; `out` is a folder holding everything the command writes."""
    model, ckpt = str(env["model"]), str(env["ckpt"])
    train = ["--model", model, "--out", str(out / "run"), "--epochs", "1", "--max-steps", "1", "--batch-size", "2",
             "--mixed-precision", "no", "--threads", "1", *SMALL]
    return {
        "train": ["train", "--train", str(data), *train],
        "train-eval": ["train", "--train", str(GOOD), "--eval", str(data), *train],
        "evaluate": ["evaluate", "--checkpoint", ckpt, "--data", str(data), "--out", str(out / "eval")],
        "predict": ["predict", "--checkpoint", ckpt, "--data", str(data), "--out", str(out / "predictions.json")],
        "stats": ["stats", "--data", str(data), "--out", str(out / "stats"), "--model", model],
        "spokenize": ["data", "spokenize", str(data), str(out / "out.json"), "--stats", str(out / "summary.json")],
        "noise": ["data", "noise", str(data), str(out / "out.json"), "--noise-rate", "0.2",
                  "--stats", str(out / "summary.json")],
        "sample": ["data", "sample", str(data), str(out / "out.json"), "--questions", "1",
                   "--stats", str(out / "summary.json")],
    }[command]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def previous_output(env, command: str, capsys) -> Path:
    """The output folder of one good run of `command`, shared by the failing runs that follow."""
    if command not in env["previous"]:
        out = env["root"] / "previous" / command
        code, _, err = run(argv(env, command, GOOD, out), capsys)
        assert code == 0, err
        env["previous"][command] = out
    return env["previous"][command]


def _report(command: str, out: Path) -> tuple[dict, dict] | None:
    """(loader counts, alignment counts) as the command reports them; None where it reports none."""
    if command == "train":
        stats = json.loads((out / "run" / "data_stats.json").read_text())
        return stats["train"][0], stats["train_alignment"]
    if command == "train-eval":
        stats = json.loads((out / "run" / "data_stats.json").read_text())
        return stats["eval"], stats["eval_alignment"]
    if command == "evaluate":
        metrics = json.loads((out / "eval" / "metrics.json").read_text())
        return metrics["data"], metrics["alignment"]
    if command == "stats":
        stats = json.loads((out / "stats" / "stats.json").read_text())
        return stats["data"], stats["alignment"]
    return None


def _check_good(command: str, exp: dict, data: Path, out: Path) -> None:
    if command in LOADERS:
        report = _report(command, out)
        if report is not None:
            counts, alignment = report
            assert {k: counts[k] for k in exp.get("repair", {})} == exp.get("repair", {})
            assert {k: alignment[k] for k in exp.get("alignment", {})} == exp.get("alignment", {})
        if command == "predict":  # one answer, taken from its own context, for every question kept
            examples, _ = load_squad(data, require_answers=False)
            predictions = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
            assert sorted(predictions) == sorted(e.id for e in examples)
            assert all(predictions[e.id] in e.context for e in examples)
        return
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("spokenize", "noise"):
        if command == key and key in exp:
            assert {k: summary[key][k] for k in exp[key]} == exp[key]
    written = json.loads((out / "out.json").read_text(encoding="utf-8"))
    if command != "sample":  # sample copies answers as they are; spokenize and noise re-place them
        for article in written["data"]:
            for par in article["paragraphs"]:
                for qa in par["qas"]:
                    for a in qa["answers"]:
                        start = a["answer_start"]
                        assert par["context"][start : start + len(a["text"])] == a["text"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", list(CASES))
def test_case(env, name, command, capsys):
    case = CASES[name]
    exp = expectation(case, command)
    data = case_path(env, case)
    if exp["status"] == 0:
        out = env["root"] / "good" / f"{name}-{command}"
        code, stdout, stderr = run(argv(env, command, data, out), capsys)
        assert code == 0, stderr[-2000:]
        assert "Traceback" not in stdout + stderr and "internal error" not in stderr
        _check_good(command, exp, data, out)
        return
    if command == "train" or command == "train-eval":
        out = env["root"] / "bad" / f"{name}-{command}"
        before = None
    else:
        out = previous_output(env, command, capsys)
        before = snapshot(out)
    code, stdout, stderr = run(argv(env, command, data, out), capsys)
    lines = stderr.splitlines()
    assert code == exp["status"] == 2, stderr[-2000:]
    assert "Traceback" not in stdout + stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"spokenqa: error: {data}: "), lines[0]
    assert exp["error"] in lines[0], lines[0]
    if before is not None:
        assert snapshot(out) == before, "a failing run changed the output of an earlier good run"
    else:  # a failed train leaves no half run behind: retrying into the same folder must work
        run_dir = out / "run"
        assert not run_dir.exists() or not any(run_dir.iterdir()), sorted(run_dir.iterdir())


def test_manifest_covers_the_corpus():
    committed = {p.name for p in BAD.glob("*.json")} - {"cases.json"}
    listed = {c["file"] for c in MANIFEST["cases"] if "generate" not in c}
    assert committed == listed
    assert len(MANIFEST["cases"]) >= 30 and set(COMMANDS) == {*LOADERS, "spokenize", "noise", "sample"}


def test_as_subprocesses_no_traceback(env):
    """The real entry point: status 2, one line, no traceback (started in the background by `env`)."""
    for proc, data in env["subprocesses"]:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, stderr
        assert "Traceback" not in stdout + stderr
        assert len(stderr.splitlines()) == 1 and stderr.startswith(f"spokenqa: error: {data}: "), stderr
