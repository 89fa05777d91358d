#!/usr/bin/env bash
# run.sh - tseal's CUDA code on the CUDA emulator (tests/emu/README.md); `make emu-test` builds
# BUILD (default build-emu) with EMU=1 SAN=1 and calls this. Steps:
#   0. the emulator's self-test (tests/emu/selftest.cu: one deliberate bug per case, each found);
#   1. the GPU test suite (tests/gpu) and the memory scan of the GPU load path;
#   2. the CLI end to end: `make demo`'s script (its GPU step included), synth, pack,
#      `tseal load --check` with host and with GPU decryption,
#      and again with each kind of CUDA call failing in turn (fault.sh: clean errors, no leaks);
#   3. the Python package's tests over the emulated libtseal.so;
#   4. `tseal bench gemv --cpu-check` (also at forced tile widths and rows per lane) and
#      `tseal bench gpu` on small shapes (every result must be bit-exact; the timings of an
#      emulator mean nothing).
# Any ASan/UBSan report, emulator diagnostic (misaligned load, divergent shuffle, deadlock, bad
# copy, device memory leaked at exit) or failed check fails the run.
set -uo pipefail
B=${1:-build-emu}
HERE=$(cd "$(dirname "$0")" && pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
export LSAN_OPTIONS=suppressions=$HERE/lsan.supp
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fails=0
JOBS=$(nproc 2>/dev/null || echo 2)

# Run a step, keep its log, fail on a bad exit code or on any report in the log.
step() { # name command...
    local name=$1; shift
    local t0=$SECONDS
    "$@" >"$W/$name.log" 2>&1; local rc=$?
    if [ $rc -ne 0 ] || grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|tseal CUDA emulator:" "$W/$name.log"; then
        echo "  FAIL  $name (exit $rc, $((SECONDS - t0)) s):"
        grep -v "ASan doesn't fully support" "$W/$name.log" | grep -E -B2 -A12 "FAIL|ERROR|runtime error|emulator|error" | head -60
        fails=$((fails + 1))
    else
        echo "  ok    $name ($((SECONDS - t0)) s)"
    fi
}

echo "tests/emu/run.sh: $B (CUDA emulator, ASan+UBSan)"

# 0. The emulator itself: a correct kernel passes, each deliberate bug is reported.
selftest() { # case want-exit-0|fail expected-message
    local out rc
    out=$(TSEAL_EMU_DELAY_US=${DELAY:-50} "$B/tests/emu/selftest" "$1" 2>&1); rc=$?
    if { [ "$2" = 0 ] && [ $rc -eq 0 ]; } || { [ "$2" = fail ] && [ $rc -ne 0 ]; }; then
        if grep -q -- "$3" <<<"$out"; then echo "  ok    emulator self-test: $1"; return; fi
    fi
    echo "  FAIL  emulator self-test: $1 (exit $rc; wanted '$3'): $(head -c 400 <<<"$out")"
    fails=$((fails + 1))
}
selftest ok 0 "selftest ok: exact"
selftest missing_barrier 0 "stale shared memory seen"
selftest divergent_shfl fail "shuffle mask 0xffffffff but the live lanes are 0xaaaaaaaa"
selftest deadlock fail "deadlock in block"
selftest misaligned_ldg fail "not 16-byte aligned"
selftest misaligned_store fail "misaligned address"
selftest out_of_bounds fail "AddressSanitizer: heap-buffer-overflow"
selftest bad_copy fail "is not inside a device allocation"
selftest leak fail "never freed"
DELAY=20000 selftest read_early 0 "read_early: race seen"
DELAY=20000 selftest reuse_early 0 "reuse_early: race seen"
step gpu-tests "$B/tests/gpu" --jobs="$JOBS" --short-filename
# The GEMV's work plans depend on the SM count: once more with the H100's 132.
step gpu-gemv-132sms env TSEAL_EMU_SMS=132 "$B/tests/gpu" --jobs="$JOBS" --short-filename \
    --filter 'gpu_gemv/@(short_and_wide|shapes_and_kinds|segment_sizes|two_rows_per_lane)'
step memscan-gpu "$B/tests/memscan" --jobs=1 --short-filename --filter 'memscan/gpu_*'

T=$(cd "$B" && pwd)/tseal
cli() (
    cd "$W" && "$T" synth --preset tiny -o model &&
        "$T" keygen --sign vendor -q && "$T" keygen --recipient bank -q &&
        "$T" pack model -o m.tseal --sign-key vendor.sign.key -r bank.pub --model-id emu/tiny \
            --version 1 -q &&
        "$T" load m.tseal --key bank.key --trust vendor.sign.pub --check --json &&
        "$T" load m.tseal --key bank.key --trust vendor.sign.pub --check --gpu-decrypt --staging 1 &&
        ! "$T" load m.tseal --key bank.key --trust bank.pub --check 2>/dev/null
)
step cli-load cli
step demo "$HERE/../../bench/demo.sh" "$B"
step cuda-faults "$HERE/fault.sh" "$T"
# The Python package over the emulated libtseal.so (ASan preloaded into python3): its GPU tests
# that need no torch (load_gpu, check) run; the torch ones skip without torch.
pytests() {
    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
        PYTHONDONTWRITEBYTECODE=1 TSEAL_LIB=$(cd "$B" && pwd)/libtseal.so TSEAL_BIN=$T \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider -rs "$HERE/../python"
}
if /usr/bin/python3 -c 'import numpy, pytest' 2>/dev/null; then
    step python pytests
else
    echo "  skip  python (python3 with numpy and pytest not installed: make python-deps)"
fi
step bench-gemv "$T" bench gemv --shapes 1x4096,96x512,257x1000,3x40000 --batch 1,3,8,16 \
    --segment 64 --repeat 1 --cpu-check
# TILES plans at every tile width: 8 and 16 put 4 and 2 rows in a warp (9 rows: a partial group)
# (64 x 14336: several tiles per task, so the start bits of later tiles continue the first's)
step bench-gemv-tile8 "$T" bench gemv --shapes 9x4096,5x14336,64x14336 --batch 1,8 --segment 64 \
    --tile 8 --repeat 1 --cpu-check
step bench-gemv-tile16 "$T" bench gemv --shapes 9x4096,64x14336 --batch 2,16 --segment 64 \
    --tile 16 --repeat 1 --cpu-check
# Two rows per lane at every batch bound with pair kernels (ROWS and TILES plans; batch 3 and 8
# use them by default where the plan allows, 1 only when asked)
step bench-gemv-pair2 "$T" bench gemv --shapes 96x512,257x1000,64x14336 --batch 1,3,8 \
    --segment 64 --pair 2 --repeat 1 --cpu-check
step bench-gpu-direct "$T" bench gpu --shapes 64x512,300x1000 --segment 128 --repeat 1 --no-load \
    --stores direct
step bench-gpu "$T" bench gpu --shapes 64x512,300x1000 --segment 128 --repeat 1 --model "$W/model"
if grep -q '"exact": *false' "$W"/*.log; then
    echo "  FAIL  a benchmark result is not bit-exact"
    fails=$((fails + 1))
fi

if [ $fails -ne 0 ]; then
    echo "emu-test: $fails step(s) failed"
    exit 1
fi
echo "emu-test: the CUDA code passed on the emulator"
