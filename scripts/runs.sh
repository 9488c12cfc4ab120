# Sourced by the measurement scripts (compare-schemes.sh, compare-heads.sh): the slimc
# binary ($SLIMC, or a release build made here) and `train`, which makes or continues
# one run of $out with $epochs epochs and seed 0.
slimc=${SLIMC:-./target/release/slimc}
[ -n "${SLIMC:-}" ] || cargo build --release --quiet
mkdir -p "$out"
train() { # MODEL NAME ARGS...: a run that exists is continued (a finished one is left as it is)
    local model=$1 name=$2; shift 2
    if [ -d "$out/$name/checkpoint" ]; then
        "$slimc" train --resume "$out/$name" --quiet
    else
        "$slimc" train "$model" --epochs "$epochs" --seed 0 --out "$out/$name" --quiet "$@"
    fi
}
