#!/usr/bin/env bash
# On a device machine (one GPU): GRPO on the built-in model in bf16 through TRL; steps/s, the share of rollout time
# outside the model, and whether the training code runs on the device's torch. Under 8 minutes.
# Prepare here: bash benchmarks/gpu_wheels.sh; then run on the device with .whl carried:
#   bash benchmarks/gpu_check.sh            (results in $OUT/gpu_check.json when $OUT is set)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
timeout 450 python3 benchmarks/gpu_check.py --json "${OUT:-/tmp}/gpu_check.json" "$@"
