#!/bin/sh
# run-trace.sh - TALLY_TRACE and TALLY_STATS from an API program
# (build/tests/mpi/test_trace), each run bounded by a timeout:
#
#   run-trace.sh trace NP
#       K calls on NP ranks with TALLY_TRACE set; check-trace.py checks
#       every rank's file (JSON, K call spans with seq 0..K-1 in order,
#       phases nested in their call) and tally-trace-merge's merged file;
#       where gnuplot is installed, tally-plot draws the merged trace and a
#       tally-bench --json file (PNG files that are not empty).
#   run-trace.sh cluster HOSTS SLOTS MAPPING
#       the same on an emulated cluster (tests/cluster/cluster.sh), with
#       TALLY_ALGO=hier and 1 MiB calls: every call is hier with at least
#       one phase span.  Prints SKIP and succeeds where no cluster can be
#       made.
#   run-trace.sh stats NP
#       TALLY_STATS=1 with forced algorithms: the table appears once, from
#       rank 0, with the rows and call counts the program announces.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
prog="$BUILD/tests/mpi/test_trace"
calls=${TALLY_TEST_TRACE_CALLS:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mode=${1:-}

fail() {
    echo "run-trace: FAIL: $*"
    for f in "$tmp"/*.out "$tmp"/*.err; do
        [ -f "$f" ] || continue
        echo "--- $(basename "$f") (last 20 lines)"
        tail -n 20 "$f"
    done
    exit 1
}

# Draws $1 into $2 with tally-plot; SKIP (success) without gnuplot.
plot() {
    "$top/bench/tally-plot" -o "$2" "$1" >"$tmp/plot.out" 2>&1
    rc=$?
    if [ "$rc" = 77 ]; then
        echo "run-trace: SKIP plot: $(cat "$tmp/plot.out")"
        return 0
    fi
    [ "$rc" = 0 ] || fail "tally-plot $1: exit status $rc: $(cat "$tmp/plot.out")"
    # A PNG file starts with \211PNG.
    [ -s "$2" ] && [ "$(head -c 4 "$2" | tail -c 3)" = PNG ] || fail "tally-plot wrote no PNG to $2"
    echo "run-trace: tally-plot $(basename "$1") -> $(wc -c <"$2") bytes of PNG"
}

case $mode in
trace)
    np=$2
    TALLY_TRACE="$tmp/run" TALLY_TEST_TRACE_CALLS=$calls CK_RUN_CASE=trace \
        "$here/../mpirun.sh" "$np" 300 -x TALLY_TRACE -x TALLY_TEST_TRACE_CALLS -x CK_RUN_CASE \
        "$prog" >"$tmp/trace.out" 2>"$tmp/trace.err" || fail "test_trace: exit status $?"
    python3 "$here/check-trace.py" --ranks "$np" --calls "$calls" \
        --merge "$top/bench/tally-trace-merge" "$tmp/run" || fail "check-trace.py"
    plot "$tmp/run.merged.json" "$tmp/trace.png"
    "$here/../mpirun.sh" "$np" 300 "$BUILD/bin/tally-bench" -b 1K -e 64K -f 8 -n 2 -w 1 \
        -a auto,ring --json "$tmp/bench.json" >"$tmp/bench.out" 2>&1 ||
        fail "tally-bench --json: exit status $?"
    plot "$tmp/bench.json" "$tmp/bench.png"
    ;;
cluster)
    hosts=$2 slots=$3 mapping=$4
    if ! why=$(sh "$here/../cluster/cluster.sh" check); then
        echo "run-trace: SKIP: $why"
        exit 0
    fi
    np=$((hosts * slots))
    # 1 MiB of float32 per call.
    TALLY_TRACE="$tmp/run" TALLY_ALGO=hier TALLY_TEST_TRACE_CALLS=$calls \
        TALLY_TEST_TRACE_COUNT=262144 CK_RUN_CASE=trace \
        sh "$here/../cluster/cluster.sh" -r none -t 300 "$hosts" "$slots" -- \
        --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 --map-by "$mapping" \
        -np "$np" -x TALLY_TRACE -x TALLY_ALGO -x TALLY_TEST_TRACE_CALLS \
        -x TALLY_TEST_TRACE_COUNT -x CK_RUN_CASE "$prog" \
        >"$tmp/cluster.out" 2>"$tmp/cluster.err" || fail "test_trace on the cluster: exit status $?"
    python3 "$here/check-trace.py" --ranks "$np" --calls "$calls" --algo hier --min-phases 1 \
        --merge "$top/bench/tally-trace-merge" "$tmp/run" || fail "check-trace.py"
    ;;
stats)
    np=$2
    TALLY_STATS=1 CK_RUN_CASE=stats "$here/../mpirun.sh" "$np" 300 -x TALLY_STATS -x CK_RUN_CASE \
        "$prog" >"$tmp/stats.out" 2>"$tmp/stats.err" || fail "test_trace: exit status $?"
    label="$np ranks"
    [ "$np" = 1 ] && label="1 rank"
    n=$(grep -c "^tally: statistics of a communicator of $label, its rank 0" "$tmp/stats.err")
    [ "$n" = 1 ] || fail "$n TALLY_STATS tables of a communicator of $label, expected 1"
    grep '^tally:' "$tmp/stats.err"
    grep -q '^expect ' "$tmp/stats.out" || fail "test_trace printed no expectations"
    # Rows: "tally: RANKS ALGORITHM CALLS BYTES SECONDS"; elsewhere rows:
    # "tally: ALGORITHM CALLS REASON..." after the "elsewhere" heading.
    awk -v np="$np" '
        FNR == NR { if ($1 == "expect") want[$2] = $3
                    if ($1 == "expect-elsewhere") away[$2] = $3
                    next }
        $1 != "tally:" { next }
        $2 == "elsewhere" || $2 == "failed" { section = $2; next }
        section == "" && $2 == np { got[$3] = $4; next }
        section == "elsewhere" { gotaway[$2] = $3; next }
        section == "failed" { bad = bad " " $2 }
        END {
            for (a in want) if (got[a] != want[a]) { print "row " a ": " got[a] + 0 " calls, expected " want[a]; err = 1 }
            for (a in got) if (!(a in want)) { print "unexpected row " a; err = 1 }
            for (a in away) if (gotaway[a] != away[a]) { print "elsewhere " a ": " gotaway[a] + 0 ", expected " away[a]; err = 1 }
            if (bad != "") { print "failed calls:" bad; err = 1 }
            exit err
        }' "$tmp/stats.out" "$tmp/stats.err" >"$tmp/compare.txt" ||
        fail "the table does not match: $(cat "$tmp/compare.txt")"
    echo "run-trace: np=$np one TALLY_STATS table, rows and counts as expected"
    ;;
*)
    echo "usage: run-trace.sh trace NP | cluster HOSTS SLOTS MAPPING | stats NP" >&2
    exit 2
    ;;
esac
echo "run-trace: $mode ok"
