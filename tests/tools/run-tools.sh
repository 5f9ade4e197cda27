#!/bin/sh
# run-tools.sh - the tools' habits: --version on each (no MPI started),
# tally-info --explain for the dtype and op of -d and -o (and an op the
# dtype lacks refused as a usage error), and a misspelt TALLY_* variable
# warned about with the name meant.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "run-tools: FAIL: $*"; exit 1; }
for tool in tally-info tally-bench tally-tune; do
    out=$("$BUILD/bin/$tool" --version 2>&1) || fail "$tool --version exits non-zero: $out"
    echo "$out" | grep -q "^$tool: tally [0-9]" || fail "$tool --version says: $out"
done
out=$("$BUILD/bin/tally-info" -d int32 -o max --what-if nodes=2,ppn=2 --explain 1M 2>&1) ||
    fail "tally-info -d int32 -o max --what-if ... --explain 1M: $out"
echo "$out" | grep -q "(262144 x int32, max)" || fail "--explain ignores -d and -o: $out"
"$BUILD/bin/tally-info" -d int32 -o avg --explain 1M >/dev/null 2>&1
[ $? = 2 ] || fail "tally-info -d int32 -o avg is not a usage error"
out=$(TALLY_ALGORITHM=ring "$here/../mpirun.sh" 1 60 -x TALLY_ALGORITHM "$BUILD/bin/tally-info" 2>&1) ||
    fail "tally-info with TALLY_ALGORITHM set: $out"
echo "$out" | grep -q "TALLY_ALGORITHM is not a tally variable (did you mean TALLY_ALGO?)" ||
    fail "a misspelt variable is not warned about: $(echo "$out" | head -3)"
echo "run-tools: --version, tally-info -d/-o, misspelt variables: ok"
