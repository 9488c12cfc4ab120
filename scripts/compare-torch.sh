#!/usr/bin/env bash
# slimc next to PyTorch eager on this machine's CPU: the same training steps and the same
# per-width inference, run back to back with the same thread count, printed as one
# Markdown table with the ratios slimc / PyTorch (the README's "Speed against PyTorch").
#
#   scripts/compare-torch.sh [--slimc BIN] [--python PY] [--threads N] [--steps S] [--rounds R]
#                            [--models LIST] [--quick]
#
# --slimc    a release build (default target/release/slimc)
# --python   a python3 that imports torch (default target/torch-venv/bin/python3, made on
#            first use by scripts/torch-venv.sh: PyTorch's CPU wheels from PyPI)
# --threads  threads of both (RAYON_NUM_THREADS / torch.set_num_threads; default 2)
# --steps    timed steps of each measurement (default 10, after two warm-up steps)
# --rounds   alternate slimc and PyTorch R times per network and keep each one's best
#            round (default 1)
# --models   the networks, comma-separated (default resnet20,mobilenet_v2,vit_fmnist)
# --quick    tiny batches and one step: checks that everything runs, measures nothing
#
# Rows: ResNet-20 (batch 128), MobileNetV2 at 32x32 (batch 64) and the ViT of
# models/vit_fmnist.slim (28x28, batch 128; PyTorch's side runs tokens through F.linear
# and scaled_dot_product_attention), each the US-Nets sandwich step (max, min, 2 random widths, inplace distillation, SGD Nesterov with weight
# decay), inference at widths 1.0 / 0.5 / 0.25, and each process's peak resident memory
# (GNU time's maximum RSS); then, when Fashion-MNIST is installed, slimc's data loader
# alone (`slimc bench --data`). Before timing, the script checks that both sides build the
# same networks: PyTorch's multiply-adds at widths 1.0, 0.5 and 0.25 must equal
# `slimc cost`'s.
set -euo pipefail
cd "$(dirname "$0")/.."

slimc=target/release/slimc python=target/torch-venv/bin/python3 threads=2 steps=10 rounds=1 quick=
models=resnet20,mobilenet_v2,vit_fmnist
while [ $# -gt 0 ]; do
    case "$1" in
        --slimc) slimc="$2"; shift 2 ;;
        --python) python="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare-torch.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$slimc" ] || { echo "compare-torch.sh: no slimc binary at $slimc (cargo build --release, or pass --slimc)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "compare-torch.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ "$python" = target/torch-venv/bin/python3 ] && [ ! -x "$python" ]; then
    scripts/torch-venv.sh target/torch-venv >&2
fi
"$python" -c 'import torch' || { echo "compare-torch.sh: $python cannot import torch" >&2; exit 2; }

out=$(mktemp -d "${TMPDIR:-/tmp}/slimc-compare-torch.XXXXXX")
trap 'rm -rf "$out"' EXIT
widths=1.0,0.5,0.25
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d$2)" "$1"; }
# A width's inference images/s, whichever way the JSON spells the width (1 or 1.0).
infer() { python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['infer_img_per_s']; print(next(v for k, v in d.items() if float(k) == float(sys.argv[2])))" "$1" "$2"; }

# Both sides must run the same network: equal multiply-adds at every width timed.
same_network() { # model name, slimc settings…
    local model="$1"; shift
    local w theirs ours
    for w in ${widths//,/ }; do
        theirs=$("$python" scripts/torch_reference.py "$model" --macs "$w" | python3 -c 'import json,sys; print(json.load(sys.stdin)["macs"])')
        ours=$("$slimc" cost "models/$model.slim" "$@" --width "$w" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["macs"])')
        if [ "$theirs" != "$ours" ]; then
            echo "compare-torch.sh: $model at width $w: PyTorch has $theirs MACs, slimc $ours; the two networks differ" >&2
            exit 1
        fi
    done
}

# Runs one side once under GNU time: its JSON in $out/NAME.json, its peak RSS (KiB) in $out/NAME.rss.
measure() { # name, command…
    local name="$1"; shift
    /usr/bin/time -f %M -o "$out/$name.rss" "$@" > "$out/$name.json"
}

# Keeps the round with the higher training throughput.
keep_best() { # name, round
    local best="$out/$1.best"
    if [ ! -f "$best.json" ] || python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["img_per_s"] > json.load(open(sys.argv[2]))["img_per_s"] else 1)' "$out/$1.json" "$best.json"; then
        cp "$out/$1.json" "$best.json"
        cp "$out/$1.rss" "$best.rss"
    fi
}

rows=()
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a:.1f} | {b:.1f} | **{a / b:.2f}**')" "$1" "$2"; }
compare() { # label, model, batch, slimc settings…
    local label="$1" model="$2" batch="$3"; shift 3
    local b=$batch s=$steps
    [ -z "$quick" ] || { b=4; s=1; }
    same_network "$model" "$@"
    local r
    for r in $(seq "$rounds"); do
        measure slimc env RAYON_NUM_THREADS="$threads" "$slimc" bench "models/$model.slim" "$@" \
            --batch "$b" --steps "$s" --widths "$widths" --json
        keep_best slimc "$r"
        measure torch "$python" scripts/torch_reference.py "$model" --device cpu --threads "$threads" \
            --batch "$b" --steps "$s" --infer-widths "$widths"
        keep_best torch "$r"
    done
    local ours="$out/slimc.best" theirs="$out/torch.best"
    rows+=("| $label, training (sandwich step) | $(ratio "$(field "$ours.json" '["train_img_per_s"]')" "$(field "$theirs.json" '["img_per_s"]')") |")
    local w
    for w in ${widths//,/ }; do
        rows+=("| $label, inference at $w | $(ratio "$(infer "$ours.json" "$w")" "$(infer "$theirs.json" "$w")") |")
    done
    # Memory: a ratio below 1 is less memory; shown as MiB.
    rows+=("| $label, peak memory (MiB; lower is better) | $(ratio "$(( $(cat "$ours.rss") / 1024 ))" "$(( $(cat "$theirs.rss") / 1024 ))") |")
    rm -f "$out"/*.best.*
}

echo "slimc: $("$slimc" --version)  torch: $("$python" -c 'import torch; print(torch.__version__)')  threads: $threads  cores: $(nproc)" >&2
for model in ${models//,/ }; do
    case "$model" in
        resnet20) compare "ResNet-20, batch 128" resnet20 128 ;;
        mobilenet_v2) compare "MobileNetV2 32x32, batch 64" mobilenet_v2 64 --set size=32 --set classes=10 ;;
        vit_fmnist) compare "ViT on 28x28, batch 128" vit_fmnist 128 ;;
        *) echo "compare-torch.sh: no PyTorch reference for $model (resnet20, mobilenet_v2, vit_fmnist)" >&2; exit 2 ;;
    esac
done

# The data pipeline next to training: slimc's loader alone on Fashion-MNIST, when installed.
loader_row=
if [ -d /usr/share/datasets/fashion-mnist ]; then
    b=128; [ -z "$quick" ] || b=4
    RAYON_NUM_THREADS="$threads" "$slimc" bench models/resnet20.slim --set in_channels=1 --set size=28 \
        --data fashion-mnist --batch "$b" --steps 1 --widths 1.0 --json > "$out/loader.json"
    loader_row="| Fashion-MNIST loader alone (batch $b, training's augmentation; slimc only) | $(field "$out/loader.json" '["loader"]["img_per_s"]' | xargs printf '%.0f') | | |"
fi

echo "| measurement | slimc | PyTorch | slimc / PyTorch |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
[ -z "$loader_row" ] || echo "$loader_row"
