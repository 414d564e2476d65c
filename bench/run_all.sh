#!/usr/bin/env bash
# Every CPU benchmark in one sitting, in sequence, logging to bench/out/<job>.log and .err (JSON
# results beside): the equal-precision numbers in README.md and docs/BENCHMARKS.md come from one
# such run on an idle machine. About 2 hours on 2 cores with native bf16 (training throughput
# ~25 min, training quality at equal steps ~30 min, whole-test eval ~25 min, latency ~5 min,
# forward-pass backends ~5 min, ONNX Runtime ~25 min); less without bf16, where the bf16 sides
# are skipped. WAIT_FOR=FILE waits (polling every 60 s) until FILE exists or until DEADLINE
# (HH:MM UTC), so the measurements start once another job has left the CPUs; the load while
# measuring is recorded in every JSON (machine_at_start / busy_at_start / machine_at_end).
#   bash bench/run_all.sh
#   WAIT_FOR=runs/experiments.done DEADLINE=03:45 bash bench/run_all.sh
#   JOBS="bench_eval" bash bench/run_all.sh      # one job
#   JOBS="bench_eval;bench_latency --doc-plot" bash bench/run_all.sh   # several, ';' between them
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p bench/out
if [ -n "${WAIT_FOR:-}" ]; then
    deadline=$(date -u -d "${DEADLINE:-23:59}" +%s)
    while [ ! -e "$WAIT_FOR" ] && [ "$(date -u +%s)" -lt "$deadline" ]; do sleep 60; done
    if [ -e "$WAIT_FOR" ]; then echo "$(date -u +%T) $WAIT_FOR exists: measuring"; else echo "$(date -u +%T) deadline reached, $WAIT_FOR still missing: measuring under load"; fi
fi
uptime
IFS=';' read -r -a jobs <<< "${JOBS:-bench_train;bench_train --quality --json bench/out/bench_train_quality.json;bench_eval;bench_latency --doc-plot;bench_backends --compile;bench_onnx}"
for job in "${jobs[@]}"; do
    name=${job%% *}
    log=$name
    case "$job" in *--quality*) log=${name}_quality ;; esac
    echo "$(date -u +%T) start $job"
    # shellcheck disable=SC2086
    "$PY" bench/$name.py ${job#"$name"} > "bench/out/$log.log" 2> "bench/out/$log.err"
    rc=$?
    echo "$(date -u +%T) end $job: rc=$rc load $(cut -d' ' -f1-3 /proc/loadavg)"
done
