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

# ---- container: throughput next to its parts, and peak memory on a 2.5 GB model --------------
echo
echo "tseal bench pack (container) on: ${models[*]}"
for m in "${models[@]}"; do "$T" bench pack "$m"; done

if [ ! -f "$DATA/synth-1b/.complete" ]; then
    rm -rf "$DATA/synth-1b"
    "$T" synth -o "$DATA/synth-1b" --preset 1b --seed 1
    touch "$DATA/synth-1b/.complete"
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$T" keygen --sign "$W/v" -q
"$T" keygen --recipient "$W/r" -q
rss() { # label command...: run under /usr/bin/time -v, print seconds, GB/s and peak RSS
    local label=$1; shift
    /usr/bin/time -v "$@" 2>"$W/time.log" >/dev/null || { cat "$W/time.log" >&2; exit 1; }
    local kb secs
    kb=$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' "$W/time.log")
    secs=$(awk '/Elapsed \(wall clock\)/ {n=split($NF, t, ":"); s=0; for (i=1;i<=n;i++) s=s*60+t[i]; print s}' "$W/time.log")
    awk -v l="$label" -v s="$secs" -v kb="$kb" -v b="$BYTES" \
        'BEGIN {printf "  %-34s %6.1f s  %6.3f GB/s  peak RSS %5.0f MB\n", l, s, b / s / 1e9, kb / 1024}'
}
BYTES=$(du -cb "$DATA/synth-1b"/* | tail -1 | cut -f1)
echo
echo "2.5 GB model (tseal synth --preset 1b): $BYTES bytes; the target is peak RSS < 512 MB"
rss "pack" "$T" pack "$DATA/synth-1b" -o "$W/1b.tseal" --sign-key "$W/v.sign.key" -r "$W/r.pub" --model-id bench/1b --version 1 -q
rss "verify (signature, every chunk)" "$T" verify "$W/1b.tseal" --trust "$W/v.sign.pub" -q
rss "verify --key (decrypt, decode, digests)" "$T" verify "$W/1b.tseal" --trust "$W/v.sign.pub" --key "$W/r.key" -q
rss "unpack (+ write + fsync)" "$T" unpack "$W/1b.tseal" --trust "$W/v.sign.pub" --key "$W/r.key" -o "$W/restored" -q
cmp "$DATA/synth-1b/model.safetensors" "$W/restored/model.safetensors" && echo "  restored model.safetensors is byte-identical"
