#!/bin/sh
# run-sanitized.sh - the unit tests and the MPI tests (np 1 to 3) of a
# sanitizer build (make check-asan: AddressSanitizer and UBSan; BUILD is
# its build folder) or under valgrind (VALGRIND=1, make check-valgrind,
# the normal build, Open MPI's own noise suppressed by
# tests/valgrind/openmpi.supp).  A report fails the run.  Leak checking is
# off: Open MPI and hwloc keep memory until exit.  The last line counts
# the runs.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=runs.sh
. "$here/runs.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
wrap=
if [ "${VALGRIND:-0}" = 1 ]; then
    wrap="valgrind -q --error-exitcode=99 --leak-check=no --suppressions=$here/valgrind/openmpi.supp"
fi

# Under valgrind the emulated device cannot map its host view at the fixed
# offset it needs (valgrind manages the address space): its tests wait for
# the sanitizer build.
emulated="test_mem test_device test_check"
skip_under_valgrind() {
    [ "${VALGRIND:-0}" = 1 ] || return 1
    case " $emulated " in *" $1 "*) ;; *) return 1 ;; esac
    echo "=== SKIP $1 under valgrind: the emulated device maps memory at a fixed offset," \
        "which valgrind refuses (make check-asan runs it)"
}

for t in "$BUILD"/tests/unit/test_*; do
    [ -x "$t" ] || continue
    skip_under_valgrind "$(basename "$t")" && continue
    # shellcheck disable=SC2086
    run "unit $(basename "$t")" timeout -k 5 900 $wrap "$t"
done
for t in "$BUILD"/tests/mpi/test_*; do
    [ -x "$t" ] || continue
    skip_under_valgrind "$(basename "$t")" && continue
    for np in ${TALLY_TEST_NP:-1 2 3}; do
        # shellcheck disable=SC2086
        run "mpi $(basename "$t") np=$np" "$here/mpirun.sh" "$np" 1200 \
            -x ASAN_OPTIONS -x UBSAN_OPTIONS $wrap "$t"
    done
done
runs_summary "sanitized tests"
