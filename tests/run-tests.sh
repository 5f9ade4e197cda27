#!/bin/sh
# run-tests.sh - runs every test: the unit tests, then the MPI integration
# tests under mpirun at 1 to 5 ranks (each run bounded by a timeout), then
# the count-above-INT_MAX test at 2 ranks, then the MPI tests on emulated
# clusters of 2 to 4 hosts (tests/cluster/), then TALLY_TRACE and
# TALLY_STATS (tests/trace/), then the drop-in tests
# (ordinary C, Fortran and mpi4py programs with and without
# libtally-preload.so).  The last line counts the runs:
# "tests: N passed, N failed".
set -u
BUILD=${BUILD:-build}
here=$(dirname "$0")
# shellcheck source=runs.sh
. "$here/runs.sh"

for t in "$BUILD"/tests/unit/test_*; do
    [ -x "$t" ] || continue
    run "unit $(basename "$t")" timeout -k 5 300 "$t"
done

# The tuning-file parser, the codecs' decoders and encoders, the codec
# spec parser, the TALLY_* values and the drop-in's mapping of MPI arguments
# (two ranks, against the MPI itself) under libFuzzer, bounded (each prints SKIP and passes where
# clang cannot build a fuzzer); TALLY_TEST_FUZZ=0 leaves them out.
if [ "${TALLY_TEST_FUZZ:-1}" = 1 ]; then
    run "fuzz fuzz_tuning" env BUILD="$BUILD" "$here/fuzz/run-fuzz.sh" tuning
    run "fuzz fuzz_codec" env BUILD="$BUILD" FUZZ_TIME=25 "$here/fuzz/run-fuzz.sh" codec
    run "fuzz fuzz_spec" env BUILD="$BUILD" FUZZ_TIME=10 "$here/fuzz/run-fuzz.sh" spec
    run "fuzz fuzz_config" env BUILD="$BUILD" FUZZ_TIME=10 "$here/fuzz/run-fuzz.sh" config
    run "fuzz fuzz_preload" env BUILD="$BUILD" FUZZ_TIME=20 "$here/fuzz/run-fuzz.sh" preload
else
    echo "=== SKIP fuzz targets: TALLY_TEST_FUZZ=0"
fi

for t in "$BUILD"/tests/mpi/test_*; do
    [ -x "$t" ] || continue
    for np in ${TALLY_TEST_NP:-1 2 3 4 5}; do
        run "mpi $(basename "$t") np=$np" "$here/mpirun.sh" "$np" 600 "$t"
    done
done

# The C trainer's per-layer overlap (started calls while backward goes on,
# plain and compressed): it exits non-zero unless the weights are the same
# bits on every rank.
for codec in none int8; do
    run "examples/train --model deep --overlap --codec $codec np=3" "$here/mpirun.sh" 3 300 \
        "$BUILD/examples/train" --model deep --overlap --codec "$codec" --epochs 1 --train 6144
done

# The Python binding (python/tally, ctypes) with Debian's python3, mpi4py
# and numpy; SKIP when they are not installed.
if /usr/bin/python3 -c 'import mpi4py, numpy' 2>/dev/null; then
    for np in 1 2 3; do
        run "python binding np=$np" env PYTHONPATH="$here/../python" \
            "$here/mpirun.sh" "$np" 300 -x PYTHONPATH /usr/bin/python3 "$here/python/test_tally.py"
    done
else
    echo "=== SKIP python binding: /usr/bin/python3 cannot import mpi4py and numpy"
fi
# The PyTorch DDP comm hook (python/tally/ddp.py) against gloo, with
# Debian's python3-torch and python3-sklearn (optional in install-deps.sh).
if why=$(/usr/bin/python3 -c 'import torch, sklearn, mpi4py, numpy' 2>&1); then
    for np in 2 4; do
        run "pytorch ddp hook np=$np" env PYTHONPATH="$here/../python" \
            "$here/mpirun.sh" "$np" 300 -x PYTHONPATH /usr/bin/python3 "$here/python/test_ddp.py"
    done
    if cwhy=$(sh "$here/cluster/cluster.sh" check); then
        run "pytorch ddp hook cluster 2 hosts x 2 slots" env PYTHONPATH="$here/../python" \
            sh "$here/cluster/cluster.sh" -r none -t 300 2 2 -- --oversubscribe --bind-to none \
            --mca mpi_yield_when_idle 1 -np 4 -x PYTHONPATH /usr/bin/python3 \
            "$here/python/test_ddp.py"
    else
        echo "=== SKIP pytorch ddp hook on an emulated cluster: $cwhy"
    fi
else
    echo "=== SKIP pytorch ddp hook: /usr/bin/python3 cannot import torch, sklearn, mpi4py" \
        "and numpy (build-aux/install-deps.sh installs python3-torch python3-sklearn as root):" \
        "$(echo "$why" | tail -n 1)"
fi

run "topology: tally-info on a fake machine (HWLOC_XMLFILE) np=3" \
    "$here/topo/run-topo-mpi.sh" "$BUILD"
run "tally-tune -o FILE --verify np=2" env BUILD="$BUILD" "$here/tune/run-tune.sh"
run "no module cycles in src/" python3 "$here/lint/check-cycles.py" "$here/../src"
run "set-up failure at tally_comm_create is agreed (TALLY_DEBUG_FAIL_SETUP)" \
    env BUILD="$BUILD" "$here/setup/run-setup-failure.sh"
run "one build for GPU and CPU nodes: no CUDA in libtally.so, a CPU-only build" \
    env BUILD="$BUILD" "$here/setup/run-builds.sh"
run "make install, a program built with pkg-config, make uninstall" \
    env BUILD="$BUILD" "$here/setup/run-install.sh"
run "tools: --version, tally-info -d/-o, misspelt variables" \
    env BUILD="$BUILD" "$here/tools/run-tools.sh"

if [ "${TALLY_TEST_BIG:-1}" = 1 ]; then
    free_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
    if [ "$free_kib" -gt 12000000 ]; then
        run "mpi test_allreduce big np=2" env TALLY_TEST_BIG=1 CK_RUN_CASE=big \
            "$here/mpirun.sh" 2 600 -x TALLY_TEST_BIG -x CK_RUN_CASE \
            "$BUILD/tests/mpi/test_allreduce"
    else
        echo "=== SKIP count above INT_MAX: needs 12 GiB of free memory, $((free_kib / 1024)) MiB available"
    fi
else
    echo "=== SKIP count above INT_MAX: TALLY_TEST_BIG=0"
fi

# Emulated multi-node clusters (tests/cluster/): network namespaces need
# root; where they cannot be made, one SKIP line says why.  The flat
# algorithms run on the shapes where a rank's two ring neighbours may be on
# the same node or not (its two directions cut into different segments).
if why=$(sh "$here/cluster/cluster.sh" check); then
    for shape in "2 2 slot" "2 2 node" "3 2 slot hierarchy algorithms" "3 2 node" \
        "4 1 slot hierarchy algorithms" "2 3 slot algorithms" "2 2,1 slot" "2 2,1 node" \
        "3 2,1,2 slot" "3 2,1,2 node hierarchy algorithms"; do
        set -- $shape
        hosts=$1 slots=$2 map=$3
        shift 3
        run "cluster $hosts hosts x $slots slots, --map-by $map${*:+ ($*)}" env BUILD="$BUILD" \
            "$here/cluster/run-cluster-test.sh" "$hosts" "$slots" "$map" "$*"
    done
else
    echo "=== SKIP emulated cluster tests: $why"
fi

# --- TALLY_TRACE and TALLY_STATS (tests/trace/run-trace.sh) -----------------
# Trace files checked as JSON (spans per call, seqs in order, phases nested,
# tally-trace-merge, tally-plot where gnuplot is installed) at np 2 and on an
# emulated 2 x 2 cluster with hier (a phase span in every call); the
# TALLY_STATS table of an API program, once, with the expected rows.
run "trace np=2" env BUILD="$BUILD" "$here/trace/run-trace.sh" trace 2
if why=$(sh "$here/cluster/cluster.sh" check); then
    run "trace cluster 2 hosts x 2 slots, hier" env BUILD="$BUILD" \
        "$here/trace/run-trace.sh" cluster 2 2 slot
else
    echo "=== SKIP trace on an emulated cluster: $why"
fi
run "TALLY_STATS table np=3" env BUILD="$BUILD" "$here/trace/run-trace.sh" stats 3
# --- end of TALLY_TRACE and TALLY_STATS ----------------------------------------

pre="$here/preload/run-preload.sh"
for np in 1 3 4; do
    run "preload C np=$np" "$pre" compare "$np" "$BUILD/tests/preload/preload_c"
done
run "preload C TALLY_PRELOAD=off np=2" "$pre" off 2 "$BUILD/tests/preload/preload_c"
# Communicators made by threads at once, retired at MPI_Finalize.
for np in 2 3; do
    run "preload threads np=$np" "$pre" compare "$np" "$BUILD/tests/preload/preload_threads"
done
for prog in preload_fh preload_usempi; do
    for np in 2 3; do
        run "preload Fortran $prog np=$np" "$pre" compare "$np" "$BUILD/tests/preload/$prog"
    done
done
if why=$(/usr/bin/python3 -c 'import mpi4py.MPI, numpy' 2>&1); then
    run "preload mpi4py np=3" "$pre" served 3 /usr/bin/python3 \
        "$here/preload/allreduce_mpi4py.py"
else
    echo "=== SKIP preload mpi4py: /usr/bin/python3 cannot import mpi4py and numpy" \
        "(build-aux/install-deps.sh installs python3-mpi4py python3-numpy as root):" \
        "$(echo "$why" | tail -n 1)"
fi

runs_summary tests
