#!/usr/bin/env bash
# cli.sh - the `tseal` command end to end: help texts, exit codes, errors that name the problem,
# and the JSON interface of `tseal bench codec` (run by `make test`).
set -uo pipefail
T=${1:-build/tseal}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fails=0
ok() { printf '  ok    %s\n' "$1"; }
bad() { printf '  FAIL  %s\n' "$1"; fails=$((fails + 1)); }
expect_rc() { # expected-rc description command...
    local want=$1 what=$2; shift 2
    "$@" >"$W/out" 2>"$W/err"; local rc=$?
    if [ "$rc" = "$want" ]; then ok "$what (exit $rc)"; else bad "$what: exit $rc, wanted $want: $(head -c 300 "$W/err")"; fi
}
expect_err() { # substring description
    if grep -q -- "$1" "$W/err"; then ok "$2"; else bad "$2: stderr lacks '$1': $(head -c 300 "$W/err")"; fi
}

echo "tests/cli.sh: $T"
expect_rc 0 "tseal --help" "$T" --help
expect_rc 0 "tseal version" "$T" version
expect_rc 2 "tseal without a command" "$T"
expect_rc 2 "unknown command" "$T" frobnicate
for c in "bench codec" check convert synth; do
    # shellcheck disable=SC2086
    expect_rc 0 "tseal $c --help" "$T" $c --help
    grep -q "Usage: tseal" "$W/out" || bad "tseal $c --help prints a usage line"
done
expect_rc 0 "tseal help synth" "$T" help synth
expect_rc 2 "bench codec without a model" "$T" bench codec
expect_rc 2 "bench codec bad --segment" "$T" bench codec --segment 1000 --normal 8x8
expect_rc 2 "synth without -o" "$T" synth

expect_rc 0 "synth tiny model" "$T" synth -o "$W/m" --preset tiny --seed 3
expect_rc 0 "check the model" "$T" check -q "$W/m"
expect_rc 0 "check --json" "$T" check --json "$W/m"
grep -q '"tensor_count"' "$W/out" && ok "check --json has tensor_count" || bad "check --json has tensor_count"
expect_rc 2 "synth refuses a non-empty directory" "$T" synth -o "$W/m"

expect_rc 0 "bench codec --json" "$T" bench codec --json -q --repeat 1 --no-zstd19 "$W/m"
for k in params bits_per_weight bound_bits_per_weight ratio decode_gbps_per_core decode_gbps_all_cores \
    encode_gbps_per_core zstd3_ratio zstd19_ratio roundtrip_exact; do
    grep -q "\"$k\"" "$W/out" && ok "bench JSON has $k" || bad "bench JSON has $k"
done
grep -q '"roundtrip_exact":[[:space:]]*true' "$W/out" && ok "round trip exact" || bad "round trip exact"

expect_rc 4 "check a missing file" "$T" check "$W/nope.safetensors"
expect_err "nope.safetensors" "error names the missing file"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}         ' >"$W/bad.safetensors"
expect_rc 3 "check a malformed file" "$T" check "$W/bad.safetensors"
expect_err "bad.safetensors" "error names the malformed file"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' >"$W/huge.safetensors"
expect_rc 3 "check a header length over the cap" "$T" check "$W/huge.safetensors"

expect_rc 0 "convert BF16 model (copies)" "$T" convert "$W/m/model.safetensors" -o "$W/c.safetensors"
cmp -s "$W/m/model.safetensors" "$W/c.safetensors" && ok "converting a BF16 file is the identity" ||
    bad "converting a BF16 file is the identity"
expect_rc 3 "convert a malformed file leaves no output" "$T" convert "$W/bad.safetensors" -o "$W/x.safetensors"
if ls "$W" | grep -q '^x\.safetensors'; then bad "no partial output"; else ok "no partial output (nor temp file)"; fi

if [ "$fails" -ne 0 ]; then
    echo "tests/cli.sh: $fails failure(s)"
    exit 1
fi
echo "tests/cli.sh: all passed"
