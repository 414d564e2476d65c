#!/usr/bin/env bash
# After scripts/continue_model.sh: score each candidate on the VALIDATION set (the Festival+Sphinx
# synth set held out of training; never the Spoken-SQuAD test) so that the ship decision is made
# on validation alone: the run's last weights, the mean of its last snapshots (2, 3 and 4 of them)
# and the shipped model. One `spokenqa evaluate` per candidate, torch backend (the precision the
# run's own evaluations used on this CPU), answer cap 30 as shipped; prints one Markdown row each.
#   bash scripts/choose_continued.sh            (RUN=runs/continued, VAL=runs/data/synth_val.json)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/continued}
VAL=${VAL:-runs/data/synth_val.json}
SQ=${SPOKENQA:-.venv/bin/spokenqa}
OUT=$RUN/choose
mkdir -p "$OUT"
mapfile -t SNAPS < <(ls -d "$RUN"/snapshots/step_* | sort -t_ -k2 -n)
candidates=("last=$RUN/last" "shipped=")
for n in 2 3 4; do
    picked=("${SNAPS[@]: -$n}")
    name="mean_last_$n"
    [ -f "$OUT/$name/model.safetensors" ] || $SQ average "${picked[@]}" --out "$OUT/$name" >/dev/null
    candidates+=("$name=$OUT/$name")
    echo "mean of $(basename -a "${picked[@]}" | tr '\n' ' ')" > "$OUT/$name.what"
done
echo "| candidate | what | official EM | official F1 | ref F1 | seconds |"
echo "|---|---|---|---|---|---|"
for c in "${candidates[@]}"; do
    name=${c%%=*}; ckpt=${c#*=}
    if [ ! -f "$OUT/$name/eval/metrics.json" ]; then
        start=$(date +%s)
        $SQ evaluate --data "$VAL" ${ckpt:+--checkpoint "$ckpt"} --backend torch --max-answer-tokens 30 \
            --out "$OUT/$name/eval" >/dev/null
        echo $(( $(date +%s) - start )) > "$OUT/$name/eval/seconds"
    fi
    what=$([ "$name" = shipped ] && echo "src/spokenqa/release_model" || cat "$OUT/$name.what" 2>/dev/null || echo "$ckpt")
    python3 - "$OUT/$name/eval/metrics.json" "$name" "$what" "$(cat "$OUT/$name/eval/seconds")" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
o, r = m["official"], m["reference"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {o['exact_match']:.2f} | {o['f1']:.2f} | {r['f1']:.4f} | {sys.argv[4]} |")
PY
done
