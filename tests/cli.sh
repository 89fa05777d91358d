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

# ---- container commands ----------------------------------------------------------------
export TSEAL_PWHASH_INTERACTIVE=1
for c in keygen pack inspect verify unpack "bench pack"; do
    # shellcheck disable=SC2086
    expect_rc 0 "tseal $c --help" "$T" $c --help
done
expect_rc 0 "keygen --sign" "$T" keygen --sign "$W/vendor"
[ "$(stat -c %a "$W/vendor.sign.key")" = 600 ] && ok "secret key mode 0600" || bad "secret key mode 0600"
grep -q "NOT passphrase-protected" "$W/err" && ok "keygen says the key is unprotected" || bad "keygen says the key is unprotected"
expect_rc 2 "keygen refuses to overwrite" "$T" keygen --sign "$W/vendor"
expect_rc 0 "keygen --recipient" "$T" keygen --recipient "$W/bank"
printf 'correct horse\n' >"$W/pass"
expect_rc 0 "keygen --recipient with a passphrase" "$T" keygen --recipient "$W/audit" --passphrase-file "$W/pass"
expect_rc 2 "keygen needs --sign or --recipient" "$T" keygen
expect_rc 0 "pack" "$T" pack "$W/m" -o "$W/m.tseal" --sign-key "$W/vendor.sign.key" -r "$W/bank.pub" -r "$W/audit.pub" \
    --model-id acme/credit-7b --version 12 --expires 2099-01-01 -q
expect_rc 2 "pack without --model-id" "$T" pack "$W/m" -o "$W/x.tseal" --sign-key "$W/vendor.sign.key" -r "$W/bank.pub" --version 1
expect_rc 3 "pack with a public key as signer" "$T" pack "$W/m" -o "$W/x.tseal" --sign-key "$W/vendor.sign.pub" -r "$W/bank.pub" \
    --model-id a --version 1
if ls "$W" | grep -q '^x\.tseal'; then bad "failed pack left no output"; else ok "failed pack left no output"; fi
expect_rc 0 "inspect --json" "$T" inspect --json "$W/m.tseal"
for k in format_version suite model_id version signer_key_ids recipient_count payload_bytes container_bytes original_bytes; do
    grep -q "\"$k\"" "$W/out" && ok "inspect JSON has $k" || bad "inspect JSON has $k"
done
grep -q '"recipient_count":[[:space:]]*2' "$W/out" && ok "two recipients" || bad "two recipients"
expect_rc 0 "verify" "$T" verify "$W/m.tseal" --trust "$W/vendor.sign.pub" -q
expect_rc 0 "verify --key --json" "$T" verify "$W/m.tseal" --trust "$W/vendor.sign.pub" --key "$W/bank.key" --json
grep -q '"ok":[[:space:]]*true' "$W/out" && ok "verify JSON ok" || bad "verify JSON ok"
expect_rc 2 "verify needs --trust" "$T" verify "$W/m.tseal"
expect_rc 2 "verify --trust with a recipient key" "$T" verify "$W/m.tseal" --trust "$W/bank.pub" -q
"$T" keygen --sign "$W/other" -q
expect_rc 3 "verify with an untrusted signer" "$T" verify "$W/m.tseal" --trust "$W/other.sign.pub" -q
expect_err "not trusted" "error says the signer is not trusted"
expect_rc 2 "protected key without its passphrase" "$T" verify "$W/m.tseal" --trust "$W/vendor.sign.pub" --key "$W/audit.key"
expect_err "passphrase" "error says the key needs a passphrase"
expect_rc 0 "protected key with its passphrase" "$T" verify "$W/m.tseal" --trust "$W/vendor.sign.pub" --key "$W/audit.key" \
    --passphrase-file "$W/pass" -q
cp "$W/m.tseal" "$W/t.tseal"
printf '\x00' | dd of="$W/t.tseal" bs=1 seek=3000 conv=notrunc status=none
expect_rc 3 "verify a tampered container" "$T" verify "$W/t.tseal" --trust "$W/vendor.sign.pub"
expect_err "t.tseal" "error names the container"
expect_rc 3 "unpack a tampered container" "$T" unpack "$W/t.tseal" --key "$W/bank.key" -o "$W/r1"
[ ! -e "$W/r1" ] && ! ls "$W" | grep -q '^r1' && ok "no partial unpack output" || bad "no partial unpack output"
expect_rc 2 "unpack without --key" "$T" unpack "$W/m.tseal" -o "$W/r2"
expect_rc 0 "unpack" "$T" unpack "$W/m.tseal" --key "$W/bank.key" --trust "$W/vendor.sign.pub" -o "$W/r2" -q
diff -r "$W/m" "$W/r2" >/dev/null && ok "unpacked files are byte-identical" || bad "unpacked files are byte-identical"
expect_rc 2 "unpack into a non-empty folder" "$T" unpack "$W/m.tseal" --key "$W/bank.key" -o "$W/r2"
expect_rc 0 "unpack without --trust warns" "$T" unpack "$W/m.tseal" --key "$W/bank.key" -o "$W/r3"
expect_err "NOT authenticated" "unpack warns the signer is not authenticated"

# ---- policy, sign --add, audit --------------------------------------------------------------
for c in policy sign audit audit-verify; do
    expect_rc 0 "tseal $c --help" "$T" $c --help
done
"$T" keygen --sign "$W/validator" -q
"$T" keygen --sign "$W/auditor" -q
expect_rc 0 "policy init" "$T" policy init --trust "$W/vendor.sign.pub" --trust "$W/validator.sign.pub" \
    --model acme/credit-7b --min-version 12 --threshold 2 -o "$W/site.json"
expect_rc 0 "policy show" "$T" policy show "$W/site.json"
grep -q "threshold" "$W/out" && ok "policy show explains the threshold" || bad "policy show explains the threshold"
expect_rc 3 "verify --policy denies 1 of 2 signatures" "$T" verify "$W/m.tseal" --policy "$W/site.json"
expect_err "threshold not met" "denial names the threshold"
cp "$W/m.tseal" "$W/m2.tseal"
expect_rc 0 "sign --add" "$T" sign --add "$W/m2.tseal" --sign-key "$W/validator.sign.key"
expect_rc 0 "verify --policy with 2 of 2 and a state file" "$T" verify "$W/m2.tseal" --policy "$W/site.json" \
    --key "$W/bank.key" --state "$W/state.json" -q
grep -q '"version": 12' "$W/state.json" && ok "rollback state recorded" || bad "rollback state recorded"
expect_rc 2 "policy sign needs a key" "$T" policy sign "$W/site.json" -o "$W/signed.json"
"$T" keygen --sign "$W/admin" -q
expect_rc 0 "policy sign" "$T" policy sign "$W/site.json" --sign-key "$W/admin.sign.key" -o "$W/signed.json"
expect_rc 0 "signed policy accepted with --policy-key" "$T" verify "$W/m2.tseal" --policy "$W/signed.json" \
    --policy-key "$W/admin.sign.pub" -q
expect_rc 3 "unsigned policy refused when --policy-key is given" "$T" verify "$W/m2.tseal" --policy "$W/site.json" \
    --policy-key "$W/admin.sign.pub" -q
expect_rc 0 "audit" "$T" audit "$W/m2.tseal" --key "$W/bank.key" --policy "$W/site.json" --reference "$W/m" \
    --report "$W/report.json" --audit-key "$W/auditor.sign.key" -q
expect_rc 0 "audit-verify" "$T" audit-verify "$W/report.json" --trust "$W/auditor.sign.pub"
expect_rc 3 "audit-verify with the wrong key" "$T" audit-verify "$W/report.json" --trust "$W/vendor.sign.pub"
sed 's/"ewoJ/"ewoK/' "$W/report.json" >"$W/edited.json"
cmp -s "$W/report.json" "$W/edited.json" && bad "the report edit changed nothing"
expect_rc 3 "audit-verify of an edited report" "$T" audit-verify "$W/edited.json" --trust "$W/auditor.sign.pub"
expect_rc 0 "audit-verify --json" "$T" audit-verify "$W/report.json" --trust "$W/auditor.sign.pub" --json
grep -q '"passed":[[:space:]]*true' "$W/out" && ok "audit-verify JSON says passed" || bad "audit-verify JSON says passed"

# ---- the FIPS suite with X.509 signers (a PKI made with the openssl command) ----------------
P="$W/pki"
mkdir -p "$P"
pki() { openssl "$@" >/dev/null 2>&1 || bad "openssl $1"; }
pki req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/root.key" -out "$P/root.pem" \
    -days 30 -subj "/CN=Bank Root CA/O=Bank" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=email:release@acme.example\n' >"$P/leaf.cnf"
for who in signer second; do
    pki req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$who.key.pem" -out "$P/$who.csr" \
        -subj "/CN=acme-$who/O=Acme"
    pki x509 -req -in "$P/$who.csr" -CA "$P/root.pem" -CAkey "$P/root.key" -CAcreateserial -out "$P/$who.pem" \
        -days 10 -extfile "$P/leaf.cnf"
    chmod 600 "$P/$who.key.pem"
done
expect_rc 0 "keygen --recipient --suite fips" "$T" keygen --recipient "$W/fbank" --suite fips --json
grep -q '"suite": "fips"' "$W/out" && ok "keygen JSON names the suite" || bad "keygen JSON names the suite"
head -1 "$W/fbank.pub" | grep -q "BEGIN PUBLIC KEY" && ok "P-256 public key is SPKI PEM" || bad "P-256 public key is SPKI PEM"
head -1 "$W/fbank.key" | grep -q "BEGIN PRIVATE KEY" && ok "P-256 secret key is PKCS#8 PEM" || bad "P-256 secret key is PKCS#8 PEM"
[ "$(stat -c %a "$W/fbank.key")" = 600 ] && ok "P-256 secret key mode 0600" || bad "P-256 secret key mode 0600"
expect_rc 2 "keygen --suite bogus" "$T" keygen --recipient "$W/x" --suite bogus
expect_rc 0 "pack --suite fips --sign-cert" "$T" pack "$W/m" -o "$W/f.tseal" --suite fips --sign-key "$P/signer.key.pem" \
    --sign-cert "$P/signer.pem" -r "$W/fbank.pub" --model-id acme/credit-7b --version 12 -q
expect_rc 0 "inspect --json (fips)" "$T" inspect "$W/f.tseal" --json
grep -q '"suite":[[:space:]]*"fips-p256-aes256gcm-sha256"' "$W/out" && ok "inspect --json shows the FIPS suite" ||
    bad "inspect --json shows the FIPS suite"
expect_rc 0 "verify --trust-ca --key" "$T" verify "$W/f.tseal" --trust-ca "$P/root.pem" --key "$W/fbank.key" -q
expect_rc 0 "verify --trust-ca --identity" "$T" verify "$W/f.tseal" --trust-ca "$P/root.pem" \
    --identity "email:release@acme.example" -q
expect_rc 3 "verify with another identity" "$T" verify "$W/f.tseal" --trust-ca "$P/root.pem" \
    --certificate-identity "email:someone@else.example"
expect_err "matches no trusted identity" "identity refusal says why"
expect_rc 3 "verify with another CA" "$T" verify "$W/f.tseal" --trust-ca "$P/signer.pem"
expect_rc 2 "--identity without --trust-ca" "$T" verify "$W/f.tseal" --trust "$W/vendor.sign.pub" --identity "email:x@y"
expect_rc 0 "unpack (fips)" "$T" unpack "$W/f.tseal" --trust-ca "$P/root.pem" --key "$W/fbank.key" -o "$W/fout" -q
diff -r "$W/m" "$W/fout" >/dev/null && ok "FIPS unpack restores every file byte for byte" ||
    bad "FIPS unpack restores every file byte for byte"
expect_rc 3 "unpack a FIPS container with an X25519 key" "$T" unpack "$W/f.tseal" --trust-ca "$P/root.pem" \
    --key "$W/bank.key" -o "$W/fout2"
[ -e "$W/fout2" ] && bad "failed unpack left output" || ok "failed unpack left no output"
expect_rc 2 "pack --sign-cert without --suite fips" "$T" pack "$W/m" -o "$W/g.tseal" --sign-key "$P/signer.key.pem" \
    --sign-cert "$P/signer.pem" -r "$W/fbank.pub" --model-id acme/credit-7b --version 12 -q
expect_rc 0 "sign --add --sign-cert" "$T" sign --add "$W/f.tseal" --sign-key "$P/second.key.pem" \
    --sign-cert "$P/second.pem" -o "$W/f2.tseal"
expect_rc 0 "verify two X.509 signatures" "$T" verify "$W/f2.tseal" --trust-ca "$P/root.pem" --json
grep -q '"trusted_signatures":[[:space:]]*2' "$W/out" && ok "both certificate signatures trusted" ||
    bad "both certificate signatures trusted: $(cat "$W/out")"
expect_rc 0 "policy init --trust-ca --identity --fips-only" "$T" policy init --trust-ca "$P/root.pem" \
    --identity "email:release@acme.example" --fips-only --model acme/credit-7b --min-version 12 -o "$W/fips.json"
expect_rc 0 "FIPS-only policy allows the FIPS artifact" "$T" verify "$W/f.tseal" --policy "$W/fips.json" -q
expect_rc 3 "FIPS-only policy refuses a default-suite artifact" "$T" verify "$W/m.tseal" --policy "$W/fips.json"
expect_err "is not allowed" "downgrade refusal names the suite"

# load: onto a GPU; without one (CI, this machine) a clear error and exit code 5
expect_rc 0 "load --help" "$T" load --help
expect_rc 2 "load without --key" "$T" load "$W/m.tseal" --trust "$W/vendor.sign.pub"
expect_rc 2 "load without trust" "$T" load "$W/m.tseal" --key "$W/bank.key"
expect_rc 2 "load bad --staging" "$T" load "$W/m.tseal" --key "$W/bank.key" --trust "$W/vendor.sign.pub" --staging 0
"$T" load "$W/m.tseal" --key "$W/bank.key" --trust "$W/vendor.sign.pub" -q >"$W/out" 2>"$W/err"
load_rc=$?
case $load_rc in
0) ok "load onto the GPU" ;;
5)
    ok "load without a GPU (exit 5)"
    expect_err "CUDA" "no-GPU error says why"
    expect_rc 5 "load --json without a GPU" "$T" load "$W/m.tseal" --key "$W/bank.key" --trust "$W/vendor.sign.pub" --json
    grep -q '"exit_code":[[:space:]]*5' "$W/out" && ok "load --json reports exit code 5" || bad "load --json: $(cat "$W/out")"
    expect_rc 5 "bench gpu without a GPU" "$T" bench gpu --no-load
    expect_rc 5 "bench gemv without a GPU" "$T" bench gemv
    ;;
*) bad "load: exit $load_rc: $(head -c 300 "$W/err")" ;;
esac
expect_rc 0 "bench gpu --help" "$T" bench gpu --help
expect_rc 0 "bench gemv --help" "$T" bench gemv --help

if [ "$fails" -ne 0 ]; then
    echo "tests/cli.sh: $fails failure(s)"
    exit 1
fi
echo "tests/cli.sh: all passed"
