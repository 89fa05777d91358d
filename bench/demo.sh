#!/usr/bin/env bash
# demo.sh - `make demo`: the whole story on a sample model the project builds itself.
set -euo pipefail
BUILD=${1:-build}
T="$(cd "$(dirname "$BUILD/tseal")" && pwd)/tseal"
D="$BUILD/demo"
step() { printf '\n== %s\n' "$*"; }
proved() { printf '   -> %s\n' "$*"; }

rm -rf "$D"
mkdir -p "$D"
cd "$D"

step "1. A sample model: deterministic synthetic Llama-shaped BF16 model (preset tiny, seed 1)"
"$T" synth -o model --preset tiny --seed 1
"$T" check -q model
ls -l model
proved "the strict safetensors reader accepts it (header, dtypes, shapes, offsets covering the data exactly)"

step "2. Keys: the vendor's signing key, and recipient keys for a bank and its auditor"
"$T" keygen --sign vendor
"$T" keygen --recipient bank
"$T" keygen --recipient audit
proved "secret keys are mode $(stat -c %a vendor.sign.key); public keys can be shared"

step "3. Pack: code every tensor, encrypt everything in 64 KiB chunks, sign the header"
"$T" pack model -o model.tseal --sign-key vendor.sign.key -r bank.pub -r audit.pub \
    --model-id acme/credit-7b --version 12 --expires 2099-12-31
proved "one container, $(stat -c %s model.tseal) bytes for $(du -cb model/* | tail -1 | cut -f1) bytes of model files"

step "4. Inspect the public header (no key needed)"
"$T" inspect model.tseal

step "5. Verify as anyone holding the vendor's public key"
"$T" verify model.tseal --trust vendor.sign.pub
proved "the signature is the vendor's and every ciphertext chunk is the one the vendor signed"

step "6. Verify as the bank: decrypt, decode every tensor, check every digest"
"$T" verify model.tseal --trust vendor.sign.pub --key bank.key
proved "the bank can decrypt, and every tensor decodes bit-exactly to the signed SHA-256"

step "7. Tampering is caught: flip one byte in the middle of the payload"
cp model.tseal tampered.tseal
size=$(stat -c %s tampered.tseal)
printf '\xff' | dd of=tampered.tseal bs=1 seek=$((size / 2)) conv=notrunc status=none
if "$T" verify tampered.tseal --trust vendor.sign.pub; then
    echo "ERROR: tampering was not detected" >&2
    exit 1
fi
proved "verify refused the tampered copy (exit code 3) and named the chunk"

step "8. Unpack as the auditor and compare with the original files"
"$T" unpack model.tseal --key audit.key --trust vendor.sign.pub -o restored
(cd model && sha256sum $(find . -type f | sort)) >original.sha256
(cd restored && sha256sum -c --quiet ../original.sha256)
diff -r model restored
proved "every restored file has the same SHA-256 as the original: byte-identical"

step "9. The site's deployment policy: only this model, version >= 12, signed by the vendor"
"$T" keygen --sign auditor -q
"$T" policy init --trust vendor.sign.pub --model acme/credit-7b --min-version 12 -o site.json
"$T" verify model.tseal --policy site.json --key bank.key --state state.json
proved "the policy gate allowed it and recorded version 12 as the highest accepted (rollback protection)"
"$T" pack model -o old.tseal --sign-key vendor.sign.key -r bank.pub --model-id acme/credit-7b --version 11 -q
if "$T" verify old.tseal --policy site.json --state state.json; then
    echo "ERROR: an older version was accepted" >&2
    exit 1
fi
proved "an older version 11 is refused, with every reason"

step "10. Audit: decode every tensor in locked memory, compare with the original files, sign a report"
"$T" audit model.tseal --key audit.key --policy site.json --reference model --report report.json \
    --audit-key auditor.sign.key
"$T" audit-verify report.json --trust auditor.sign.pub
proved "a signed, verifiable statement that the artifact decodes bit-exactly to the validated model"

step "11. A regulated site: the FIPS suite (ECDSA P-256 by an X.509 certificate, ECDH P-256, AES-256-GCM)"
# the site's PKI, made here with the openssl command: a root CA and the vendor's code-signing certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 365 \
    -subj "/CN=Bank Root CA/O=Bank" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout release.key.pem -out release.csr \
    -subj "/CN=acme-release/O=Acme" 2>/dev/null
chmod 600 release.key.pem
printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=email:release@acme.example\n' >leaf.cnf
openssl x509 -req -in release.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out release.pem -days 90 \
    -extfile leaf.cnf 2>/dev/null
"$T" keygen --recipient fbank --suite fips -q
"$T" pack model -o fips.tseal --suite fips --sign-key release.key.pem --sign-cert release.pem -r fbank.pub \
    --model-id acme/credit-7b --version 12 -q
"$T" inspect fips.tseal | sed -n '2p;8,11p'
"$T" verify fips.tseal --trust-ca ca.pem --identity email:release@acme.example --key fbank.key
"$T" policy init --trust-ca ca.pem --identity email:release@acme.example --fips-only \
    --model acme/credit-7b --min-version 12 -o fips-site.json
"$T" verify fips.tseal --policy fips-site.json -q
if "$T" verify model.tseal --policy fips-site.json 2>/dev/null; then
    echo "ERROR: a default-suite artifact passed a FIPS-only policy" >&2
    exit 1
fi
proved "signed by a CA-issued certificate, verified to the site's root; a FIPS-only policy refuses the default suite"

step "12. The codec on its own: compression against the Shannon bound and zstd"
"$T" bench codec --repeat 1 --no-zstd19 -q model

step "13. Load onto a GPU: verify, decrypt into pinned staging, copy the compressed tensors, decode there"
set +e
"$T" load model.tseal --key bank.key --trust vendor.sign.pub --check
rc=$?
set -e
if [ $rc -eq 0 ]; then
    proved "every tensor decoded on the GPU matches its signed digest; no BF16 weight sat in host memory"
elif [ $rc -eq 5 ]; then
    proved "no GPU here: 'tseal load' says so (exit 5); bench/gpu_check.sh runs it on a lent GPU"
else
    exit $rc
fi
printf '\nDemo done: packed, signed, encrypted, verified, tamper-checked, restored byte for byte,\ngated by a policy with rollback protection, audited with a signed report, and packed in the
FIPS suite for a site whose signers hold X.509 certificates.\n'
