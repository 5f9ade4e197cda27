#!/bin/sh
# mpirun.sh NP SECONDS CMD [ARGS...] - runs CMD on NP ranks of this machine
# under mpirun, killed after SECONDS.  Adds what this machine needs: the
# root permission variables, and oversubscription with yielding when there
# are more ranks than cores.
set -eu
np=$1
limit=$2
shift 2
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
extra=
if [ "$np" -gt "$(nproc)" ]; then
    extra="--oversubscribe --bind-to none --mca mpi_yield_when_idle 1"
fi
# shellcheck disable=SC2086
exec timeout -k 10 "$limit" "${MPIRUN:-mpirun}" -np "$np" $extra "$@"
