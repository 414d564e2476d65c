#!/usr/bin/env bash
# The main job on the embedded default (the README's first set-up command runs this after
# scripts/install.sh). Each command is printed before it runs:
#   1. the shipped model answers questions over a transcript from the built-in sample;
#   2. the shipped model is scored on the built-in sample (27 questions, both metric families);
#   3. the training demo: the shipped encoder fine-tuned on the built-in sample and evaluated on
#      it, a full run folder in runs/demo (rebuilt at each run), its scores printed at the end
#      (epoch 0: the untrained head, --baseline).
# Steps 1-2 take seconds; step 3 a few minutes on 2 CPU cores. Arguments go to step 3's
# `spokenqa train` (the last occurrence of a flag wins), e.g. `bash scripts/demo.sh --epochs 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
SQ=${SPOKENQA:-.venv/bin/spokenqa}
run() {  # print the command as a user would type it (quoted where needed), then run it
    local shown="\$ spokenqa" a
    for a in "$@"; do case $a in *" "*) shown+=" \"$a\"" ;; *) shown+=" $a" ;; esac; done
    printf '\n%s\n' "$shown"
    "$SQ" "$@"
}

run ask --question "when was the harbor lighthouse built" --question "who built the lighthouse" \
    --question "how far could the lamp be seen" --context "the old harbor lighthouse was built in \
eighteen seventy two by a local stone mason named thomas reed. it stands forty one meters tall and its \
lamp could be seen from twenty miles at sea. the light was automated in nineteen sixty five."
run evaluate
rm -rf runs/demo
run train --out runs/demo --epochs 6 --batch-size 8 --baseline "$@"
