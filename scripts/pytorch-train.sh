#!/usr/bin/env bash
# Using slimc from PyTorch, end to end: emits ResNet-20 (Fashion-MNIST's 1x28x28 input) as
# a PyTorch module, trains it with a plain PyTorch loop (the US-Nets sandwich rule,
# scripts/pytorch_train.py), then evaluates the saved weights back in slimc at every width
# (`slimc eval FILE.slim --init`). Both print test top-1 per width, BN calibrated per width
# by each.
#
#   bash scripts/pytorch-train.sh [STEPS]      (default 400; OUT=DIR for the files)
#
# Needs PyTorch, safetensors and numpy: PYTHON names an interpreter that has them
# (default: the venv scripts/torch-venv.sh makes, else CI's target/ci-python).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-400}"
out="${OUT:-runs/pytorch-resnet20}"
data=/usr/share/datasets/fashion-mnist
python="${PYTHON:-}"
if [ -z "$python" ]; then
    for p in target/torch-venv/bin/python3 target/ci-python/bin/python3; do
        [ -x "$p" ] && python="$p" && break
    done
fi
[ -n "$python" ] && "$python" -c 'import torch, safetensors, numpy' 2>/dev/null || {
    echo "needs PyTorch, safetensors and numpy: set PYTHON, or run scripts/torch-venv.sh" >&2
    exit 2
}
[ -d "$data" ] || { echo "needs $data: apt-get install dataset-fashion-mnist" >&2; exit 2; }
cargo build --release --quiet
mkdir -p "$out"
target/release/slimc emit models/resnet20.slim --target pytorch --set in_channels=1 --set size=28 \
    -o "$out/resnet20.py"
"$python" scripts/pytorch_train.py "$out/resnet20.py" "$data" "$out/weights.safetensors" --steps "$steps" \
    | tee "$out/pytorch.log"
target/release/slimc eval models/resnet20.slim --init "$out/weights.safetensors" --data fashion-mnist \
    --widths 0.25,0.5,0.75,1.0 | tee "$out/slimc.log"
