#!/usr/bin/env bash
# Reproduces the README's fine-tuning story ("Bring your own model"): a ResNet-20 trained
# in plain PyTorch at full width on Fashion-MNIST (scripts/pretrained_resnet20.py),
# exported to ONNX and brought in with `slimc import`; then
#   (a) the imported network's test top-1 with the file's BN statistics, next to PyTorch's,
#       and that of PyTorch's state_dict loaded by structure into models/resnet20.slim;
#   (b) zero-shot top-1 at widths 0.25..1.0 (BN calibrated per width), channels kept in
#       their order and ranked by each importance criterion (--order l1, bn);
#   (c) US fine-tuning from it for 1 and 2 epochs (the better criterion, the fine-tuning
#       learning rate 0.01), next to a US network from scratch at the same total budget
#       (PRETRAIN_EPOCHS + 2 epochs), and to fixed-width networks trained separately and a
#       US network from scratch, each for FROM_SCRATCH_EPOCHS epochs (0: left out);
#   (d) 1 epoch of US fine-tuning distilled from the frozen pretrained network
#       (--teacher) instead of from the largest width.
# Prints one Markdown table per part and draws docs/finetune-resnet20-fashion-mnist.svg.
# Usage: scripts/finetune-story.sh [PRETRAIN_EPOCHS] [FROM_SCRATCH_EPOCHS] [OUT]
#        Runs that exist are kept (a finished one as it is); delete OUT to start over.
#        (defaults: 5, 2, runs/story). Needs python3 with torch, onnx and safetensors
#        ($PYTHON, default target/ci-python/bin/python3: the venv .ci/run makes).
set -euo pipefail
cd "$(dirname "$0")/.."
pretrain=${1:-5}
scratch=${2:-2}
out=${3:-runs/story}
py=${PYTHON:-target/ci-python/bin/python3}
data=/usr/share/datasets/fashion-mnist
plot=docs/finetune-resnet20-fashion-mnist.svg
. scripts/runs.sh
root=$PWD

if [ ! -f "$out/pretrained/pytorch.json" ]; then
    (cd scripts && "$root/$py" pretrained_resnet20.py "$data" "$root/$out/pretrained" --epochs "$pretrain")
fi
norm=$("$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(str(d["mean"]) + "/" + str(d["std"]))' \
    "$out/pretrained/pytorch.json")
"$slimc" import "$out/pretrained/resnet20.onnx" -o "$out/resnet20.slim" --weights "$out/resnet20.safetensors" --force
init=(--init "$out/resnet20.safetensors" --normalize "$norm")
# PyTorch's own state_dict, under its module names, in the zoo's hand-written file.
"$slimc" eval models/resnet20.slim --init "$out/pretrained/resnet20.safetensors" --normalize "$norm" \
    --widths 1.0 --json >"$out/state-dict.json"
for order in none l1 bn; do
    "$slimc" eval "$out/resnet20.slim" "${init[@]}" --order "$order" --widths 0.25:1.0:0.125 --json \
        >"$out/zero-shot-$order.json"
done
# The criterion with the better mean zero-shot top-1 over the widths.
best=$("$py" - "$out" <<'PY'
import json, sys
mean = lambda o: sum(r["top1"] for r in json.load(open(f"{sys.argv[1]}/zero-shot-{o}.json"))["results"]
                     if r["series"] == "slimmable")
print(max(["l1", "bn"], key=mean))
PY
)
for e in 1 2; do
    epochs=$e train "$out/resnet20.slim" "us-finetune-$e" --scheme us "${init[@]}" --order "$best"
    "$slimc" eval "$out/us-finetune-$e" --widths 0.25:1.0:0.125 --json >"$out/us-finetune-$e.json"
done
epochs=1 train "$out/resnet20.slim" us-finetune-1-teacher --scheme us "${init[@]}" --order "$best" \
    --teacher "$out/resnet20.safetensors"
"$slimc" eval "$out/us-finetune-1-teacher" --widths 0.25:1.0:0.125 --json >"$out/us-finetune-1-teacher.json"
# The same total budget: as many epochs as pretraining and 2 epochs of fine-tuning took.
budget=$((pretrain + 2))
epochs=$budget train models/resnet20.slim "us-scratch-$budget" --scheme us
"$slimc" eval "$out/us-scratch-$budget" --widths 0.25:1.0:0.125 --json >"$out/us-scratch-budget.json"
# FROM_SCRATCH_EPOCHS 0 leaves the from-scratch runs out (scripts/curve.sh makes the same
# ones, 2 epochs by default).
if [ "$scratch" -gt 0 ]; then
    epochs=$scratch train models/resnet20.slim us-scratch --scheme us
    for w in 0.25 0.5 0.75 1.0; do
        epochs=$scratch train models/resnet20.slim "fixed-$w" --scheme fixed --width "$w"
    done
    "$slimc" eval "$out/us-scratch" --widths 0.25:1.0:0.125 \
        --baseline "$out/fixed-0.25" "$out/fixed-0.5" "$out/fixed-0.75" "$out/fixed-1.0" --json >"$out/scratch.json"
fi
"$py" scripts/finetune_story.py "$out" "$best" "$plot" "$budget"
