#!/usr/bin/env bash
# Issue 10: train the release model (the one spokenqa ships), seeded end to end.
#
# Data: SQuAD v1.1 train, minus the 1,008 paragraphs of the Festival+Sphinx synth set (held out:
# they are the validation set, real ASR output), spokenised (digits as words, lower case) with
# simulated ASR noise at word error rate 0.2, seed 0. Validation: the synth set's questions whose
# answers align into its transcripts. The Spoken-SQuAD test is NOT used here: it is scored once,
# on the final model (docs/MODEL.md).
#
# Training: the `cpu` preset (shipped MiniLM, windows 384 / stride 128, AdamW 3e-4, 10% warm-up,
# linear decay, batch 32, seed 42), 2 epochs, validation every 500 steps and at each epoch end.
#
# The run takes hours on a CPU. Run it again to continue: it resumes from runs/release/last.
# Ctrl-C (SIGINT) saves a checkpoint and stops. Once the run has finished, running the script
# again chooses the answer cap on the validation set and exports runs/release/best to
# src/spokenqa/release_model (SHIP=DIR elsewhere), the model spokenqa ships. Usage:
#   SPOKENQA_DATA=../shared/data bash scripts/release_model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
D=${SPOKENQA_DATA:-../shared/data}
R=${RUNS:-runs}
OUT=${OUT:-$R/release}
SQ=${SPOKENQA:-.venv/bin/spokenqa}
SYNTH=$D/synth/squad_train_festival_sphinx.jsonl

mkdir -p "$R/data"
if [ ! -f "$R/data/release_train.json" ]; then
    $SQ data holdout "$D/squad/train-v1.1.json" "$R/data/squad_train_minus_synth.json" --synth "$SYNTH"
    $SQ data spokenize "$R/data/squad_train_minus_synth.json" "$R/data/release_train.json" \
        --noise-rate 0.2 --seed 0
fi
[ -f "$R/data/synth_val.json" ] || $SQ data convert-synth "$SYNTH" "$R/data/synth_val.json"

# jemalloc (Debian package libjemalloc2), when present, serves the allocations of each step from
# memory it keeps, where glibc's malloc hands every large block back to the kernel and faults it in
# again at the next step. Seen on 2026-12-02 (Intel Xeon, AVX-512 BF16 + AMX, 2 cores, nothing else
# running): 4.0 s/step with glibc after 25 minutes of this run, 1.9 s/step after resuming it under
# jemalloc, with the process's system time down from 22% to 3% of its CPU time.
JEMALLOC=$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2 2>/dev/null | head -n 1 || true)
if [ -n "$JEMALLOC" ] && [ -z "${LD_PRELOAD:-}" ]; then
    export LD_PRELOAD=$JEMALLOC
    export MALLOC_CONF=${MALLOC_CONF:-background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1}
fi

if grep -qs '"status": "finished"' "$OUT/summary.json"; then
    # Decoding is chosen after training, on the validation set (never the test): the answer cap
    # with the best official F1 there travels with the exported weights (fp16, HF layout).
    PY=${PYTHON:-.venv/bin/python}
    "$PY" scripts/choose_decoding.py "$R/data/synth_val.json" --checkpoint "$OUT/best" | tee "$OUT/decoding.md"
    CAP=$(awk -F'|' '/[*][*]best[*][*]/ {gsub(/ /, "", $3); print $3}' "$OUT/decoding.md")
    $SQ export "$OUT/best" "${SHIP:-src/spokenqa/release_model}" --max-answer-tokens "$CAP"
    exit 0
fi
if [ -f "$OUT/last/training_state.pt" ]; then
    exec $SQ train --resume --out "$OUT"
fi
exec $SQ train --train "$R/data/release_train.json" --eval "$R/data/synth_val.json" --out "$OUT" \
    --epochs 2 --eval-every 500 --checkpoint-every 100 --seed 42
