#!/usr/bin/env bash
# tests/attacks/run.sh - replay the attack corpus through the real `tseal` CLI (make test).
#
#   tests/attacks/run.sh build/tseal [FILTER]
#
# For each line of tests/attacks/expected.tsv (file, command, exit code, message substring,
# class, description) run the command on files/FILE, then check the exit code, that the
# message substring is in stderr (for a rejection; stdout or stderr for a control, exit 0),
# and that nothing was left behind: no OUT and no OUT.tmp.* (pack, unpack), an unchanged
# rollback state file, no new file anywhere in the work folder. FILTER (a substring of the
# file or command) replays a subset. One line per case, a summary, exit 1 on any mismatch;
# with ATTACKS_VERBOSE=1 each passing case also shows what tseal printed on stderr.
#
# Commands (K = the fixed test keys, copied to a private folder with mode 0600 since git does
# not keep file modes):
#   check                     tseal check FILE
#   pack                      tseal pack FILE -o OUT --sign-key K/vendor.sign.key -r K/bank.pub
#                                  --model-id attack/test --version 1
#   verify | codec            tseal verify FILE --trust K/vendor.sign.pub --key K/bank.key
#   verify-nokey              tseal verify FILE --trust K/vendor.sign.pub
#   unpack                    tseal unpack FILE --key K/bank.key --trust K/vendor.sign.pub -o OUT
#   verify-policy:P           tseal verify FILE --policy files/P --key K/bank.key
#   verify-policy-state:P:S   the same with --state (a copy of files/S, which must not change)
#   policy-show:KEY           tseal policy show FILE [--policy-key K/KEY] (KEY "-": none)
#   audit-verify              tseal audit-verify FILE --trust K/auditor.sign.pub
set -uo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 path/to/tseal [FILTER]" >&2
    exit 2
fi
T=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
FILTER=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
FILES=$HERE/files
TABLE=$HERE/expected.tsv
[ -x "$T" ] || { echo "attacks: $T is not executable" >&2; exit 2; }
[ -f "$TABLE" ] || { echo "attacks: $TABLE is missing" >&2; exit 2; }

W=$(mktemp -d "${TMPDIR:-/tmp}/tseal-attacks.XXXXXX")
trap 'rm -rf "$W"' EXIT
K=$W/keys
mkdir "$K" && cp "$HERE"/keys/*.key "$HERE"/keys/*.pub "$K"/ && chmod 600 "$K"/*.key
mkdir "$W/run"

before=$(ls -A "$FILES")
pass=0 fail=0 n=0
declare -A seen_class=()
start=$(date +%s)

bad() { # case-label reason
    printf '  FAIL  %s\n        %s\n' "$1" "$2"
    fail=$((fail + 1))
}

while IFS=$'\t' read -r file cmd code msg cls desc; do
    case "$file" in '#'* | '') continue ;; esac
    if [ -n "$FILTER" ] && [[ "$file $cmd" != *"$FILTER"* ]]; then continue; fi
    n=$((n + 1))
    seen_class[$cls]=1
    label="c$cls $file [$cmd]"
    F=$FILES/$file
    if [ ! -f "$F" ]; then
        bad "$label" "missing file $F"
        continue
    fi
    D=$W/run/$n
    mkdir "$D"
    OUT=$D/out
    state_orig=""
    case "$cmd" in
    check) args=(check "$F") ;;
    pack)
        args=(pack "$F" -o "$OUT" --sign-key "$K/vendor.sign.key" -r "$K/bank.pub"
            --model-id attack/test --version 1 -q)
        ;;
    verify | codec) args=(verify "$F" --trust "$K/vendor.sign.pub" --key "$K/bank.key") ;;
    verify-nokey) args=(verify "$F" --trust "$K/vendor.sign.pub") ;;
    unpack) args=(unpack "$F" --key "$K/bank.key" --trust "$K/vendor.sign.pub" -o "$OUT") ;;
    verify-policy:*)
        args=(verify "$F" --policy "$FILES/${cmd#verify-policy:}" --key "$K/bank.key")
        ;;
    verify-policy-state:*)
        rest=${cmd#verify-policy-state:}
        state_orig=$FILES/${rest#*:}
        cp "$state_orig" "$D/state.json"
        args=(verify "$F" --policy "$FILES/${rest%%:*}" --state "$D/state.json" --key "$K/bank.key")
        ;;
    policy-show:-) args=(policy show "$F") ;;
    policy-show:*) args=(policy show "$F" --policy-key "$K/${cmd#policy-show:}") ;;
    audit-verify) args=(audit-verify "$F" --trust "$K/auditor.sign.pub") ;;
    *)
        bad "$label" "unknown command '$cmd'"
        continue
        ;;
    esac
    (cd "$D" && "$T" "${args[@]}") </dev/null >"$W/stdout" 2>"$W/stderr"
    rc=$?
    why=""
    if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$W/stderr"; then
        why="sanitizer report"
    elif [ "$rc" != "$code" ]; then
        why="exit $rc, expected $code"
    elif [ "$code" = 0 ]; then
        grep -qF -- "$msg" "$W/stdout" "$W/stderr" || why="output lacks '$msg'"
    else
        grep -qF -- "$msg" "$W/stderr" || why="stderr lacks '$msg'"
    fi
    if [ -z "$why" ] && [ "$code" != 0 ]; then
        # a rejection leaves nothing: no output, no temporary file or folder, state unchanged
        left=""
        for e in "$D"/* "$D"/.[!.]*; do
            [ -e "$e" ] && [ "${e##*/}" != state.json ] && left="$left ${e##*/}"
        done
        [ -z "$left" ] || why="left output behind:$left"
        if [ -n "$state_orig" ] && ! cmp -s "$state_orig" "$D/state.json"; then
            why="the rollback state file was changed"
        fi
    fi
    if [ -z "$why" ]; then
        printf '  ok    %-60s %-14s exit %s  %s\n' "c$cls $file" "$cmd" "$rc" "$desc" | cut -c1-200
        pass=$((pass + 1))
        if [ -n "${ATTACKS_VERBOSE:-}" ]; then sed 's/^/          | /' "$W/stderr" | head -5; fi
    else
        bad "$label: $desc" "$why; stderr: $(head -c 400 "$W/stderr" | tr '\n' ' ')"
    fi
    rm -rf "$D"
done <"$TABLE"

# every class of the README has at least one case
if [ -z "$FILTER" ]; then
    for c in $(seq 1 15); do
        [ -n "${seen_class[$c]:-}" ] || bad "class $c" "no case in $TABLE"
    done
fi
# nothing was written next to the corpus
after=$(ls -A "$FILES")
[ "$before" = "$after" ] || bad "corpus" "the set of files in $FILES changed during the run"

secs=$(($(date +%s) - start))
if [ "$fail" = 0 ]; then
    echo "attacks: all $pass cases passed (${secs}s)"
    exit 0
fi
echo "attacks: $fail of $n cases FAILED ($pass passed)"
exit 1
