#!/usr/bin/env bash
# Reproduces the README's head-slimming measurement (HydraViT / MatFormer style):
# models/vit_fmnist.slim trained once with the US scheme, which slims every block's heads
# (whole heads, a prefix), its MLP width and the embedding together, then evaluated with
# 1, 2, 3 and 4 heads (widths 0.25, 0.5, 0.75, 1.0), next to four ViTs of those sizes
# trained separately for the same epochs and seed. Prints one Markdown table and draws
# the plot.
# Usage: scripts/compare-heads.sh [EPOCHS] [OUT] [PLOT]
#        (defaults: 3 epochs, runs/heads, docs/vit-heads-fashion-mnist.svg)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
out=${2:-runs/heads}
plot=${3:-docs/vit-heads-fashion-mnist.svg}
. scripts/runs.sh
model=models/vit_fmnist.slim
widths=(0.25 0.5 0.75 1.0)
train "$model" us --scheme us
for w in "${widths[@]}"; do
    train "$model" "fixed-$w" --scheme fixed --width "$w"
done
"$slimc" eval "$out/us" --widths 0.25,0.5,0.75,1.0 \
    --baseline "$out/fixed-0.25" "$out/fixed-0.5" "$out/fixed-0.75" "$out/fixed-1.0" \
    --plot "$plot" --json >"$out/eval.json"
python3 - "$out/eval.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
us = {r["width"]: r for r in results if r["series"] == "slimmable"}
fixed = {r["width"]: r for r in results if r["series"] != "slimmable"}
print("| heads (width) | embedding, MLP | MACs | params | US, trained once | trained separately | difference |")
print("|---|---|---|---|---|---|---|")
for w in sorted(us):
    u, f = us[w], fixed[w]
    heads = round(4 * w)
    emb, mlp = u["channels"][0], u["channels"][2]
    d = 100 * (u["top1"] - f["top1"])
    print(f"| {heads} ({w}) | {emb}, {mlp} | {u['macs'] / 1e6:.2f}M | {u['params'] / 1e3:.1f}K "
          f"| {100 * u['top1']:.2f}% | {100 * f['top1']:.2f}% | {d:+.2f} |")
PY
echo "plot: $plot"
