#!/usr/bin/env bash
# Issue 3: the best recipe of scripts/data_experiments.sh (c: spokenised SQuAD + simulated ASR
# noise at rate 0.2), trained longer: QUESTIONS questions, one epoch, at most STEPS steps of 32,
# learning rate LR, evaluated on the whole Spoken-SQuAD test.
# Usage: SPOKENQA_DATA=../shared/data QUESTIONS=19200 STEPS=600 bash scripts/long_run.sh
set -euo pipefail
D=${SPOKENQA_DATA:-../shared/data}
R=${RUNS:-runs}
QUESTIONS=${QUESTIONS:-19200}
STEPS=${STEPS:-600}
LR=${LR:-3e-4}
OUT=${OUT:-$R/long_noise}
SQ=${SPOKENQA:-spokenqa}
/usr/bin/time -v $SQ train --preset cpu --train "$R/data/squad_spoken_noise20.json" \
    --eval "$D/spoken-squad/spoken_test-v1.1.json" --max-train-examples "$QUESTIONS" --epochs 1 \
    --max-steps "$STEPS" --lr "$LR" --checkpoint-every 100 --out "$OUT"
