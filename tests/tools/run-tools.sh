#!/bin/sh
# run-tools.sh - the tools' habits: --version on each (no MPI started),
# tally-info --explain for the dtype and op of -d and -o (and an op the
# dtype lacks refused as a usage error), and a misspelt TALLY_* variable
# warned about with the name meant; tally-bench's habits; the man pages'
# example outputs (tests/tools/man-examples.py).
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
# tally-bench: an unknown algorithm lists the names once; the closing
# summary lines; --json valid after every row, an interrupted run too.
out=$("$here/../mpirun.sh" 2 60 "$BUILD/bin/tally-bench" -a rign 2>&1)
[ "$(echo "$out" | grep -c 'unknown algorithm "rign".*ring')" = 1 ] ||
    fail "an unknown algorithm is not listed once with the names: $out"
json=$(mktemp /tmp/tally-bench-XXXXXX.json)
out=$("$here/../mpirun.sh" 2 60 "$BUILD/bin/tally-bench" -b 8 -e 4K -f 8 -n 5 -w 1 \
      -a auto,mpi --json "$json" 2>&1) || fail "tally-bench: $out"
echo "$out" | grep -q "^# Avg bus bandwidth" || fail "no Avg bus bandwidth line: $out"
echo "$out" | grep -q "^# auto against mpi: median speed-up" || fail "no speed-up line: $out"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert "meta" in d[0] and d[0]["meta"]["ranks"] == 2, d[0]; assert len(d) == 9, len(d)' "$json" ||
    fail "the JSON file"
# Interrupted: whatever was written is a valid array.
timeout -s INT 4 "$here/../mpirun.sh" 2 60 "$BUILD/bin/tally-bench" -b 8 -e 1G -f 2 -n 50 \
    -w 5 -a auto,mpi --json "$json" >/dev/null 2>&1
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert len(d) >= 2, len(d)' "$json" ||
    fail "an interrupted run left JSON that does not load"
rm -f "$json"
# The man pages' example outputs are what this build prints.
python3 "$here/man-examples.py" "$BUILD" || fail "a man page's example differs from the build"
echo "run-tools: --version, tally-info -d/-o, misspelt variables, tally-bench habits, man examples: ok"
