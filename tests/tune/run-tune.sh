#!/bin/sh
# run-tune.sh - tally-tune end to end at 2 ranks (bounded by tests/mpirun.sh's
# timeout): a short sweep written with -o to a temporary file and --verify,
# then checks that the run succeeded, that the file has comment lines and
# rows for 2 ranks on 1 node covering 0 bytes to the largest size measured
# (512K: -e 1M -f 16 measures 8 B .. 512 KiB), and that the
# verification passed; also that a missing -o is a usage error (status 2).
# Prints "SKIP: reason" and succeeds when something it needs is missing.
set -u
BUILD=${BUILD:-build}
here=$(dirname "$0")
mpirun="$here/../mpirun.sh"
tune="$BUILD/bin/tally-tune"

skip() {
    echo "run-tune: SKIP: $*"
    exit 0
}

[ -x "$tune" ] || { echo "run-tune: FAIL: $tune is not built (make all)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
file="$tmp/tally.tune"

fail() {
    echo "run-tune: FAIL: $*"
    for f in "$tmp"/*; do
        [ -f "$f" ] || continue
        echo "--- $(basename "$f") (last 30 lines)"
        tail -n 30 "$f"
    done
    exit 1
}

"$mpirun" 2 120 "$tune" -b 8 -e 1M -f 16 -n 3 -w 1 -R 1 -o "$file" --verify \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
[ "$rc" = 0 ] || fail "tally-tune -o FILE --verify: exit status $rc"

[ -s "$file" ] || fail "tally-tune wrote no file"
grep -q '^# tally tuning file .*written by tally-tune' "$file" ||
    fail "the file does not start with the tally-tune comment"
# The rows: non-blank lines that are not comments.
rows=$(grep -v -e '^#' -e '^[[:space:]]*$' "$file")
nrows=$(printf '%s\n' "$rows" | grep -c .)
[ "$nrows" -ge 1 ] || fail "the file has no rows"
printf '%s\n' "$rows" | awk '$1 != 2 || $2 != 1 || NF != 4 { bad = 1 } END { exit bad }' ||
    fail "a row is not 'ranks 2, nodes 1, bytes, algorithm'"
printf '%s\n' "$rows" | head -n 1 | awk '$3 ~ /^0-/ { ok = 1 } END { exit !ok }' ||
    fail "the first row does not start at 0 bytes"
printf '%s\n' "$rows" | tail -n 1 | awk '$3 ~ /-512K$/ { ok = 1 } END { exit !ok }' ||
    fail "the last row does not end at the largest size measured (512K)"
grep -q '^# verify: tally chooses the measured winner at all [0-9]* sizes' "$tmp/out" ||
    fail "no passing --verify summary"
if grep -q ' no$' "$tmp/out"; then
    fail "--verify lists a size where tally chooses differently"
fi

"$mpirun" 1 60 "$tune" -b 8 -e 64 >"$tmp/usage.out" 2>"$tmp/usage.err"
rc=$?
[ "$rc" = 2 ] || fail "without -o: exit status $rc, not 2"
grep -q -- '-o FILE is required' "$tmp/usage.err" || fail "without -o: no clear message"

echo "run-tune: np=2 ok, $nrows rows, verified"
