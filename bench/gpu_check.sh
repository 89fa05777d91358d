#!/usr/bin/env bash
# gpu_check.sh - build and check tseal on a lent GPU machine in one device call
# (the tested recipe: /work/shared/GPU.md).
#
#   bench/gpu_check.sh [--fetch]  HERE (package registry reachable): download the Debian packages
#                                 the GPU machine lacks into .gpu-deps/ (gitignored); packages
#                                 already there are kept.
#   bench/gpu_check.sh --run      THERE (device call with carry [".gpu-deps"]): unpack them into
#                                 $DPREFIX, build with the Makefile's own variables, run the GPU
#                                 tests, compute-sanitizer (memcheck, racecheck, synccheck,
#                                 initcheck) on a small case, the memory scan, `tseal load --check`
#                                 (host and GPU decryption), `tseal bench gpu --json`, `tseal
#                                 bench gemv --json` (also at other segment sizes, tile widths and
#                                 rows per lane, and built with the decode loops' earlier control
#                                 flow), and with
#                                 TSEAL_GPU_E2E=1 bench/e2e_serve.py
#                                 (needs torch and transformers there). Logs and JSON go to $OUT (or build-gpu/gpu-check/);
#                                 summary.json lists every step. Exit status 0 iff no step failed.
#
# Environment (--run): OUT, DPREFIX (/tmp/dprefix), JOBS (nproc), GPU_TEST_BIN
# (build-gpu/tests/gpu), SANITIZE_FILTER (*/small*: the small cases of each GPU suite), TSEAL_GPU_TEST_HUGE=1 to also run
# the > 2^31-element test (~12 GB host memory, ~1 min).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS_DIR=$ROOT/.gpu-deps
BUILD=build-gpu
# Runtime + headers the GPU machine lacks (GPU.md), plus zstd (the library links -lzstd).
# Only the criterion runtime needs libgit2 .. libssh2.
PKGS=(libsodium23 libsodium-dev libcjson1 libcjson-dev libssl3 libssl-dev
      libcriterion3 libcriterion-dev libgit2-1.5 libnanomsg5 libffi8 libhttp-parser2.9
      libmbedtls14 libmbedx509-1 libmbedcrypto7 libssh2-1 libzstd1 libzstd-dev)

die() {
    echo "gpu_check: error: $*" >&2
    exit 1
}

# ---- here: download ---------------------------------------------------------------------------
fetch() {
    command -v apt-get >/dev/null || die "apt-get not found: --fetch needs a Debian/Ubuntu machine"
    mkdir -p "$DEPS_DIR"
    local missing=() p
    for p in "${PKGS[@]}"; do
        compgen -G "$DEPS_DIR/${p}_*.deb" >/dev/null || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "gpu_check: all ${#PKGS[@]} packages already in .gpu-deps/"
        return 0
    fi
    echo "gpu_check: downloading ${missing[*]}"
    # apt-get download writes into the current directory; refresh the lists once if they are stale.
    if ! (cd "$DEPS_DIR" && apt-get download -q "${missing[@]}" 2>"$DEPS_DIR/.apt.log"); then
        echo "gpu_check: apt-get download failed; running apt-get update and retrying"
        if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
        (cd "$DEPS_DIR" && apt-get download -q "${missing[@]}") ||
            die "apt-get download failed for: ${missing[*]}"
    fi
    rm -f "$DEPS_DIR/.apt.log"
    for p in "${PKGS[@]}"; do
        compgen -G "$DEPS_DIR/${p}_*.deb" >/dev/null || die "package $p missing after download"
    done
    local debs=("$DEPS_DIR"/*.deb)
    echo "gpu_check: .gpu-deps/ holds ${#debs[@]} packages, $(du -sh "$DEPS_DIR" | cut -f1)"
}

# ---- there: build, test, sanitize, bench -------------------------------------------------------
STEPS=()
FAILED=0

# step NAME REQUIRED CMD...: run CMD with its output in $OUT/NAME.log and record the result;
# a failing REQUIRED=0 step is only a warning. Returns 1 if the step failed.
step() {
    local name=$1 required=$2 rc=0 t0 ms status
    shift 2
    echo "== $name: $*"
    t0=$(date +%s%N)
    "$@" >"$OUT/$name.log" 2>&1 || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $rc -eq 0 ]; then status=pass; elif [ "$required" = 0 ]; then status=warn; else status=fail; fi
    if [ $status = fail ]; then FAILED=$((FAILED + 1)); fi
    printf '   %s (rc %d, %d.%03d s); log: %s.log\n' $status $rc $((ms / 1000)) $((ms % 1000)) "$name"
    if [ $rc -ne 0 ]; then tail -n 40 "$OUT/$name.log" | sed 's/^/   | /'; fi
    STEPS+=("$(printf '{"step": "%s", "status": "%s", "rc": %d, "seconds": %d.%03d, "log": "%s.log"}' \
        "$name" $status $rc $((ms / 1000)) $((ms % 1000)) "$name")")
    [ $status != fail ]
}

skip() {
    echo "== $1: skipped ($2)"
    STEPS+=("$(printf '{"step": "%s", "status": "skip", "reason": "%s"}' "$1" "$2")")
}

write_summary() {
    local f=$OUT/summary.json i
    {
        printf '{\n  "date": "%s",\n  "host": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(hostname)"
        printf '  "gpu": "%s",\n' "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 | tr -d '"')"
        printf '  "commit": "%s",\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        printf '  "failed_steps": %d,\n  "steps": [\n' "$FAILED"
        for i in "${!STEPS[@]}"; do
            printf '    %s%s\n' "${STEPS[$i]}" "$([ "$i" -lt $((${#STEPS[@]} - 1)) ] && echo ,)"
        done
        printf '  ]\n}\n'
    } >"$f"
    echo "gpu_check: summary in $f ($FAILED failed step(s))"
}

unpack() {
    if ! compgen -G "$DEPS_DIR/*.deb" >/dev/null; then
        echo "no .deb files in .gpu-deps/: run 'bench/gpu_check.sh --fetch' on the development" \
            "machine and name .gpu-deps in the device call's carry"
        return 1
    fi
    mkdir -p "$DPREFIX"
    local f
    for f in "$DEPS_DIR"/*.deb; do
        if command -v dpkg-deb >/dev/null; then
            dpkg-deb -x "$f" "$DPREFIX" || return 1
        else # no dpkg: a .deb is an ar archive holding data.tar.*
            (cd "$(mktemp -d)" && ar x "$f" && tar -xf data.tar.* -C "$DPREFIX") || return 1
        fi
    done
    local debs=("$DEPS_DIR"/*.deb)
    echo "unpacked ${#debs[@]} packages into $DPREFIX"
    ls "$DPREFIX/usr/include/sodium.h" "$DPREFIX/usr/include/criterion/criterion.h" \
        "$DPREFIX/usr/include/cjson/cJSON.h" "$DPREFIX/usr/include/zstd.h" \
        "$DPREFIX/usr/include/openssl/evp.h"
}

run() {
    OUT=${OUT:-$ROOT/$BUILD/gpu-check}
    DPREFIX=${DPREFIX:-/tmp/dprefix}
    JOBS=${JOBS:-$(nproc)}
    GPU_TEST_BIN=${GPU_TEST_BIN:-$BUILD/tests/gpu}
    SANITIZE_FILTER=${SANITIZE_FILTER:-*/small*}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    for t in make cc nvcc; do command -v $t >/dev/null || die "$t not found on this machine"; done
    export LD_LIBRARY_PATH=$DPREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

    echo "gpu_check: repository $ROOT, output $OUT"
    step device 0 nvidia-smi || true
    if ! step unpack 1 unpack ||
        ! step build 1 make BUILD=$BUILD DEPS_PREFIX="$DPREFIX" -j"$JOBS" all "$GPU_TEST_BIN"; then
        write_summary
        exit 1
    fi

    step gpu-tests 1 "$GPU_TEST_BIN" --jobs=1 --short-filename --verbose \
        --json="$OUT/gpu-tests.json" || true

    local sanitizer="" c
    for c in "$(command -v compute-sanitizer || true)" "$(dirname "$(command -v nvcc)")/compute-sanitizer" \
        /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            sanitizer=$c
            break
        fi
    done
    if [ -n "$sanitizer" ]; then
        local tool extra
        for tool in memcheck racecheck synccheck initcheck; do
            extra=()
            if [ $tool = memcheck ]; then extra=(--leak-check full); fi
            # Criterion runs each test in a forked child: --target-processes all follows it.
            step "sanitize-$tool" 1 "$sanitizer" --tool $tool "${extra[@]}" \
                --target-processes all --error-exitcode 97 \
                "$GPU_TEST_BIN" --jobs=1 --short-filename --filter "$SANITIZE_FILTER" || true
            echo "   $(grep -c 'ERROR SUMMARY' "$OUT/sanitize-$tool.log" || true) sanitizer" \
                "session(s) in the log (expect 2 or more: runner + test process)"
        done
    else
        skip sanitize "compute-sanitizer not found"
        FAILED=$((FAILED + 1))
    fi

    if [ "${TSEAL_GPU_TEST_HUGE:-0}" = 1 ]; then
        step gpu-tests-huge 1 env TSEAL_GPU_TEST_HUGE=1 "$GPU_TEST_BIN" --jobs=1 \
            --short-filename --verbose --filter 'gpu_decode/huge' || true
    else
        skip gpu-tests-huge "TSEAL_GPU_TEST_HUGE is not 1"
    fi

    # The memory scan (no BF16 plaintext in host memory) of the GPU path lives in the main suite.
    step memscan-gpu 1 make BUILD=$BUILD DEPS_PREFIX="$DPREFIX" -j"$JOBS" "$BUILD/tests/unit" || true
    step memscan-gpu-run 1 "$BUILD/tests/unit" --jobs=1 --verbose --filter 'memscan/*' || true

    # The CLI end to end: pack a synthetic model, load it onto the GPU and check every tensor.
    local w=$OUT/load-demo
    rm -rf "$w" && mkdir -p "$w"
    step load-demo 1 sh -c "cd '$w' && '$ROOT/$BUILD/tseal' synth --preset small -o model &&
        '$ROOT/$BUILD/tseal' keygen --sign vendor -q && '$ROOT/$BUILD/tseal' keygen --recipient bank -q &&
        '$ROOT/$BUILD/tseal' pack model -o m.tseal --sign-key vendor.sign.key -r bank.pub \
            --model-id demo/small --version 1 -q &&
        '$ROOT/$BUILD/tseal' load m.tseal --key bank.key --trust vendor.sign.pub --check --json &&
        '$ROOT/$BUILD/tseal' load m.tseal --key bank.key --trust vendor.sign.pub --check --gpu-decrypt --json" || true

    for b in gpu gemv; do
        if "$BUILD/tseal" bench $b --help >/dev/null 2>&1; then
            step bench-$b 1 sh -c "'$BUILD/tseal' bench $b --json >'$OUT/bench-$b.json'" || true
        else
            skip bench-$b "'tseal bench $b' is not available in this build"
        fi
    done

    # Optional: rows per lane (docs/GEMV.md, "Two rows per lane"). The default above pairs rows at
    # batch 4 and 8 where the plan allows; here one row per lane there, and two at every batch
    # bound that has pair kernels (also where the default plan would not pair).
    step bench-gemv-pair1 0 sh -c "'$BUILD/tseal' bench gemv --batch 4,8 --pair 1 --json \
        >'$OUT/bench-gemv-pair1.json'" || true
    step bench-gemv-pair2 0 sh -c "'$BUILD/tseal' bench gemv --batch 1,2,8 --pair 2 --json \
        >'$OUT/bench-gemv-pair2.json'" || true
    # Optional: the decode writing its output directly (16 bytes per thread) against the default
    # (chunks staged in shared memory, whole 128-byte runs per warp store; kernels/decode.cuh).
    step bench-gpu-direct 0 sh -c "'$BUILD/tseal' bench gpu --stores direct --no-load --json \
        >'$OUT/bench-gpu-direct.json'" || true
    # Optional, for choosing the serving segment size (docs/GEMV.md): the fused GEMV at 1024-weight
    # segments, the decode at 256. Last, so that a call cut off by its time limit loses only these.
    step bench-gemv-seg1024 0 sh -c "'$BUILD/tseal' bench gemv --segment 1024 --batch 1,8 --json \
        >'$OUT/bench-gemv-seg1024.json'" || true
    step bench-gpu-seg256 0 sh -c "'$BUILD/tseal' bench gpu --segment 256 --no-load --json \
        >'$OUT/bench-gpu-seg256.json'" || true
    # Optional: 4096 x 14336 with the tile width before automatic widths (32: 2 tiles per row,
    # no combine kernel) against the default (8: 7 tiles, 4 rows per warp; docs/GEMV.md).
    step bench-gemv-tile32 0 sh -c "'$BUILD/tseal' bench gemv --shapes 4096x14336 --batch 1,8 \
        --tile 32 --json >'$OUT/bench-gemv-tile32.json'" || true
    # Optional: the earlier control flow of the decode loops (the chunk body inside the lookup
    # loop; docs/GEMV.md, "Control flow"), built apart, against the default measured above.
    if step build-inline 0 make BUILD=$BUILD-inline DEPS_PREFIX="$DPREFIX" -j"$JOBS" \
        KERNEL_DEFS="-DTSEAL_GEMV_INLINE_CHUNKS=1 -DTSEAL_DECODE_INLINE_CHUNKS=1" "$BUILD-inline/tseal"; then
        step bench-gemv-inline 0 sh -c "'$BUILD-inline/tseal' bench gemv --batch 1,8 --json \
            >'$OUT/bench-gemv-inline.json'" || true
        step bench-gpu-inline 0 sh -c "'$BUILD-inline/tseal' bench gpu --no-load --json \
            >'$OUT/bench-gpu-inline.json'" || true
    fi

    # The end-to-end proof (issue 9) needs torch and transformers on the GPU machine and several
    # minutes (a 1B model): only with TSEAL_GPU_E2E=1, best in a call of its own.
    if [ "${TSEAL_GPU_E2E:-0}" != 1 ]; then
        skip e2e-serve "TSEAL_GPU_E2E is not 1"
    elif python3 -c 'import torch, transformers' >/dev/null 2>&1; then
        step e2e-serve 0 env TSEAL_LIB="$ROOT/$BUILD/libtseal.so" TSEAL_BIN="$ROOT/$BUILD/tseal" \
            python3 bench/e2e_serve.py --json-out "$OUT/e2e-serve.json" || true
    else
        skip e2e-serve "python3 cannot import torch and transformers here"
    fi

    write_summary
    [ "$FAILED" -eq 0 ]
}

case "${1:---fetch}" in
--fetch) fetch ;;
--run) run ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
*) die "unknown argument '$1' (use --fetch or --run)" ;;
esac
