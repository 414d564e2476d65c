#!/usr/bin/env bash
# Run every CPU benchmark once, in sequence, logging to bench/out/*.log (JSON results beside).
# WAIT_FOR=FILE waits (polling every 60 s) until FILE exists or until DEADLINE (HH:MM UTC), so the
# measurements start once another job has left the CPUs; the load while measuring is recorded in
# every JSON (machine_at_start / busy_at_start / machine_at_end).
#   WAIT_FOR=runs/experiments.done DEADLINE=03:45 bash bench/run_all.sh
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
for job in ${JOBS:-"bench_eval" "bench_latency --doc-plot" "bench_train" "bench_backends --compile"}; do
    name=${job%% *}
    echo "$(date -u +%T) start $job"
    # shellcheck disable=SC2086
    "$PY" bench/$name.py ${job#"$name"} > "bench/out/$name.log" 2> "bench/out/$name.err"
    echo "$(date -u +%T) end $job: rc=$? load $(cut -d' ' -f1-3 /proc/loadavg)"
done
