#!/bin/sh
# run-topo-mpi.sh BUILD - tally-info under mpirun on a fake machine: Open MPI
# and tally both read HWLOC_XMLFILE (ranks are not bound: --bind-to none,
# since the fake PUs do not exist), so tally must report the fixture's
# packages, caches, GPUs and NICs with their packages, and the real
# communicator shape; --explain 1M must read as 1048576 bytes.
set -u
BUILD=${1:-build}
here=$(dirname "$0")
fixture="$here/../fixtures/2pkg-gpu-nic.xml"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
HWLOC_XMLFILE=$fixture "$here/../mpirun.sh" 3 120 --bind-to none -x HWLOC_XMLFILE \
    "$BUILD/bin/tally-info" --explain 1M >"$out" 2>&1 || status=$?
cat "$out"
[ "$status" = 0 ] || { echo "FAIL: tally-info exited with $status"; exit 1; }
for want in \
    "topology: 2 packages, 2 NUMA nodes, 8 cores, 16 PUs (from HWLOC_XMLFILE" \
    "L2 1 MiB x8" \
    "gpus: cuda0 (package 0), cuda1 (package 1)" \
    "nics: mlx5_0 (package 0), mlx5_1 (package 1)" \
    "communicator: 3 ranks on 1 node, 3 ranks per node, placement one node" \
    "1048576 bytes (262144 x float32, sum) on 3 ranks, 1 node:" \
    "<- runs"
do
    if ! grep -qF "$want" "$out"; then
        echo "FAIL: tally-info output lacks \"$want\""
        exit 1
    fi
done
echo "PASS: tally-info under mpirun sees the fake machine"
