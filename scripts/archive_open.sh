#!/usr/bin/env bash
# Issue 19's benchmark, "open Spoken-SQuAD" (docs/ARCHIVE.md): the 2,067 test paragraphs in one
# archive, the first N test questions asked of the whole archive with BM25, dense and hybrid
# retrieval, the closed setting (each question's own paragraph given) beside them; then refusal:
# an archive of half the test articles (the even ones), asked N/2 questions of its own half and
# N/2 of the other half (whose answers are not in it).
# Usage: SPOKENQA_DATA=../shared/data N=500 OUT=runs/archive-open bash scripts/archive_open.sh
# (each step is skipped when its output exists; MODES="hybrid" runs one retrieval mode)
set -euo pipefail
D=${SPOKENQA_DATA:-../shared/data}
TEST=$(realpath "$D/spoken-squad/spoken_test-v1.1.json")
OUT=${OUT:-runs/archive-open}
N=${N:-500}
SQ=${SPOKENQA:-spokenqa}
mkdir -p "$OUT"
lscpu | grep "Model name" > "$OUT/machine.txt"
[ -f "$OUT/test.sqlite" ] || $SQ index build "$OUT/test.sqlite" "$TEST" --threads 1 --no-progress
for mode in ${MODES:-bm25 dense hybrid}; do
    [ -f "$OUT/$mode/metrics.json" ] || \
        $SQ evaluate --index "$OUT/test.sqlite" --data "$TEST" --mode "$mode" --max-eval-examples "$N" --out "$OUT/$mode"
done
[ -f "$OUT/closed/metrics.json" ] || $SQ evaluate --data "$TEST" --max-eval-examples "$N" --out "$OUT/closed"

# refusal: even articles in the archive (a copy of the whole one, less the odd articles' paragraphs)
python3 - "$TEST" "$OUT" <<'EOF'
import json, sys
test, out = sys.argv[1], sys.argv[2]
data = json.load(open(test))
for name, keep in (("even", 0), ("odd", 1)):
    json.dump({"version": data.get("version", "1.1"), "data": data["data"][keep::2]}, open(f"{out}/{name}.json", "w"))
with open(f"{out}/odd_paragraphs.txt", "w") as f:
    for a in range(1, len(data["data"]), 2):
        for p in range(len(data["data"][a]["paragraphs"])):
            f.write(f"{test}#{a}/{p}\n")
EOF
if [ ! -f "$OUT/half.sqlite" ]; then
    cp "$OUT/test.sqlite" "$OUT/half.tmp.sqlite"
    xargs -d '\n' $SQ index remove "$OUT/half.tmp.sqlite" < "$OUT/odd_paragraphs.txt"
    mv "$OUT/half.tmp.sqlite" "$OUT/half.sqlite"
fi
for half in even odd; do
    [ -f "$OUT/refusal_$half/metrics.json" ] || \
        $SQ evaluate --index "$OUT/half.sqlite" --data "$OUT/$half.json" --max-eval-examples $((N / 2)) \
            --out "$OUT/refusal_$half"
done
uptime
