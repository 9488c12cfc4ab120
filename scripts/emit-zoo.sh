#!/usr/bin/env bash
# Regenerates tests/emitted/*.rs: the `slimc emit` output of every zoo model and of
# tests/edge_cases.slim, which tests/emit.rs compiles and runs against the runtime. Run it
# after changing the emitter or a model; tests/emit.rs fails while any file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
mkdir -p tests/emitted
for f in models/*.slim; do
    # The U-Net outputs a map; emitted modules return class logits (slimc emit refuses it).
    [ "$(basename "$f")" = unet.slim ] && continue
    ./target/debug/slimc emit "$f" -o "tests/emitted/$(basename "$f" .slim).rs"
done
./target/debug/slimc emit tests/edge_cases.slim -o tests/emitted/edge_cases.rs
