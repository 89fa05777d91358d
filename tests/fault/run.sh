#!/usr/bin/env bash
# tests/fault/run.sh [BIN] - fault injection over `tseal pack`, `tseal verify --key` and
# `tseal unpack` of a tiny model (tests/fault/README.md). BIN (default build-asan/tseal-fault) is
# the tseal CLI built with ASan+UBSan and tests/fault/fault.c (make fault-test); its logs go to
# fault-logs/ beside it.
#
# For each operation, for each class (ALLOC, IO) and mode (one-shot: fail only the Nth call;
# persistent: fail the Nth and every later call; short, IO only: every read/write from the Nth on
# moves half its bytes), N = 1, 2, 3, ... until a run makes fewer than N calls. Every run that
# failed must: exit 1..5 (no signal, no sanitizer exit, no timeout), print
# "tseal: error: <message>" first, have no ASan/LSan/UBSan report, no descriptor left open and no
# sodium_malloc block unfreed, and leave its output folder empty (no output, no *.tmp.*). Every
# run that succeeded must have produced correct output; short reads and writes must not make a
# run fail (POSIX allows them). Environment: FAULT_JOBS (parallel
# sweeps, default: CPUs), FAULT_STRIDE (test every Nth injection point, default 1 = all),
# FAULT_TIMEOUT (seconds per run, default 60), FAULT_KEEP=1 (keep the work folder),
# FAULT_NOTES=1 (list the call site of every error message that names no file, key or tensor).
set -uo pipefail
ARG=${1:-build-asan/tseal-fault}
BUILD=$(dirname "$ARG")
BIN=$(cd "$BUILD" 2>/dev/null && pwd)/$(basename "$ARG")
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$BIN" ] || { echo "run.sh: $ARG not found (make fault-test builds it)" >&2; exit 2; }
nm "$BIN" 2>/dev/null | grep ' __wrap_malloc$' >/dev/null ||
    { echo "run.sh: $BIN has no fault hooks (build it with make fault-test)" >&2; exit 2; }
JOBS=${FAULT_JOBS:-$(nproc 2>/dev/null || echo 2)}
STRIDE=${FAULT_STRIDE:-1}
TMO=${FAULT_TIMEOUT:-60}
NOTES=${FAULT_NOTES:-0}
T=$(mktemp -d "${TMPDIR:-/tmp}/tseal-fault.XXXXXX")
[ "${FAULT_KEEP:-0}" = 1 ] || trap 'rm -rf "$T"' EXIT
LOGS=$BUILD/fault-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
LOGS=$(cd "$LOGS" && pwd)
W=$T/w
mkdir -p "$W/keys" "$T/res"

# exitcode: a sanitizer report must not look like tseal's own exit codes 1..5.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export LSAN_OPTIONS=exitcode=86
export TSEAL_PWHASH_INTERACTIVE=1 TSEAL_FAULT_REPORT=1
unset TSEAL_FAULT_ALLOC TSEAL_FAULT_IO TSEAL_FAULT_PERSIST TSEAL_FAULT_TRACE

die() { echo "run.sh: $*" >&2; exit 1; }
t0=$(date +%s)

# ---- the model, keys and a reference container ---------------------------------------------
${CC:-cc} -O1 -o "$T/mkmodel" "$HERE/mkmodel.c" || die "cannot build mkmodel"
"$T/mkmodel" "$W/model" || die "mkmodel failed"
printf 'correct horse battery staple\n' >"$W/keys/pass"
(
    cd "$W/keys" &&
        "$BIN" keygen --sign vendor --passphrase-file pass &&
        "$BIN" keygen --recipient bank &&
        "$BIN" keygen --recipient audit --passphrase-file pass
) >"$T/keygen.log" 2>&1 || { cat "$T/keygen.log"; die "keygen failed"; }
K=$W/keys
PACK_ARGS=(pack "$W/model" --sign-key "$K/vendor.sign.key" --passphrase-file "$K/pass" -r "$K/bank.pub"
    -r "$K/audit.pub" --model-id acme/tiny --version 3 --expires 2099-12-31 --chunk-size 4096 -q)
"$BIN" "${PACK_ARGS[@]}" -o "$W/ref.tseal" 2>"$T/ref.log" || { cat "$T/ref.log"; die "reference pack failed"; }

# The FIPS suite: a test PKI made with the openssl command (a P-256 root CA, a code-signing
# leaf issued by it, the root's empty CRL), a P-256 recipient key and a reference container.
P=$W/pki
mkdir -p "$P"
(
    set -e
    cd "$P"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem \
        -days 30 -subj "/CN=Fault Root CA/O=Bank" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature extendedKeyUsage=codeSigning \
        subjectAltName=email:release@acme.example >leaf.cnf
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout signer.key.pem -out signer.csr \
        -subj "/CN=acme-release/O=Acme"
    openssl x509 -req -in signer.csr -CA root.pem -CAkey root.key -set_serial 2 -out signer.pem -days 10 \
        -extfile leaf.cnf
    chmod 600 signer.key.pem
    : >index.txt
    echo 01 >crlnumber
    printf '%s\n' '[ca]' 'default_ca = root' '[root]' 'database = index.txt' 'crlnumber = crlnumber' \
        'default_md = sha256' 'default_crl_days = 30' >ca.cnf
    openssl ca -config ca.cnf -gencrl -keyfile root.key -cert root.pem -out crl.pem
    cd "$K"
    "$BIN" keygen --recipient fbank --suite fips
) >"$T/pki.log" 2>&1 || { cat "$T/pki.log"; die "test PKI or P-256 keygen failed"; }
FTRUST=(--trust-ca "$P/root.pem" --crl "$P/crl.pem" --identity email:release@acme.example)
FPACK_ARGS=(pack "$W/model" --suite fips --sign-key "$P/signer.key.pem" --sign-cert "$P/signer.pem"
    -r "$K/fbank.pub" --model-id acme/tiny --version 3 --expires 2099-12-31 --chunk-size 4096 -q)
"$BIN" "${FPACK_ARGS[@]}" -o "$W/fref.tseal" 2>"$T/fref.log" || { cat "$T/fref.log"; die "FIPS reference pack failed"; }

# Per operation: the command line (OUT is the operation's output folder).
op_cmd() { # op out
    case $1 in
    pack) CMD=("$BIN" "${PACK_ARGS[@]}" -o "$2/c.tseal") ;;
    verify) CMD=("$BIN" verify "$W/ref.tseal" --trust "$K/vendor.sign.pub" --key "$K/bank.key" -q) ;;
    unpack) CMD=("$BIN" unpack "$W/ref.tseal" --trust "$K/vendor.sign.pub" --key "$K/audit.key"
        --passphrase-file "$K/pass" -o "$2/restored" -q) ;;
    fips-pack) CMD=("$BIN" "${FPACK_ARGS[@]}" -o "$2/c.tseal") ;;
    fips-verify) CMD=("$BIN" verify "$W/fref.tseal" "${FTRUST[@]}" --key "$K/fbank.key" -q) ;;
    fips-unpack) CMD=("$BIN" unpack "$W/fref.tseal" "${FTRUST[@]}" --key "$K/fbank.key" -o "$2/restored" -q) ;;
    esac
}

# Baseline: descriptors open at exit in a run that does nothing (inherited ones).
BASE_FDS=$("$BIN" version 2>&1 >/dev/null | sed -n 's/.*fds=\([0-9-]*\).*/\1/p')
[ -n "$BASE_FDS" ] || die "no fault report from $BIN version"
snapshot() { (cd "$W" && find . -path ./out -prune -o -printf '%p %y %s %m\n' | sort); }
snapshot >"$T/shared.before"

# Correct output of a run that succeeded (a container: it verifies and unpacks to the model).
check_output() { # op out -> 0 if correct
    local trust=(--trust "$K/vendor.sign.pub" --key "$K/bank.key")
    [[ $1 == fips-* ]] && trust=("${FTRUST[@]}" --key "$K/fbank.key")
    case $1 in
    pack | fips-pack)
        TSEAL_FAULT_REPORT=0 "$BIN" verify "$2/c.tseal" "${trust[@]}" -q >/dev/null 2>&1 &&
            TSEAL_FAULT_REPORT=0 "$BIN" unpack "$2/c.tseal" "${trust[@]}" -o "$2/check" -q >/dev/null 2>&1 &&
            diff -r "$W/model" "$2/check" >/dev/null &&
            [ "$(ls -A "$2")" = "$(printf 'c.tseal\ncheck')" ]
        ;;
    verify | fips-verify) [ -z "$(ls -A "$2")" ] ;;
    unpack | fips-unpack) diff -r "$W/model" "$2/restored" >/dev/null && [ "$(ls -A "$2")" = restored ] ;;
    esac
}

# The call site of the Nth call: rerun with TSEAL_FAULT_TRACE=1 (once mode) and keep the first
# two frames outside fault.c, e.g. "tseal_mf_serialize packager/manifest.c:99 < write_payload ...".
site() { # class n
    rm -rf "$out" && mkdir -p "$out" # the same start as the run ($out: the sweep's folder)
    env "TSEAL_FAULT_$1=$2" TSEAL_FAULT_SHORT="${short:-0}" TSEAL_FAULT_TRACE=1 timeout -k 5 "$TMO" "${CMD[@]}" 2>&1 >/dev/null |
        grep -E '^ +#[0-9]+ ' | grep -vE ' in (__sanitizer_print_stack_trace|fault_hit|data_hit|other_hit|__wrap_)| /usr/include/' |
        head -2 | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in ([^ ]+) ([^ ]+).*/\1 \2/' | paste -sd'<' |
        sed 's/</ < /'
}

# ---- one sweep: op x class x mode, N = 1.. -------------------------------------------------
sweep() { # op class(ALLOC|IO) mode(once|persist|short)
    local op=$1 cls=$2 mode=$3 tag="$1-$2-$3"
    local out=$W/out/$tag res=$T/res/$tag n=1 runs=0 failed=0 okfault=0 bugs=0 total=-1
    local persist=0 short=0 want=1
    [ "$mode" = persist ] && persist=1
    [ "$mode" = short ] && persist=1 short=1 # every read/write from the Nth on is short
    [ "$cls" = IO ] && want=4
    local stride=$STRIDE
    [ "$cls" = IO ] && stride=1 # every I/O point, always
    : >"$res.bugs"
    while :; do
        rm -rf "$out" && mkdir -p "$out"
        op_cmd "$op" "$out"
        env "TSEAL_FAULT_$cls=$n" TSEAL_FAULT_PERSIST=$persist TSEAL_FAULT_SHORT=$short timeout -k 5 "$TMO" "${CMD[@]}" \
            >"$res.out" 2>"$res.err"
        local rc=$? why=""
        runs=$((runs + 1))
        # The fault report (the last tseal-fault line), the first other line and any sanitizer
        # report, read with bash builtins only (a fork per field costs more than the run).
        local rep="" msg="" line first=1 san=0 calls="" inj="" fds="" sec="" re=" ${cls,,}=([0-9]+)"
        while IFS= read -r line || [ -n "$line" ]; do
            if [[ $line == "tseal-fault: "* ]]; then
                rep=$line
            else
                [ "$first" = 1 ] && msg=$line first=0
                [[ $line =~ ERROR:\ (AddressSanitizer|LeakSanitizer)|runtime\ error:|Sanitizer ]] && san=1
            fi
        done <"$res.err"
        [[ $rep =~ $re ]] && calls=${BASH_REMATCH[1]}
        [[ $rep =~ \ injected=([0-9]+)\ fds=(-?[0-9]+)\ secure=(-?[0-9]+) ]] &&
            inj=${BASH_REMATCH[1]} fds=${BASH_REMATCH[2]} sec=${BASH_REMATCH[3]}
        # Every problem of the run is listed (a leak does not hide a partial output).
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            why="hang: no exit within ${TMO}s"
        elif [ "$rc" -ge 128 ]; then
            why="killed by signal $((rc - 128))"
        fi
        if [ "$rc" -eq 86 ] || [ "$rc" -eq 87 ] || [ "$san" = 1 ]; then
            why="${why:+$why; }sanitizer report (exit $rc)"
        fi
        if [ -z "$rep" ]; then
            why="${why:+$why; }no fault report at exit (exit $rc)"
        else
            [ "$fds" != "$BASE_FDS" ] && why="${why:+$why; }$((fds - BASE_FDS)) file descriptor(s) left open"
            [ "$sec" != 0 ] && why="${why:+$why; }$sec sodium_malloc block(s) (secrets) never freed"
        fi
        if [ "$rc" -eq 0 ]; then
            if ! check_output "$op" "$out"; then
                why="${why:+$why; }exit 0 but wrong or missing output"
            elif [ -z "$why" ] && [ "$inj" != 0 ]; then
                okfault=$((okfault + 1)) # the failed call was tolerated (short: as it must be)
                [ "$short" = 1 ] || printf '%s N=%s: %s\n' "$tag" "$n" "$(site "$cls" "$n")" >>"$res.tol"
            fi
        else
            [ -n "$(ls -A "$out")" ] && why="${why:+$why; }partial output left: $(ls -A "$out" | tr "\n" " ")"
        fi
        if [ "$rc" -ne 0 ] && [ "$short" = 1 ]; then
            why="${why:+$why; }short reads/writes (legal) made it fail (exit $rc): $msg"
        elif [ "$rc" -ne 0 ] && [ "$rc" -le 5 ]; then
            [[ $msg != "tseal: error: "?* ]] || [[ $msg == "tseal: error: no error" ]] &&
                why="${why:+$why; }exit $rc without an error message: '$msg'"
            [[ $msg == *"(null)"* ]] && why="${why:+$why; }a NULL string in the message: '$msg'"
            [ "$inj" = 0 ] && why="${why:+$why; }exit $rc although nothing was injected"
            if [ -z "$why" ]; then
                failed=$((failed + 1))
                # A message naming no file, key or tensor of the run (noted, not a failure).
                [ "$mode" = once ] && [[ $msg != *"$W/"* ]] && [[ $msg != *"tensor '"* ]] &&
                    printf '%s\t%s\n' "${msg#tseal: error: }" \
                        "$([ "$NOTES" = 1 ] && site "$cls" "$n")" >>"$res.vague"
                [ "$rc" != "$want" ] &&
                    printf '%s N=%s: exit %s, expected %s: %s\n    at %s\n' "$tag" "$n" "$rc" "$want" \
                        "$msg" "$(site "$cls" "$n")" >>"$res.codes"
            fi
        elif [ "$rc" -ne 0 ] && [ -z "$why" ]; then
            why="exit code $rc (not 1..5)"
        fi
        if [ -n "$why" ]; then
            bugs=$((bugs + 1))
            cp "$res.err" "$LOGS/$tag-$n.log"
            printf '%s N=%s: %s\n    at %s\n    %s\n' "$tag" "$n" "$why" "$(site "$cls" "$n")" \
                "$(grep -v '^tseal-fault: ' "$res.err" | head -3 | tr '\n' ' ' | cut -c1-400)" \
                >>"$res.bugs"
        fi
        # Done once the run made fewer calls than N (nothing injected, success required above).
        if [ -n "$calls" ] && [ "$calls" -lt "$n" ]; then
            total=$calls
            break
        fi
        [ -z "$calls" ] && [ "$n" -gt 100000 ] && break
        [ "$bugs" -ge 50 ] && { echo "$tag: stopped after 50 problems" >>"$res.bugs"; break; }
        n=$((n + stride))
    done
    rm -rf "$out"
    echo "$tag $total $runs $failed $okfault $bugs" >"$res.sum"
}

read -ra OPS <<<"${FAULT_OPS:-pack verify unpack fips-pack fips-verify fips-unpack}"
sweeps=()
for op in "${OPS[@]}"; do
    for cls in ALLOC IO; do
        for mode in once persist; do sweeps+=("$op $cls $mode"); done
    done
    sweeps+=("$op IO short")
done
running=0
for s in "${sweeps[@]}"; do
    # shellcheck disable=SC2086
    sweep $s &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

# ---- summary ------------------------------------------------------------------------------
snapshot >"$T/shared.after"
bugs=0
if ! cmp -s "$T/shared.before" "$T/shared.after"; then
    echo "FAIL: the model, keys or reference container changed:"
    diff "$T/shared.before" "$T/shared.after"
    bugs=$((bugs + 1))
fi
if [ -n "$(find "$W" -name '*.tmp.*' | head -1)" ]; then
    echo "FAIL: temporary files left: $(find "$W" -name '*.tmp.*')"
    bugs=$((bugs + 1))
fi
printf '%-26s %8s %6s %8s %10s %5s\n' sweep points runs "failed" "tolerated" bugs
for s in "${sweeps[@]}"; do
    tag=${s// /-}
    [ -f "$T/res/$tag.sum" ] || { echo "FAIL: sweep $tag did not finish"; bugs=$((bugs + 1)); continue; }
    read -r _ total runs failed okf nb <"$T/res/$tag.sum"
    printf '%-26s %8s %6s %8s %10s %5s\n' "$tag" "$total" "$runs" "$failed" "$okf" "$nb"
    bugs=$((bugs + nb))
done
[ "$STRIDE" -gt 1 ] && echo "allocation points sampled with stride $STRIDE (I/O points: all)"
if cat "$T"/res/*.codes >/dev/null 2>&1; then
    echo "clean errors with an unexpected exit code (1 expected for ALLOC, 4 for IO):"
    cat "$T"/res/*.codes | sed 's/^/  /'
fi
if [ "$NOTES" = 1 ] && cat "$T"/res/*.vague >/dev/null 2>&1; then
    echo "clean errors naming no file, key or tensor (count, message, call site; one-shot sweeps):"
    sort "$T"/res/*.vague | uniq -c | sort -rn | sed 's/^ */  /; s/\t/   at /'
elif cat "$T"/res/*.vague >/dev/null 2>&1; then
    echo "note: $(cat "$T"/res/*.vague | wc -l) clean errors name no file, key or tensor" \
        "(FAULT_NOTES=1 lists them with their call sites)"
fi
if cat "$T"/res/*.tol >/dev/null 2>&1; then
    echo "failed calls that were tolerated (the run succeeded, output correct):"
    cat "$T"/res/*.tol | sed 's/^/  /'
fi
cat "$T"/res/*.bugs
echo "time: $(($(date +%s) - t0)) s"
if [ "$bugs" -gt 0 ]; then
    echo "fault injection: $bugs problem(s); logs in $LOGS"
    exit 1
fi
rmdir "$LOGS" 2>/dev/null
echo "fault injection: every run ended in a clean error or correct output"
