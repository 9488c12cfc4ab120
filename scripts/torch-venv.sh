#!/usr/bin/env bash
# A Python virtual environment with PyTorch, torchvision, Pillow and safetensors from PyPI,
# for scripts/torch_reference.py, scripts/compare-torch.sh, scripts/compare-loader.sh,
# scripts/imagenet_like.py and scripts/pytorch-train.sh (CI installs PyTorch in its own
# venv, target/ci-python, for tests/pytorch.rs).
#
#   scripts/torch-venv.sh [DIR]     (default target/torch-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/torch-venv}"
command -v python3 >/dev/null || { echo "torch-venv.sh: needs python3 (apt-get install python3-venv)" >&2; exit 2; }
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --upgrade pip
"$dir/bin/pip" install --quiet torch torchvision pillow numpy safetensors
"$dir/bin/python3" -c 'import torch; print(f"torch {torch.__version__} in '"$dir"'")'
