#!/usr/bin/env bash
# A Python virtual environment with PyTorch, torchvision and Pillow from PyPI, for
# scripts/torch_reference.py, scripts/compare-torch.sh, scripts/compare-loader.sh and
# scripts/imagenet_like.py (never run by CI: the tests do not need PyTorch).
#
#   scripts/torch-venv.sh [DIR]     (default target/torch-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/torch-venv}"
command -v python3 >/dev/null || { echo "torch-venv.sh: needs python3 (apt-get install python3-venv)" >&2; exit 2; }
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --upgrade pip
"$dir/bin/pip" install --quiet torch torchvision pillow numpy
"$dir/bin/python3" -c 'import torch; print(f"torch {torch.__version__} in '"$dir"'")'
