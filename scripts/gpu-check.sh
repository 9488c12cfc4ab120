#!/usr/bin/env bash
# The GPU check: slimc's training step next to PyTorch eager's on the same GPU, and a
# short real training run, printed as one Markdown table (for the README).
#
#   scripts/gpu-check.sh [--slimc BIN] [--device cuda[:N]] [--data SPEC] [--epochs N] [--quick]
#
# --slimc   a slimc built with `cargo build --release --features cuda` (default: target/release/slimc)
# --device  what slimc runs on (default cuda; wgpu[:…] also works, to try the script anywhere)
# --data    the training data (default fashion-mnist: the Debian package's files; on a
#           machine without it, copy the four .gz files and pass fashion-mnist:DIR)
# --epochs  epochs of the training run (default 2)
# --quick   small batches and few steps: checks that every step runs, measures nothing
#
# Rows: ResNet-20 sandwich step (batch 128, 32x32; max, min, 2 random widths, inplace
# distillation) and ResNet-50 at full width (batch 64, 224x224), each by slimc bench and,
# when `python3 -c 'import torch'` works, by scripts/torch_reference.py on the same device;
# then ResNet-20 trained on the data for --epochs, with its validation accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."

slimc=target/release/slimc device=cuda data=fashion-mnist epochs=2 quick=
while [ $# -gt 0 ]; do
    case "$1" in
        --slimc) slimc="$2"; shift 2 ;;
        --device) device="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --epochs) epochs="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$slimc" ] || { echo "gpu-check.sh: no slimc binary at $slimc (build with --features cuda, or pass --slimc)" >&2; exit 2; }

out=$(mktemp -d "${TMPDIR:-/tmp}/slimc-gpu-check.XXXXXX")
trap 'rm -rf "$out"' EXIT
if [ -n "$quick" ]; then
    r20=(--batch 8 --steps 2) r50=(--batch 2 --steps 1 --set size=64) train_extra=(--max-steps 4 --batch 32 --val-images 64 --calibrate 1)
    t20=(--batch 8 --steps 2) t50=(--batch 2 --steps 1 --size 64)
else
    r20=(--batch 128 --steps 20) r50=(--batch 64 --steps 10) train_extra=()
    t20=(--batch 128 --steps 20) t50=(--batch 64 --steps 10)
fi

# PyTorch runs where slimc runs: the same CUDA device, or the CPU for anything else.
case "$device" in cuda*) torch_device="$device" ;; *) torch_device=cpu ;; esac
have_torch=
python3 -c 'import torch' 2>/dev/null && have_torch=1

field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
rows=()
bench() { # label, slimc bench args…
    local label="$1"; shift
    local doc
    doc=$("$slimc" bench "$@" --device "$device" --json)
    rows+=("| $label | slimc ($(echo "$doc" | field '["device"]')) | $(echo "$doc" | field '["img_per_s"]' | xargs printf '%.1f') |")
}
torch_bench() { # label, torch_reference.py args…
    local label="$1"; shift
    if [ -z "$have_torch" ]; then
        rows+=("| $label | PyTorch eager | not measured: python3 cannot import torch |")
        return
    fi
    local doc
    doc=$(python3 scripts/torch_reference.py "$@" --device "$torch_device")
    rows+=("| $label | $(echo "$doc" | field '["framework"]') ($(echo "$doc" | field '["device"]')) | $(echo "$doc" | field '["img_per_s"]' | xargs printf '%.1f') |")
}

echo "slimc: $("$slimc" --version)  device: $device  torch: $([ -n "$have_torch" ] && echo yes || echo no)" >&2
bench "ResNet-20 sandwich step" models/resnet20.slim --scheme us "${r20[@]}"
torch_bench "ResNet-20 sandwich step" resnet20 --scheme us "${t20[@]}"
bench "ResNet-50 full width" models/resnet50.slim --scheme fixed --width 1.0 "${r50[@]}"
torch_bench "ResNet-50 full width" resnet50 --scheme fixed --width 1.0 "${t50[@]}"

"$slimc" train models/resnet20.slim --data "$data" --epochs "$epochs" --device "$device" --out "$out/run" --quiet "${train_extra[@]}"
last=$(tail -n 1 "$out/run/metrics.jsonl")
acc=$(echo "$last" | python3 -c "import json,sys; m=json.load(sys.stdin); print(f\"val acc {m['val_acc_min']:.4f} (w={m['min_width']}) / {m['val_acc_max']:.4f} (w={m['max_width']}), {m['img_per_s']:.1f} img/s\")")
what="$epochs epochs"
[ -z "$quick" ] || what="4 steps (--quick)"
rows+=("| ResNet-20 US training, $what on $data | slimc train | $acc |")

echo "| step | by | images/s |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
