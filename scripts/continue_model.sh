#!/usr/bin/env bash
# Continued training of the shipped model: fresh simulated ASR noise and passages without the
# answer, in one run that serves both the accuracy work (new noise, a lower learning rate, weight
# snapshots to average) and the archive reader (it must learn "the answer is not in this passage").
#
# Data: SQuAD v1.1 train minus the Festival+Sphinx synth paragraphs (held out for validation, as
# for the shipped model), spokenised with simulated ASR noise at WER 0.2 under two fresh seeds
# (1 and 2; the shipped model saw seed 0), each with SQuAD 2.0-style negatives: for half of the
# questions a copy on the most similar other paragraph of the article, labelled at [CLS]
# (`spokenqa data negatives --rate 0.5`). Validation: the synth set (real ASR), as before. The
# Spoken-SQuAD test is not used here.
#
# Training: from the shipped weights (`--init-from shipped`), peak learning rate 1e-4 (the shipped
# run's was 3e-4 and decayed to 0), 5% warm-up, linear decay, 2,400 steps of 32 windows over the
# shuffled union of both draws; validation every 400 steps; a weight snapshot every 200 steps
# (snapshots/) for averaging. Resumable: run the script again (Ctrl-C or SIGINT saves and stops).
#   SPOKENQA_DATA=../shared/data bash scripts/continue_model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
D=${SPOKENQA_DATA:-../shared/data}
R=${RUNS:-runs}
OUT=${OUT:-$R/continued}
SQ=${SPOKENQA:-.venv/bin/spokenqa}
SYNTH=$D/synth/squad_train_festival_sphinx.jsonl

mkdir -p "$R/data"
[ -f "$R/data/squad_train_minus_synth.json" ] ||
    $SQ data holdout "$D/squad/train-v1.1.json" "$R/data/squad_train_minus_synth.json" --synth "$SYNTH"
[ -f "$R/data/synth_val.json" ] || $SQ data convert-synth "$SYNTH" "$R/data/synth_val.json"
for seed in 1 2; do
    if [ ! -f "$R/data/cont_s${seed}_neg.json" ]; then
        $SQ data spokenize "$R/data/squad_train_minus_synth.json" "$R/data/cont_noise_s$seed.json" \
            --noise-rate 0.2 --seed "$seed"
        $SQ data negatives "$R/data/cont_noise_s$seed.json" "$R/data/cont_s${seed}_neg.json" --rate 0.5 --seed "$seed"
    fi
done

# jemalloc, when installed (scripts/setup_debian.sh), as in scripts/release_model.sh, but handing
# memory back after 10 s unused: with release_model.sh's "never" (decay -1) this run, over twice
# the release run's data, grew to 19.9 GB at its first evaluation and was killed for memory on a
# 24 GB machine (2026-12-05).
JEMALLOC=$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2 2>/dev/null | head -n 1 || true)
if [ -n "$JEMALLOC" ] && [ -z "${LD_PRELOAD:-}" ]; then
    export LD_PRELOAD=$JEMALLOC
    export MALLOC_CONF=${MALLOC_CONF:-background_thread:true,metadata_thp:auto,dirty_decay_ms:10000,muzzy_decay_ms:10000}
fi

if [ -f "$OUT/last/training_state.pt" ]; then
    exec $SQ train --resume --out "$OUT"
fi
exec $SQ train --init-from shipped --train "$R/data/cont_s1_neg.json" --train "$R/data/cont_s2_neg.json" \
    --eval "$R/data/synth_val.json" --out "$OUT" --epochs 1 --max-steps 2400 --lr 1e-4 --warmup-ratio 0.05 \
    --max-answer-tokens 30 --eval-every 400 --checkpoint-every 100 --snapshot-every 200 --seed 43 \
    --baseline --keep-resume-state
