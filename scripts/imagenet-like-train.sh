#!/usr/bin/env bash
# A short training run on an ImageNet-like folder of JPEGs, end to end through
# `--data imagefolder:DIR` and through WebDataset shards of the same folder (`slimc pack`),
# the shards' run interrupted half-way and resumed. Both read the same batches, so both
# runs must log the same training losses, epoch for epoch, and end at the same accuracy;
# the script prints both and fails when they differ. Then each run's test accuracy
# (`slimc eval`, the centre view) against chance. The README's "Data at ImageNet scale".
#
#   scripts/imagenet-like-train.sh [--slimc BIN] [--python PY] [--dir DIR] [--epochs E]
#                                  [--size S] [--workers N] [--out DIR]
#
# --slimc    a release build (default target/release/slimc)
# --python   a python3 with numpy and Pillow, to write the folder when it is missing
#            (default target/torch-venv/bin/python3, scripts/torch-venv.sh)
# --dir      the image folder (default target/imagenet-like, scripts/imagenet_like.py)
# --epochs   epochs of each run (default 5); --size: the crop side (default 64)
# --workers  loader workers (default 1); --out: where the runs go (default a temporary dir)
#
# The network is ResNet-20 (models/resnet20.slim, global pooling before its classifier)
# at --size, trained at full width (--scheme fixed) with the Inception augmentation.
set -euo pipefail
cd "$(dirname "$0")/.."

slimc=target/release/slimc python=target/torch-venv/bin/python3 dir=target/imagenet-like epochs=5 size=64
workers=1 out=
while [ $# -gt 0 ]; do
    case "$1" in
        --slimc) slimc="$2"; shift 2 ;;
        --python) python="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --epochs) epochs="$2"; shift 2 ;;
        --size) size="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "imagenet-like-train.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$slimc" ] || { echo "imagenet-like-train.sh: no slimc binary at $slimc (cargo build --release)" >&2; exit 2; }
if [ ! -d "$dir" ]; then
    if [ "$python" = target/torch-venv/bin/python3 ] && [ ! -x "$python" ]; then
        scripts/torch-venv.sh target/torch-venv >&2
    fi
    "$python" scripts/imagenet_like.py "$dir" >&2
fi
shards="$dir.shards"
[ -d "$shards" ] || "$slimc" pack "$dir" "$shards" >&2
if [ -z "$out" ]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/slimc-imagenet-like.XXXXXX")
fi

common=(models/resnet20.slim --set "size=$size" --scheme fixed --width 1.0 --epochs "$epochs" --batch 64
        --val-images 300 --lr 0.1 --workers "$workers" --quiet)
"$slimc" train "${common[@]}" --data "imagefolder:$dir" --out "$out/folder"
# The shards' run stops half-way through, inside an epoch, and is resumed.
per_epoch=$(( (3000 - 300) / 64 ))
half=$(( epochs * per_epoch / 2 + per_epoch / 3 ))
"$slimc" train "${common[@]}" --data "webdataset:$shards" --out "$out/shards" --max-steps "$half"
"$slimc" train --resume "$out/shards" --max-steps $(( epochs * per_epoch )) --workers "$workers" --quiet

# Per complete epoch: the epoch, its training loss and the validation accuracy. The loss
# of the epoch the shards' run was interrupted in averages only the steps after the resume,
# so it is left out ("-") of both columns.
broken=$(( half / per_epoch + 1 ))
complete() { python3 -c 'import json,sys; [print(m["epoch"], "-" if m["epoch"] == int(sys.argv[2]) else repr(m["train_loss"]), m["val_acc_max"]) for m in map(json.loads, open(sys.argv[1])) if m["complete"]]' "$1" "$broken"; }
complete "$out/folder/metrics.jsonl" > "$out/folder.epochs"
complete "$out/shards/metrics.jsonl" > "$out/shards.epochs"
echo "epoch, training loss, validation accuracy: imagefolder | webdataset (interrupted in epoch $broken and resumed)"
paste -d'|' "$out/folder.epochs" "$out/shards.epochs"
top1() { "$slimc" eval "$1" --workers "$workers" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["top1"])'; }
a=$(top1 "$out/folder") b=$(top1 "$out/shards")
echo "test top-1 (500 images, 10 classes, chance 0.1): imagefolder $a, webdataset $b"
if ! cmp -s "$out/folder.epochs" "$out/shards.epochs" || [ "$a" != "$b" ]; then
    echo "imagenet-like-train.sh: the two runs differ" >&2
    exit 1
fi
echo "the same losses and accuracies epoch for epoch: both read the same batches, and the resumed run the ones it would have"
