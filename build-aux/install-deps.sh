#!/bin/sh
# Installs the Debian packages tally needs to build and test, if any is
# missing.  Safe to run again: with everything present it only checks.
# The optional packages (mpi4py and numpy, for the drop-in test of a
# program nobody here wrote; clang and its libFuzzer runtime, for the
# tuning-file fuzz run; gnuplot-nox, for tally-plot and make plot;
# python3-torch and python3-sklearn, for the PyTorch DDP hook's test) are
# tried once; if they cannot be installed, their test prints SKIP and the
# reason.
set -eu

optional="python3-mpi4py python3-numpy clang libclang-rt-14-dev gnuplot-nox python3-torch
          python3-sklearn"
install_optional() {
    missing_opt=
    for p in $optional; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing_opt="$missing_opt $p"
    done
    [ -z "$missing_opt" ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: optional packages missing:$missing_opt (their test will SKIP)" >&2
        return 0
    fi
    echo "install-deps: installing optional$missing_opt"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $missing_opt ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
              --no-install-recommends $missing_opt; } ||
        echo "install-deps: could not install$missing_opt (their test will SKIP)" >&2
}

packages="make build-essential autoconf pkg-config openmpi-bin libopenmpi-dev
hwloc libhwloc-dev check gfortran procps coreutils iproute2 python3"

missing=
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -z "$missing" ]; then
    install_optional
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: not a Debian system; please install:$missing" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing; run as root: apt-get install$missing" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
install_optional
