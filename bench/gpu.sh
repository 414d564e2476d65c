#!/usr/bin/env bash
# Training throughput on a GPU machine (one H100/H200, ~15 minutes of device time, no downloads
# there), like with like: spokenqa's loop and the Hugging Face Trainer recipe (run_qa.py:
# AutoModelForQuestionAnswering) on the same questions of spoken-style data with the same 384-token
# windows, stride 128, linear head (= qa_outputs) and cross-entropy loss, the same batch (8) and
# optimiser settings (the "reference" preset's), at the same precision: fp32 against fp32 and bf16
# against bf16 (SIDES). The difference left is what spokenqa does differently: length-grouped
# batches and dynamic padding instead of every window padded to 384. A separate, labelled row
# (spokenqa-preset) runs the reference preset as it is (512 tokens, MLP head, focal loss, fp32);
# it is not like for like. Runs are capped at SQ_MAX_STEPS / HF_MAX_STEPS steps and the EPOCHS-epoch
# time is projected from the median rate; each side runs REPEATS times, interleaved. Both use the
# shipped MiniLM, packed as fp16 safetensors (loaded back as fp32), since bert-base would not fit
# the 64 MiB upload.
#
#   bash bench/gpu.sh --prepare   # HERE (has PyPI): pack bench/encoder_fp16, bench/gpu_data, bench/gpu_wheels
#   bash bench/gpu.sh             # THERE: the device's python3 (torch + transformers 5.x, no datasets/jiwer)
#   bash bench/gpu.sh --smoke     # here, on CPU, tiny sizes: checks the script end to end
#
# Device call (carry the three ignored folders; they hold ~49 MiB):
#   run(command="PYTHONUNBUFFERED=1 bash bench/gpu.sh 2>&1 | tee $OUT/gpu.log; cp bench/out/bench_train_gpu.json $OUT/",
#       carry=["bench/encoder_fp16", "bench/gpu_data", "bench/gpu_wheels"], timeout_s=600)
# Environment: EXAMPLES (37111), EPOCHS (3), SQ_MAX_STEPS (600), HF_MAX_STEPS (600), REPEATS (3),
# SIDES (spokenqa-fp32,hf-fp32,spokenqa-bf16,hf-bf16,spokenqa-preset), PYTHON (python3). 5 sides x 3 runs
# are 15 fresh processes, each tokenising EXAMPLES questions: not yet timed on a device; if it
# would pass the 600 s limit, lower REPEATS or the step caps, or split SIDES over two calls.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-run}
EXAMPLES=${EXAMPLES:-37111}
EPOCHS=${EPOCHS:-3}
SQ_MAX_STEPS=${SQ_MAX_STEPS:-600}
HF_MAX_STEPS=${HF_MAX_STEPS:-600}
REPEATS=${REPEATS:-3}
SIDES=${SIDES:-spokenqa-fp32,hf-fp32,spokenqa-bf16,hf-bf16,spokenqa-preset}

case "$MODE" in
--prepare)
    PY=${PYTHON:-.venv/bin/python}
    DATA=${DATA:-runs/data/squad_spoken_noise20.json}
    if [ -f "$DATA" ]; then
        "$PY" bench/pack_encoder.py --data "$DATA" --examples "$EXAMPLES"
    else
        echo "gpu.sh: $DATA not found: packing text SQuAD instead (spoken-style data is made by scripts/data_experiments.sh)" >&2
        "$PY" bench/pack_encoder.py --data "${SPOKENQA_DATA:-../shared/data}/squad/train-v1.1.json" --examples "$EXAMPLES"
    fi
    # spokenqa needs jiwer (+ rapidfuzz) which the GPU image lacks: wheels for its Python 3.12
    mkdir -p bench/gpu_wheels
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d bench/gpu_wheels jiwer==4.0.0 'rapidfuzz>=3.9,<4'
    du -sh bench/encoder_fp16 bench/gpu_data bench/gpu_wheels
    exit 0
    ;;
--smoke)
    PY=${PYTHON:-.venv/bin/python}
    [ -f bench/encoder_fp16/model.safetensors ] || "$PY" bench/pack_encoder.py
    # the HF side runs in this venv too (transformers 5.x and no `datasets`, like the GPU image)
    exec "$PY" bench/bench_train.py --preset reference --model bench/encoder_fp16 --examples 40 --epochs 1 \
        --max-steps 3 --hf-max-steps 3 --repeats 1 --sides "${SIDES/,spokenqa-bf16,hf-bf16/}" --hf-python "$PY" \
        --json bench/out/bench_train_gpu_smoke.json
    ;;
run) ;;
*) echo "usage: bash bench/gpu.sh [--prepare|--smoke]" >&2; exit 2 ;;
esac

PY=${PYTHON:-python3}
for need in bench/encoder_fp16/model.safetensors bench/gpu_data/train.json.gz; do
    [ -f "$need" ] || { echo "gpu.sh: $need missing: run 'bash bench/gpu.sh --prepare' here and carry it" >&2; exit 2; }
done
if ls bench/gpu_wheels/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site bench/gpu_wheels/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=true
gunzip -c bench/gpu_data/train.json.gz > /tmp/gpu_train.json
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch, transformers, spokenqa; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
mkdir -p bench/out
"$PY" bench/bench_train.py --preset reference --model bench/encoder_fp16 --train-file /tmp/gpu_train.json \
    --examples "$EXAMPLES" --epochs "$EPOCHS" --max-steps "$SQ_MAX_STEPS" --hf-max-steps "$HF_MAX_STEPS" \
    --repeats "$REPEATS" --sides "$SIDES" --hf-python "$PY" --json bench/out/bench_train_gpu.json
