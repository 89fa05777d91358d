#!/usr/bin/env bash
# fuzz/run.sh BUILD SECONDS TARGET... - run each libFuzzer binary BUILD/fuzz-TARGET for SECONDS
# on its corpus (fuzz/corpus/TARGET, new inputs kept in BUILD/corpus-TARGET), FUZZ_JOBS at a
# time (default: the number of CPUs; each fuzzer uses one), then report in TARGET order. A
# target that finds a crash, leak or sanitizer report fails the run with its log's tail; the
# input is saved under fuzz/artifacts/.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: fuzz/run.sh BUILD SECONDS TARGET..." >&2; exit 2; }
B=$1
S=$2
shift 2
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
mkdir -p fuzz/artifacts

fuzz_one() { # target
    mkdir -p "fuzz/corpus/$1" "$B/corpus-$1"
    "$B/fuzz-$1" -max_total_time="$S" -rss_limit_mb=2048 -artifact_prefix="fuzz/artifacts/$1-" \
        "$B/corpus-$1" "fuzz/corpus/$1" >"$B/$1.log" 2>&1
    echo $? >"$B/$1.rc"
}
export -f fuzz_one
export B S
for t in "$@"; do rm -f "$B/$t.rc"; done
printf '%s\n' "$@" | xargs -P "$JOBS" -I{} bash -c 'fuzz_one "$1"' _ {}

fail=0
for t in "$@"; do
    printf 'fuzzing %-12s %3ss: ' "$t" "$S"
    if [ "$(cat "$B/$t.rc" 2>/dev/null)" = 0 ]; then
        tail -1 "$B/$t.log"
    else
        echo FAILED
        tail -40 "$B/$t.log"
        echo "crasher saved under fuzz/artifacts/ (add it to fuzz/crashers/$t/ once fixed)"
        fail=1
    fi
done
exit $fail
