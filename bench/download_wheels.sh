#!/usr/bin/env bash
# Fetch, on a machine with internet access, every wheel that bench/gpu_check needs on an
# offline GPU machine that already has Python 3.12, pytest and nvidia-ml-py.
# Usage: bench/download_wheels.sh [DEST]   (default: .whl, which git ignores)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
mkdir -p "$dest"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$dest" \
    "Django==5.2.*" asgiref sqlparse "djangorestframework==3.18.*" pytest-django \
    gunicorn blessed jinxed wcwidth nvitop
# gpustat is published as an sdist only: build its (pure-Python) wheel here.
python3 -m pip wheel -q --no-deps -w "$dest" gpustat
ls "$dest"
