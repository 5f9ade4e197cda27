#!/bin/sh
# run-builds.sh - one build for GPU and CPU nodes: libtally.so links no
# CUDA or NCCL library (device support is the plugin libtally-cuda.so,
# loaded at run time), and a CPU-only build (configure --without-cuda)
# compiles no CUDA, builds no plugin and its tally-info says why there are
# no device buffers.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
top="$here/../.."

if ldd "$BUILD/lib/libtally.so" | grep -Ei 'cuda|nccl'; then
    echo "run-builds: FAIL: libtally.so links a CUDA or NCCL library (above)"
    exit 1
fi
echo "run-builds: libtally.so links no CUDA or NCCL library"
if [ -e "$BUILD/lib/libtally-cuda.so" ]; then
    ldd "$BUILD/lib/libtally-cuda.so" | grep -q cudart ||
        { echo "run-builds: FAIL: libtally-cuda.so does not link the CUDA runtime"; exit 1; }
    echo "run-builds: the device plugin libtally-cuda.so links the CUDA runtime"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -rp "$top/Makefile" "$top/configure" "$top/configure.ac" "$top/build-aux" "$top/src" "$top/include" \
    "$top/bench" "$top/man" "$tmp/"
(cd "$tmp" && ./configure --without-cuda >configure.log 2>&1 &&
    make -j2 build/lib/libtally.so build/bin/tally-info >make.log 2>&1) ||
    { echo "run-builds: FAIL: the CPU-only build:"; tail -n 20 "$tmp"/*.log; exit 1; }
if grep -q 'nvcc\|-lcudart\|cuda_runtime' "$tmp/make.log" || [ -e "$tmp/build/lib/libtally-cuda.so" ]; then
    echo "run-builds: FAIL: the CPU-only build compiled CUDA code:"
    grep 'nvcc\|cudart\|cuda_runtime' "$tmp/make.log" | head
    exit 1
fi
out=$("$here/../mpirun.sh" 1 60 "$tmp/build/bin/tally-info" 2>&1)
echo "$out" | grep '^device buffers: none: built without CUDA' ||
    { echo "run-builds: FAIL: the CPU-only tally-info does not say why no device:"; echo "$out" | tail; exit 1; }
echo "run-builds: the CPU-only build compiles no CUDA and runs"
