#!/usr/bin/env bash
# The README's first command: get Fashion-MNIST (Debian package), train a slimmable
# ResNet-20 for one epoch on CPU, evaluate every width and plot accuracy against MACs.
# Works as root and as a user with sudo; a fresh machine's package lists are empty, so
# they are updated before the install.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi

out=${1:-runs/quick}
cargo run --release -- train models/resnet20.slim --epochs 1 --out "$out"
cargo run --release -- eval "$out" --widths 0.25:1.0:0.125 --plot "$out/pareto.svg"
