"""The README's commands run as written, in the state its set-up leaves (issue 11).

The slow test turns README.md's ```bash and ```python blocks into one bash script, in their
order, and runs it in a scratch folder laid out like a checkout (.venv, src/, tests/, scripts/ and
../shared/data beside it), with `spokenqa` on the PATH as `source .venv/bin/activate` puts it.
Only these parts change, to keep it to tiny inputs and a few minutes:
- the data under ../shared/data are tiny files made from the built-in sample;
- every `train` gets `--model TINY --max-steps 1 --mixed-precision no` appended (a 3-layer random
  BERT with the shipped vocabulary; the last occurrence of a flag wins in argparse);
- `data sample` gets `--questions 5`, `synthesize` `--max-paragraphs 1`;
- `serve` runs in the background on a free port, which the curl lines use instead of 8000, and
  curl gets --fail-with-body so an HTTP error fails the script;
- `bash scripts/install.sh` and `bash .ci/run` are not run (the set-up is what the test runs in;
  .ci/run runs this test): the script checks that they exist; `bash scripts/demo.sh` runs, its
  training demo on the tiny model like every `train`;
- a command whose comment says `# needs: ...` (something the set-up cannot give, e.g. a Ray
  cluster) is not run: the README tells the reader so on that line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE

README = ROOT / "README.md"
BLOCKS = re.compile(r"^```(bash|python)\n(.*?)^```", re.DOTALL | re.MULTILINE)
ACTIVATE = "source .venv/bin/activate"


def _blocks() -> list[tuple[str, str]]:
    return BLOCKS.findall(README.read_text())


def _commands(body: str) -> list[str]:
    """The command lines of a bash block, continuation lines joined."""
    return [c.strip() for c in body.replace("\\\n", " ").splitlines() if c.strip()]


def test_bare_spokenqa_comes_after_the_activation_line():
    """Before the activation line only `.venv/bin/...` works; after it, `spokenqa` is on the PATH."""
    active = False
    for lang, body in _blocks():
        for command in _commands(body) if lang == "bash" else []:
            active = active or command.startswith(ACTIVATE)
            program = command.split()[0]
            if program in ("spokenqa", "accelerate", "python"):
                assert active, f"{command!r} runs before `{ACTIVATE}` in README.md"
    assert active, f"README.md never says `{ACTIVATE}`"


def test_files_the_readme_names_exist():
    text = README.read_text()
    for path in sorted(set(re.findall(r"\b((?:tests|scripts|docs|\.ci)/[\w./-]*\w)", text))):
        assert (ROOT / path).exists(), path


def _adapt(command: str, tiny: Path, port: int, festival: bool) -> str:
    parts = []
    for part in command.split(" && "):
        if part == "bash scripts/demo.sh":  # the main job: the shipped model at work, then the training demo
            parts.append(f"bash scripts/demo.sh --model {tiny} --max-steps 1 --mixed-precision no")
            continue
        if part.startswith("bash "):  # the set-up itself, and CI (which runs this test)
            parts.append(f"test -f {part.split()[1]}")
            continue
        code, _, comment = part.partition("  # ")
        code = code.rstrip()
        if comment.startswith("needs:"):
            code = f": not run  # {comment}"
        elif re.search(r"\bspokenqa train\b", code):
            code += f" --model {tiny} --max-steps 1 --mixed-precision no"
        elif " data sample " in code:
            code += " --questions 5"
        elif code.startswith("spokenqa synthesize"):
            code = code + " --max-paragraphs 1" if festival else ": skipped, no Festival"
        elif code.startswith("spokenqa serve"):
            code = (f"{code} --port {port} --quiet & SERVER=$!; trap 'kill $SERVER' EXIT; "
                    f"for i in $(seq 1200); do curl -sf http://127.0.0.1:{port}/health >/dev/null && break; "
                    "sleep 0.5; done")
        if "curl " in code:
            code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("curl -s ", "curl -s --fail-with-body ")
        parts.append(code)
    return " && ".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_shared_data(data: Path) -> None:
    """The files the README's commands read from $D, made from the built-in sample."""
    sample = json.loads(SAMPLE.read_text())
    for name in ("squad/train-v1.1.json", "spoken-squad/spoken_test-v1.1.json"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE, data / name)
    article = sample["data"][0]
    paragraph = article["paragraphs"][0]
    record = {"order": 0, "title": article["title"], "article_index": 0, "paragraph_index": 0,
              "context": paragraph["context"], "transcript": paragraph["context"], "qas": paragraph["qas"]}
    (data / "synth").mkdir()
    (data / "synth" / "squad_train_festival_sphinx.jsonl").write_text(json.dumps(record) + "\n")


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path, tiny_model_dir):
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("src", "tests", "scripts", ".ci"):
        (work / name).symlink_to(ROOT / name)
    (work / ".venv").symlink_to(Path(sys.prefix))  # the venv this test runs in, as the set-up made it
    _tiny_shared_data(tmp_path / "shared" / "data")
    port, festival = _free_port(), shutil.which("text2wave") is not None
    script = ["set -euxo pipefail"]
    for lang, body in _blocks():
        if lang == "python":
            script.append(f"python - <<'PY'\n{body}PY")
        else:
            script += [_adapt(c, tiny_model_dir, port, festival) for c in _commands(body)]
    (tmp_path / "readme.sh").write_text("\n".join(script) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(tmp_path / "readme.sh")], cwd=work, env=env, capture_output=True,
                          text=True, timeout=3600)
    log = done.stdout + done.stderr
    (tmp_path / "readme.log").write_text(log)
    assert done.returncode == 0, log[-6000:]
    assert "Traceback" not in log, log[-6000:]
    assert (work / "runs" / "demo" / "report.md").is_file() and (work / "runs" / "demo" / "hf" / "config.json").is_file()
    ddp = json.loads((work / "runs" / "ddp" / "summary.json").read_text())  # the DDP line trained
    assert ddp["processes"] == 2 and ddp["steps"] >= 1 and (work / "runs" / "ddp" / "best").is_dir()
