#!/usr/bin/env bash
# slimc's data loader next to torchvision's ImageFolder + DataLoader on an ImageNet-like
# folder of JPEGs: the same training transforms (the seeds' ImageNet recipe: random
# resized crop, colour jitter, PCA lighting, flip, normalise) at the same worker counts,
# run back to back, printed as one Markdown table with the ratios slimc / torchvision
# (the README's "Data at ImageNet scale").
#
#   scripts/compare-loader.sh [--slimc BIN] [--python PY] [--dir DIR] [--workers "1 2"]
#                             [--batch B] [--batches N] [--size S]
#
# --slimc    a release build (default target/release/slimc)
# --python   a python3 with torch, torchvision and Pillow (default target/torch-venv/bin/python3,
#            made on first use by scripts/torch-venv.sh)
# --dir      the image folder (default target/imagenet-like, written on first use by
#            scripts/imagenet_like.py: 10 classes, 3,000 training JPEGs of 500x375 and so on)
# --workers  the worker counts compared (default "1 2")
# --batch    images per batch (default 128); --batches: timed batches (default 20)
# --size     the crop side (default 224)
#
# slimc's figure is `slimc bench --data imagefolder:DIR --workers N`'s "loader alone", and
# once more through WebDataset shards of the same folder (`slimc pack`); torchvision's is
# scripts/torch_loader.py. Each side gets the same number of decoding workers (threads for
# slimc, processes for torchvision) besides the process that consumes the batches.
set -euo pipefail
cd "$(dirname "$0")/.."

slimc=target/release/slimc python=target/torch-venv/bin/python3 dir=target/imagenet-like workers="1 2"
batch=128 batches=20 size=224
while [ $# -gt 0 ]; do
    case "$1" in
        --slimc) slimc="$2"; shift 2 ;;
        --python) python="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --batches) batches="$2"; shift 2 ;;
        --size) size="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare-loader.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$slimc" ] || { echo "compare-loader.sh: no slimc binary at $slimc (cargo build --release, or pass --slimc)" >&2; exit 2; }
if [ "$python" = target/torch-venv/bin/python3 ] && [ ! -x "$python" ]; then
    scripts/torch-venv.sh target/torch-venv >&2
fi
"$python" -c 'import torch, torchvision, PIL' || { echo "compare-loader.sh: $python cannot import torch, torchvision and PIL" >&2; exit 2; }
[ -d "$dir" ] || "$python" scripts/imagenet_like.py "$dir" >&2
shards="$dir.shards"
[ -d "$shards" ] || "$slimc" pack "$dir" "$shards" >&2

# A network that takes the crops (3 x size x size), to give `slimc bench` something to run.
net=(tests/fixtures/tiny.slim --set in_channels=3 --set "size=$size")
loader() { # data spec, workers
    "$slimc" bench "${net[@]}" --data "$1" --workers "$2" --batch "$batch" --steps 1 --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["loader"]["img_per_s"])'
}
echo "| workers | slimc imagefolder (img/s) | slimc webdataset (img/s) | torchvision ImageFolder (img/s) | slimc / torchvision |"
echo "|---|---|---|---|---|"
for w in $workers; do
    ours=$(loader "imagefolder:$dir" "$w")
    packed=$(loader "webdataset:$shards" "$w")
    theirs=$("$python" scripts/torch_loader.py "$dir" --workers "$w" --batch "$batch" --batches "$batches" --size "$size" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["img_per_s"])')
    python3 -c "import sys; o, p, t = map(float, sys.argv[2:]); print(f'| {sys.argv[1]} | {o:.0f} | {p:.0f} | {t:.0f} | {o / t:.2f} |')" "$w" "$ours" "$packed" "$theirs"
done
