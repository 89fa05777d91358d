#!/usr/bin/env bash
# fault.sh - CUDA failures in the GPU load path, on the emulator (tests/emu/README.md): every kind
# of runtime call the loader makes (device and pinned allocations, copies, memsets, launches,
# streams, events) is made to fail at its Nth call, once and from then on, during
# `tseal load --check` with host and with GPU decryption. Every run must end either in exit 0
# with every tensor checked, or in a clean error: exit 1..5, a message naming the failed call,
# no sanitizer report, no crash, and no device or pinned memory left allocated (the emulator
# turns a leak into exit 99). Called by tests/emu/run.sh with the emulated tseal.
set -uo pipefail
T=${1:?usage: fault.sh BUILD/tseal}
T=$(cd "$(dirname "$T")" && pwd)/$(basename "$T")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
"$T" synth --preset tiny -o model >/dev/null &&
    "$T" keygen --sign vendor -q && "$T" keygen --recipient bank -q &&
    "$T" pack model -o m.tseal --sign-key vendor.sign.key -r bank.pub --model-id emu/faults \
        --version 1 -q || { echo "fault.sh: could not pack the test model"; exit 1; }

runs=0 fails=0
one() { # mode-args... ; env TSEAL_EMU_FAIL set by the caller
    "$T" load m.tseal --key bank.key --trust vendor.sign.pub --check --staging 1 "$@" \
        >out 2>err
    local rc=$? why=""
    runs=$((runs + 1))
    if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|tseal CUDA emulator:" err; then
        why="sanitizer or emulator report"
    elif [ $rc -eq 0 ]; then
        grep -q "tensors decoded on the GPU match their signed digests" out err || why="exit 0 without the check"
    elif [ $rc -gt 5 ]; then
        why="exit $rc"
    elif ! grep -qiE "tseal: error: .*(cuda|out of memory|failed)" err; then
        why="message does not name the failure"
    fi
    if [ -n "$why" ]; then
        fails=$((fails + 1))
        echo "  FAIL  TSEAL_EMU_FAIL=$TSEAL_EMU_FAIL load $*: $why (exit $rc)"
        head -c 600 err | sed 's/^/        /'
    fi
}

for mode in "" "--gpu-decrypt"; do
    rm -f counts
    TSEAL_EMU_COUNT=$W/counts "$T" load m.tseal --key bank.key --trust vendor.sign.pub --check \
        --staging 1 $mode >/dev/null 2>&1 || { echo "fault.sh: the load without faults failed"; exit 1; }
    while read -r kind count; do
        [ "$count" -gt 0 ] || continue
        # every one of the first 8 calls, then about 10 more spread over the rest, and the last
        step=$(((count + 9) / 10))
        for n in $(seq 1 "$count"); do
            if [ "$n" -le 8 ] || [ $((n % step)) -eq 0 ] || [ "$n" -eq "$count" ]; then
                TSEAL_EMU_FAIL=$kind:$n one $mode
            fi
        done
        for n in 1 $(((count + 1) / 2)); do
            TSEAL_EMU_FAIL=$kind:$n+ one $mode
        done
    done <counts
done
echo "fault.sh: $runs runs, $fails failed"
[ "$fails" -eq 0 ]
