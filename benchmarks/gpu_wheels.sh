#!/usr/bin/env bash
# Here (with network to the package index): fetch the wheels a device machine lacks into .whl/ (about 4.4 MB).
# The device has torch, transformers, accelerate, peft, pyarrow, pandas and Python 3.12, but no TRL, datasets or
# this project's own small dependencies, and it cannot fetch anything. Then on the device: bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pydantic==2.13.4 pydantic-core==2.46.4 \
    annotated-types==0.8.0 typing-inspection==0.4.5 lark==1.3.1
ls -l .whl
