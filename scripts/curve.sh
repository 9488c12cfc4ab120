#!/usr/bin/env bash
# Reproduces the README's accuracy-vs-MACs curve: ResNet-20 on Fashion-MNIST, trained
# once with the US-Nets scheme and once per fixed width, then evaluated together.
# Usage: scripts/curve.sh [EPOCHS] [OUT]   (defaults: 2 epochs, runs/curve)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-2}
out=${2:-runs/curve}
slimc=./target/release/slimc
cargo build --release --quiet
"$slimc" train models/resnet20.slim --scheme us --epochs "$epochs" --out "$out/us" --quiet
for w in 0.25 0.5 0.75 1.0; do
    "$slimc" train models/resnet20.slim --scheme fixed --width "$w" --epochs "$epochs" --out "$out/fixed-$w" --quiet
done
"$slimc" eval "$out/us" --widths 0.25:1.0:0.125 \
    --baseline "$out/fixed-0.25" "$out/fixed-0.5" "$out/fixed-0.75" "$out/fixed-1.0" \
    --plot "$out/pareto.svg" | tee "$out/eval.txt"
