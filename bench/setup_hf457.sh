#!/usr/bin/env bash
# Second venv for the Hugging Face side of the benchmarks: transformers 4.57 still ships
# pipeline("question-answering") and the run_qa.py-style Trainer recipe (5.x removed the QA
# pipeline). Same torch as the main venv (2.13.0; on the project machines a CPU wheel on local
# disk) so both sides run the same kernels. Idempotent: reuses the venv, pip skips what is there.
# VENV=/path to choose the folder (default: .venv-hf457 at the repo root); PYTHON=python3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-hf457}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
printf '*\n' > "$VENV/.gitignore"  # keep the venv out of git (the repo's .gitignore names only .venv/)
PIP=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install 'transformers==4.57.*' accelerate datasets psutil 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import torch, transformers, accelerate, datasets; from transformers import pipeline; print('hf457 venv:', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'datasets', datasets.__version__)"
