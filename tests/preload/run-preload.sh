#!/bin/sh
# run-preload.sh MODE NP CMD [ARGS...] - runs an ordinary MPI program on NP
# ranks with and without libtally-preload.so (each run bounded by
# tests/mpirun.sh's timeout) and checks:
#   compare  both runs succeed, print identical stdout, and TALLY_STATS=1
#            shows calls that tally's own algorithms served, in the
#            drop-in's table alone (no communicator prints its own);
#   off      with TALLY_PRELOAD=off the output is identical and no
#            statistics are printed (every call went straight to the MPI);
#   served   only the preloaded run: it succeeds and tally served calls.
set -u
mode=$1
np=$2
shift 2
BUILD=${BUILD:-build}
here=$(dirname "$0")
lib=$(cd "$BUILD/lib" && pwd)/libtally-preload.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpirun="$here/../mpirun.sh"

fail() {
    echo "run-preload: $*"
    for f in "$tmp"/*; do
        echo "--- $(basename "$f") (last 15 lines)"
        tail -n 15 "$f"
    done
    exit 1
}

# Calls that tally's own algorithms (any but mpi, the MPI's allreduce)
# served, from the table's rows of ranks, algorithm and calls.
served() {
    awk '$1 == "tally-preload:" && $2 ~ /^[0-9]+$/ && $3 != "mpi" { n += $4 }
         END { print n + 0 }' "$1"
}

if [ "$mode" != served ]; then
    "$mpirun" "$np" 300 "$@" >"$tmp/plain.out" 2>"$tmp/plain.err" ||
        fail "without the preload: exit status $?"
fi
case $mode in
off)
    "$mpirun" "$np" 300 -x LD_PRELOAD="$lib" -x TALLY_PRELOAD=off -x TALLY_STATS=1 "$@" \
        >"$tmp/off.out" 2>"$tmp/off.err" || fail "TALLY_PRELOAD=off: exit status $?"
    cmp -s "$tmp/plain.out" "$tmp/off.out" || fail "TALLY_PRELOAD=off changed the output"
    ! grep -q "^tally-preload: statistics" "$tmp/off.err" ||
        fail "TALLY_PRELOAD=off still went through tally"
    grep -q "^tally-preload: loaded, but TALLY_PRELOAD is off" "$tmp/off.err" ||
        fail "TALLY_PRELOAD=off with TALLY_STATS=1 does not say the preload is off"
    echo "run-preload: np=$np identical with TALLY_PRELOAD=off, no tally calls"
    ;;
compare | served)
    "$mpirun" "$np" 300 -x LD_PRELOAD="$lib" -x TALLY_STATS=1 "$@" \
        >"$tmp/preload.out" 2>"$tmp/preload.err" || fail "with the preload: exit status $?"
    if [ "$mode" = compare ]; then
        cmp -s "$tmp/plain.out" "$tmp/preload.out" ||
            { diff "$tmp/plain.out" "$tmp/preload.out" | head -20; fail "outputs differ"; }
    fi
    # One table, the drop-in's: the communicators it made print none.
    ! grep -q "^tally: statistics" "$tmp/preload.err" ||
        fail "a communicator printed its own TALLY_STATS table under the preload"
    n=$(served "$tmp/preload.err")
    [ "$n" -gt 0 ] || fail "TALLY_STATS shows no call served by tally"
    grep -q "^tally-preload: .*other reductions" "$tmp/preload.err" ||
        fail "TALLY_STATS does not list the reductions tally does not see"
    grep "^tally-preload:" "$tmp/preload.err"
    tail -n 1 "$tmp/preload.out"
    echo "run-preload: np=$np $mode ok, $n calls served by tally's algorithms"
    ;;
*)
    echo "run-preload: unknown mode $mode" >&2
    exit 2
    ;;
esac
