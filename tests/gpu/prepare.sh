#!/bin/sh
# prepare.sh - on the build machine (Debian 12, with network), before the
# GPU script: builds everything the script runs and downloads Debian's
# Open MPI and the libraries it and tally's binaries load into gpu-bundle/
# (ignored by git), since the GPU machine has no MPI and no package
# registry.  Then, with a GPU machine:
#   carry: build/lib build/bin build/tests build/bench gpu-bundle
#   run:   bash tests/gpu/run.sh
set -eu
cd "$(dirname "$0")/../.."
make all build/bench/device build/tests/unit/test_mem build/tests/mpi/test_device \
    build/tests/gpu/preload_device
mkdir -p gpu-bundle
cd gpu-bundle
rm -f ./*.deb
# Open MPI 4.1 with its launcher and plugins, and every library they, hwloc
# and the test binaries load that a machine without MPI may lack.
apt-get download \
    openmpi-bin openmpi-common libopenmpi3 libpmix2 libevent-2.1-7 libevent-core-2.1-7 \
    libevent-pthreads-2.1-7 libhwloc15 libhwloc-plugins libfabric1 libucx0 libpsm2-2 \
    libpsm-infinipath1 libibverbs1 ibverbs-providers librdmacm1 libnl-3-200 \
    libnl-route-3-200 libnuma1 libmunge2 libxnvctrl0 libsubunit0 libpciaccess0 libxml2 \
    libicu72 ocl-icd-libopencl1
du -sh .
