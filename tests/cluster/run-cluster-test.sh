#!/bin/sh
# run-cluster-test.sh HOSTS SLOTS MAPPING [CASES] - one emulated-cluster
# test run: HOSTS hosts with SLOTS slots (a number, or a list such as 2,1
# for uneven nodes), ranks placed by MAPPING (slot: consecutive ranks fill a
# host; node: round-robin over hosts).  First checks with tally-info that
# tally sees the intended shape, then runs test_allreduce's CASES (default
# "hierarchy": the shared-memory and hierarchical algorithms; "algorithms":
# the flat point-to-point ones, the MPI's and tally's choice) on the
# unlimited links: every dtype and op, awkward counts up to 99991 elements,
# in place or not, identical bits on every rank; then test_compress (every
# codec, bit-identical results, error feedback) and test_requests (started
# calls against blocking ones) and test_device (device buffers on the
# emulated device: staged across the nodes).  Prints "SKIP: reason" and
# succeeds when this machine cannot host the cluster.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
cluster="$here/cluster.sh"
hosts=$1
slots=$2
mapping=$3
cases=${4:-hierarchy}

if ! why=$(sh "$cluster" check); then
    echo "run-cluster-test: SKIP: $why"
    exit 0
fi

np=0
for s in $(echo "$slots" | tr , ' '); do np=$((np + s)); done
case $slots in *,*) ;; *) np=$((hosts * slots)) ;; esac
case $mapping in
slot) map="--map-by slot" expect='consecutive \(by node\)' ;;
node) map="--map-by node" expect="round-robin" ;;
*) echo "run-cluster-test: MAPPING is slot or node" >&2; exit 2 ;;
esac
# Uneven nodes by node: once a node is full the round-robin skips it, so
# rank r need not be on node r mod hosts ("scattered").
case $mapping,$slots in node,*,*) expect="(round-robin|scattered)" ;; esac
[ "$hosts" = 1 ] && expect="one node"
# A node of one rank has nothing to interleave.
[ "$np" = "$hosts" ] && expect='(consecutive \(by node\)|round-robin)'

opts="--oversubscribe --bind-to none --mca mpi_yield_when_idle 1 $map -np $np"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC2086
sh "$cluster" -r none -t 60 "$hosts" "$slots" -- $opts "$BUILD/bin/tally-info" \
    >"$tmp/info" 2>&1
if ! grep -Eq "^communicator: $np ranks on $hosts nodes,.* placement $expect\$" "$tmp/info"; then
    echo "run-cluster-test: FAIL: tally-info does not show $np ranks on $hosts nodes, $expect:"
    tail -n 30 "$tmp/info"
    exit 1
fi
grep '^communicator:' "$tmp/info"

for case in $cases; do
    # shellcheck disable=SC2086
    CK_RUN_CASE=$case TALLY_TEST_MAX_COUNT=100000 \
        sh "$cluster" -r none -t 300 "$hosts" "$slots" -- $opts \
        -x CK_RUN_CASE -x TALLY_TEST_MAX_COUNT "$BUILD/tests/mpi/test_allreduce" || exit 1
done
# Every codec across the nodes: the streamed exchange (two nodes), the two
# stages (three or more), the compressed whole call (one rank per node).
# shellcheck disable=SC2086
sh "$cluster" -r none -t 300 "$hosts" "$slots" -- $opts "$BUILD/tests/mpi/test_compress" ||
    exit 1
# Hundreds of started calls bit for bit against blocking ones, several
# communicators, across the nodes.
# shellcheck disable=SC2086
sh "$cluster" -r none -t 300 "$hosts" "$slots" -- $opts "$BUILD/tests/mpi/test_requests" ||
    exit 1
# Device buffers (the emulated device) through staged, whose host steps
# cross the nodes.
# shellcheck disable=SC2086
sh "$cluster" -r none -t 300 "$hosts" "$slots" -- $opts "$BUILD/tests/mpi/test_device" ||
    exit 1
# Exchanges of over 1 MiB each way with a partner on another node wait for
# the partner's handshake (recursive doubling, Rabenseifner: p2p.c);
# tally-bench checks every element and fails on errors.
case " $cases " in
*" algorithms "*)
    echo "run-cluster-test: 4 MiB through recursive_doubling and rabenseifner"
    # shellcheck disable=SC2086
    sh "$cluster" -r none -t 120 "$hosts" "$slots" -- $opts "$BUILD/bin/tally-bench" \
        -b 4M -e 4M -n 3 -w 1 -c 1 -a recursive_doubling,rabenseifner || exit 1 ;;
esac
[ "$hosts" = 2 ] || exit 0

# Two nodes: hier and hier_leader stream long vectors across, with many
# messages in flight while the ranks work in the window.  With Open MPI's
# TCP eager limit lowered, every message waits for a rendezvous reply that
# only comes while the ranks waiting in the window poll MPI; before they
# did, this hung (on 1 Gbit links, where calls take long enough).
# tally-bench checks every element and fails on errors.
echo "run-cluster-test: 64 MiB through hier and hier_leader, TCP eager limit 4 KiB"
# shellcheck disable=SC2086
sh "$cluster" -t 120 "$hosts" "$slots" -- $opts --mca btl_tcp_eager_limit 4096 \
    "$BUILD/bin/tally-bench" -b 64M -e 64M -n 5 -w 1 -c 1 -a hier,hier_leader || exit 1

# TALLY_COMPRESS under libtally-preload.so: a plain MPI program's loop of
# float allreduces, compressed across the two nodes with error feedback
# (tests/preload/preload_compress.c checks the mean applied sum and that
# every rank holds the same bits); TALLY_STATS must show the bytes saved.
case $BUILD in /*) preload=$BUILD/lib/libtally-preload.so ;; *) preload=$PWD/$BUILD/lib/libtally-preload.so ;; esac
for spec in "int8 0.01 0.25" "sign 0.5 0.03"; do
    set -- $spec
    echo "run-cluster-test: preload TALLY_COMPRESS=$1, error bound $2"
    # shellcheck disable=SC2086
    sh "$cluster" -r none -t 120 "$hosts" "$slots" -- $opts \
        -x LD_PRELOAD="$preload" -x TALLY_COMPRESS="$1" \
        -x TALLY_STATS=1 "$BUILD/tests/preload/preload_compress" "$2" >"$tmp/z" 2>&1
    rc=$?
    cat "$tmp/z"
    [ "$rc" = 0 ] || exit 1
    grep -q "TALLY_COMPRESS=$1: .*($3" "$tmp/z" ||
        { echo "run-cluster-test: FAIL: TALLY_STATS does not show $1's ratio $3"; exit 1; }
done
