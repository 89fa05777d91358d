#!/usr/bin/env bash
# run-bench.sh - `make bench`: codec benchmarks on the synthetic Llama model, the real model
# (when bench/fetch-weights.sh could fetch it) and an N(0, 0.02) matrix, with zstd -3/-19 on
# the same bytes. The JSON goes to $BUILD/bench-codec.json.
set -euo pipefail
BUILD=${1:-build}
T="$BUILD/tseal"
DATA=bench/data
models=()
if [ ! -f "$DATA/synth-small/.complete" ]; then
    rm -rf "$DATA/synth-small"
    "$T" synth -o "$DATA/synth-small" --preset small --seed 1
    touch "$DATA/synth-small/.complete"
fi
models+=("$DATA/synth-small")
[ -f "$DATA/minilm-l6-v2-bf16/.complete" ] && models+=("$DATA/minilm-l6-v2-bf16")
echo "tseal bench codec on: ${models[*]} + normal(0,0.02) 4096x14336"
"$T" bench codec --json-out "$BUILD/bench-codec.json" --normal 4096x14336 "${models[@]}"
echo "JSON: $BUILD/bench-codec.json"
