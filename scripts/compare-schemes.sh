#!/usr/bin/env bash
# Reproduces the README's scheme comparison: ResNet-20 on Fashion-MNIST, the same epochs and
# seed for each run. US-Nets at uniform widths, US-Nets + AutoSlim search at 3 MAC targets,
# Joslim's pool, and fixed-width baselines; test top-1 at matched MACs, each Pareto front
# and the area under it (same MAC bounds for all), and one plot.
# Usage: scripts/compare-schemes.sh [EPOCHS] [OUT] [PLOT]
#        (defaults: 1 epoch, runs/schemes, docs/schemes-fashion-mnist.svg)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-1}
out=${2:-runs/schemes}
plot=${3:-docs/schemes-fashion-mnist.svg}
. scripts/runs.sh
model=models/resnet20.slim
train "$model" us --scheme us
train "$model" joslim --scheme joslim
for w in 0.25 0.5 0.75 1.0; do
    train "$model" "fixed-$w" --scheme fixed --width "$w"
done
# AutoSlim with 4-channel steps and 4 validation batches per candidate (about 30 iterations
# of 12 candidates on this network; the defaults take 3x longer).
"$slimc" search "$out/us" --targets 75%,50%,25% --step 4 --val-batches 4 --calibrate 3 \
    --out "$out/us/search.json" --quiet
# Every front's area is taken over the same range: 0.25 uniform width to full width.
"$slimc" eval "$out/us" --pareto "$out/us/pareto.json" --json >"$out/us-uniform.json"
"$slimc" eval "$out/us" --configs "$out/us/search.json" --pareto "$out/us/pareto-search.json" \
    --json >"$out/us-search.json"
"$slimc" eval "$out/joslim" --pareto "$out/joslim/pareto.json" \
    --baseline "$out/fixed-0.25" "$out/fixed-0.5" "$out/fixed-0.75" "$out/fixed-1.0" \
    --overlay "$out/us/pareto.json" "$out/us/pareto-search.json" --plot "$plot" --json >"$out/joslim.json"
python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
fronts = {
    "us, uniform widths": json.load(open(f"{out}/us/pareto.json")),
    "us + AutoSlim search": json.load(open(f"{out}/us/pareto-search.json")),
    "joslim pool + uniform": json.load(open(f"{out}/joslim/pareto.json")),
}
fixed = [r for r in json.load(open(f"{out}/joslim.json"))["results"] if r["series"].startswith("fixed: ")]
search = json.load(open(f"{out}/us/search.json"))
budgets = sorted((f["target_macs"] for f in search["found"]), reverse=True)
full = max(p["macs"] for p in fronts["us, uniform widths"]["points"])
budgets = [full] + budgets

def best(doc, budget):
    pts = [doc["points"][i] for i in doc["front"] if doc["points"][i]["macs"] <= budget]
    return max(pts, key=lambda p: p["top1"]) if pts else None

def cell(p):
    return "-" if p is None else f"{100 * p['top1']:.2f}% ({p['macs'] / 1e6:.1f}M)"

print("| MAC budget | " + " | ".join(fronts) + " | fixed width (best within budget) |")
print("|---" * (len(fronts) + 2) + "|")
for b in budgets:
    fx = [r for r in fixed if r["macs"] <= b]
    fx = max(fx, key=lambda r: r["top1"]) if fx else None
    cells = [cell(best(d, b)) for d in fronts.values()]
    fcell = "-" if fx is None else f"{100 * fx['top1']:.2f}% ({fx['macs'] / 1e6:.1f}M, w={fx['width']})"
    print(f"| ≤ {b / 1e6:.1f}M | " + " | ".join(cells) + f" | {fcell} |")
lo, hi = next(iter(fronts.values()))["bounds"]
print(f"| area under the front, {lo / 1e6:.1f}M..{hi / 1e6:.1f}M | "
      + " | ".join(f"{100 * d['area']:.2f}%" for d in fronts.values()) + " | |")
EOF
echo "plot: $plot"
