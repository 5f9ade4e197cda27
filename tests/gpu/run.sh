#!/bin/bash
# run.sh - every GPU test and benchmark of tally, in one run of under 8
# minutes, on a machine with one GPU, no MPI and no package registry (the
# device tool's H100/H200 machine).  Everything is built beforehand on the
# build machine by tests/gpu/prepare.sh, which also downloads Debian's
# Open MPI into gpu-bundle/; this script unpacks it, points PATH,
# LD_LIBRARY_PATH and OPAL_PREFIX at it and runs, each step bounded:
#   1. the machine: GPU, driver, nvcc, whether pip's mpi4py brings an MPI
#   2. tests/unit/test_mem on the CUDA backend: allocation, copies, streams
#      and events, every dtype x op kernel against the host kernels bit for
#      bit; then the same under compute-sanitizer memcheck
#   3. bench/device: the reduce kernels against the device's copy
#      bandwidth, and what classifying a host pointer costs per call
#   4. tests/mpi/test_device on the GPU at np 1 to 4 (all ranks share it):
#      nccl at np 1, ipc beyond (ranks sharing a GPU), staged forced
#   5. tally-bench, np 2: device buffers (ipc, staged, and the MPI's naive
#      staging) against host buffers, 1 MiB to 256 MiB, with the ratios
#   6. a CUDA-aware MPI program through libtally-preload.so
#   7. PyTorch DDP on the GPU (examples/ddp_digits.py): gloo, tally's hook
#   8. tally-info
# Writes OUT (default $OUT, else /tmp/tally-gpu)/report.txt and the JSON of
# step 5.  Usage, from the repository root:  bash tests/gpu/run.sh [OUT]
# TALLY_GPU_DEVICE=emulated runs steps 2 to 5 on the emulated device, to
# try the script itself on a machine without a GPU (the figures mean
# nothing there).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-${OUT:-/tmp/tally-gpu}}
mkdir -p "$out"
report=$out/report.txt
exec > >(tee "$report") 2>&1
build=$root/build
start=$(date +%s)
passed=0
failed=0

step() { # NAME SECONDS CMD... : runs CMD bounded, counts it
    local name=$1 limit=$2
    shift 2
    echo
    echo "=== $name ($(($(date +%s) - start)) s into the run)"
    if timeout -k 5 "$limit" "$@"; then
        passed=$((passed + 1))
    else
        echo "=== FAILED: $name (exit $?)"
        failed=$((failed + 1))
    fi
}

# --- Open MPI from the bundle ------------------------------------------------
mpiroot=/tmp/tally-mpi
if ! ls "$root"/gpu-bundle/*.deb >/dev/null 2>&1; then
    echo "run.sh: no gpu-bundle/*.deb: run tests/gpu/prepare.sh on the build machine and carry gpu-bundle"
    exit 2
fi
mkdir -p "$mpiroot"
for deb in "$root"/gpu-bundle/*.deb; do
    dpkg -x "$deb" "$mpiroot" || { echo "run.sh: cannot unpack $deb"; exit 2; }
done
export OPAL_PREFIX=$mpiroot/usr
export PATH=$mpiroot/usr/bin:$PATH
export LD_LIBRARY_PATH=$mpiroot/usr/lib/x86_64-linux-gnu/openmpi/lib:$mpiroot/usr/lib/x86_64-linux-gnu:$mpiroot/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The CUDA runtime the plugin was linked against (libcudart.so.13): the
# toolkit's, else the one PyTorch's wheels bring.
cudart=$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")/../lib64
if [ ! -e "$cudart/libcudart.so.13" ]; then
    cudart=$(python3 -c 'import nvidia.cuda_runtime, os; print(os.path.dirname(nvidia.cuda_runtime.__file__) + "/lib")' 2>/dev/null)
fi
# NCCL for the nccl algorithm: the toolkit's, else PyTorch's wheel's.
nccl=$cudart
if [ ! -e "$nccl/libnccl.so.2" ]; then
    nccl=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) + "/lib")' 2>/dev/null)
fi
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$cudart:$nccl
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Shared memory and loopback only; no single-copy mechanism (containers).
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_plm_rsh_agent=false
export MPIRUN=$mpiroot/usr/bin/mpirun.openmpi
export TALLY_DEVICE=${TALLY_GPU_DEVICE:-auto} TALLY_TEST_DEVICE=${TALLY_GPU_DEVICE:-auto}

# --- 1. the machine ------------------------------------------------------------
echo "=== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,pci.bus_id --format=csv 2>&1 | head -3
nvcc --version 2>&1 | tail -2
"$MPIRUN" --version 2>&1 | head -1
echo "cudart: $cudart; nccl: $nccl"
python3 - <<'PY' 2>&1 | head -5
try:
    import mpi4py
    print("pip mpi4py", mpi4py.__version__, "config:", mpi4py.get_config())
    from mpi4py import MPI
    print("mpi4py loads an MPI of its own:", MPI.Get_library_version().splitlines()[0])
except Exception as e:
    print("mpi4py brings no MPI of its own:", type(e).__name__, e)
PY
for f in "$build"/lib/libtally-cuda.so "$build"/bin/tally-bench; do
    missing=$(ldd "$f" | grep "not found")
    [ -z "$missing" ] || echo "run.sh: $f: $missing"
done

# --- 2. the CUDA backend -----------------------------------------------------
step "unit test_mem (cuda backend)" 120 "$build"/tests/unit/test_mem
if command -v compute-sanitizer >/dev/null; then
    step "compute-sanitizer memcheck test_mem" 240 \
        compute-sanitizer --tool memcheck --error-exitcode 1 "$build"/tests/unit/test_mem
else
    echo "=== SKIP compute-sanitizer: not on the PATH"
fi

# --- 3. kernel and classification rates ----------------------------------------
step "bench/device 1024 MiB" 120 "$build"/bench/device 1024

# --- 4. device buffers through MPI, np 1 to 4 on one GPU ------------------------
for np in 1 2 3 4; do
    step "mpi test_device np=$np ($TALLY_DEVICE)" 180 \
        "$MPIRUN" --oversubscribe --bind-to none -np $np -x TALLY_TEST_DEVICE -x LD_LIBRARY_PATH \
        "$build"/tests/mpi/test_device
done

# --- 5. staged against host buffers and the naive staging, np 2 -----------------
bench_args=(-b 1M -e 256M -f 4 -n 10 -w 2 -R 3 -c 1)
step "tally-bench -m device np=2" 180 "$MPIRUN" -np 2 -x LD_LIBRARY_PATH -x TALLY_DEVICE \
    "$build"/bin/tally-bench -m device "${bench_args[@]}" -a auto,staged,mpi --json "$out/device.json"
step "tally-bench -m host np=2" 120 "$MPIRUN" -np 2 -x LD_LIBRARY_PATH \
    "$build"/bin/tally-bench -m host "${bench_args[@]}" -a auto,mpi --json "$out/host.json"
python3 - "$out/device.json" "$out/host.json" <<'PY'
import json, sys
dev, host = (json.load(open(p)) for p in sys.argv[1:3])
def rows(data, prefix):
    return {r["bytes"]: r["avg_us"] for r in data
            if r["algorithm"].startswith(prefix) and r["avg_us"] is not None}
ipc, staged, naive, plain = rows(dev, "auto"), rows(dev, "staged"), rows(dev, "mpi"), rows(host, "auto")
print("%10s %11s %11s %11s %11s %12s %13s %11s" % ("bytes", "auto(us)", "staged(us)",
      "naive(us)", "host(us)", "staged/host", "naive/staged", "staged/ipc"))
for b in sorted(staged):
    if b in naive and b in plain and b in ipc:
        print("%10d %11.1f %11.1f %11.1f %11.1f %12.2f %13.2f %11.2f" % (b, ipc[b], staged[b],
              naive[b], plain[b], staged[b] / plain[b], naive[b] / staged[b], staged[b] / ipc[b]))
PY

# --- 6. the drop-in with device pointers -------------------------------------------
step "preload: device pointers to MPI_Allreduce np=2" 120 "$MPIRUN" -np 2 -x LD_LIBRARY_PATH \
    -x LD_PRELOAD="$build"/lib/libtally-preload.so -x TALLY_STATS=1 "$build"/tests/gpu/preload_device

# --- 7. PyTorch DDP on the GPU: gloo against tally's hook ---------------------
# (both ranks on the one GPU; needs pip's mpi4py to load the bundled MPI)
if python3 -c 'from mpi4py import MPI' >/dev/null 2>&1; then
    for hook in gloo tally; do
        step "pytorch ddp --device cuda --hook $hook np=2" 180 "$MPIRUN" -np 2 \
            -x LD_LIBRARY_PATH -x PYTHONPATH="$root/python" -x OMP_NUM_THREADS=4 \
            python3 "$root/examples/ddp_digits.py" --device cuda --hook "$hook" --steps 200
    done
else
    echo "=== SKIP pytorch ddp: mpi4py cannot load an MPI here"
fi

# --- 8. what tally sees --------------------------------------------------------
step "tally-info" 60 "$MPIRUN" -np 1 -x LD_LIBRARY_PATH "$build"/bin/tally-info

echo
echo "gpu tests: $passed passed, $failed failed, in $(($(date +%s) - start)) s"
[ "$failed" = 0 ]
