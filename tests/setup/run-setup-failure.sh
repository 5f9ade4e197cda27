#!/bin/sh
# run-setup-failure.sh - a rank whose collective set-up fails at
# tally_comm_create (TALLY_DEBUG_FAIL_SETUP=RANK, tests only) must leave no
# rank waiting, every rank must agree to run without the window or groups
# (the ring serves shm, hier and hier_leader), results must stay exact, and
# TALLY_STATS must count those calls as run elsewhere.  Checked on one node
# (3 ranks: the window fails) and, where network namespaces can be made, on
# an emulated 2 x 2 cluster (the groups across nodes fail).  Every mpirun
# is bounded by a timeout: a hang fails the test.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bench="$BUILD/bin/tally-bench -b 1K -e 1M -f 32 -n 2 -w 1 -c 1"
status=0

fail() {
    echo "run-setup-failure: FAIL: $*"
    tail -n 20 "$tmp/out"
    status=1
}

# expect FILE WARNING ASKED: exit status 0 checked by the caller; the
# warning on stderr, and the stats table's "elsewhere" row for ASKED.
expect_fallback() {
    grep -q "$2" "$tmp/out" || fail "no \"$2\" warning"
    grep -Eq "^tally: +$3 +[0-9]+ +$2" "$tmp/out" || fail "TALLY_STATS has no elsewhere row for $3"
    grep -Eq "^tally: +[0-9]+ ring " "$tmp/out" || fail "TALLY_STATS shows no ring calls"
}

echo "run-setup-failure: one node, 3 ranks, rank 1's shared window fails"
TALLY_DEBUG_FAIL_SETUP=1 TALLY_STATS=1 "$here/../mpirun.sh" 3 120 \
    -x TALLY_DEBUG_FAIL_SETUP -x TALLY_STATS $bench -a shm >"$tmp/out" 2>&1 ||
    fail "tally-bench failed (rc $?)"
expect_fallback "$tmp/out" "no shared window could be made at creation" shm

echo "run-setup-failure: one node, 3 ranks, no failure injected"
TALLY_DEBUG_FAIL_SETUP=none TALLY_STATS=1 "$here/../mpirun.sh" 3 120 \
    -x TALLY_DEBUG_FAIL_SETUP -x TALLY_STATS $bench -a shm >"$tmp/out" 2>&1 ||
    fail "tally-bench failed (rc $?)"
grep -q "could be made" "$tmp/out" && fail "a set-up failure without injection"
grep -Eq "^tally: +3 shm " "$tmp/out" || fail "TALLY_STATS shows no shm calls"

if why=$(sh "$here/../cluster/cluster.sh" check); then
    echo "run-setup-failure: 2 x 2 cluster, rank 2's groups across nodes fail"
    TALLY_DEBUG_FAIL_SETUP=2 TALLY_STATS=1 sh "$here/../cluster/cluster.sh" -r none -t 120 2 2 -- \
        --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np 4 \
        -x TALLY_DEBUG_FAIL_SETUP -x TALLY_STATS $bench -a hier,hier_leader >"$tmp/out" 2>&1 ||
        fail "tally-bench failed on the cluster (rc $?)"
    expect_fallback "$tmp/out" "no groups across nodes could be made at creation" hier
    expect_fallback "$tmp/out" "no groups across nodes could be made at creation" hier_leader
else
    echo "run-setup-failure: SKIP the cluster case: $why"
fi
[ "$status" = 0 ] && echo "run-setup-failure: ok"
exit "$status"
