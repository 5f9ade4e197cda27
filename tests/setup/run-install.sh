#!/bin/sh
# run-install.sh - what a user of the installed library does: make install
# into a fresh prefix, build a program with nothing but
# `cc app.c $(pkg-config --cflags --libs tally)` (tally.pc brings the MPI's
# flags and an rpath) and with CMake's find_package(tally) where cmake is
# installed, run them on two ranks, then make uninstall and check
# that nothing of tally is left there.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
prefix=$(mktemp -d /tmp/tally-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "run-install: FAIL: $*"; exit 1; }

make -s -C "$top" install PREFIX="$prefix" BUILD="$BUILD" >/dev/null || fail "make install"
cat > "$prefix/app.c" <<'C'
#include <stdio.h>
#include <tally.h>
int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    tally_comm_t *comm;
    double x = 1.5;
    int ok = tally_comm_create(MPI_COMM_WORLD, &comm) == TALLY_SUCCESS &&
             tally_allreduce(TALLY_IN_PLACE, &x, 1, TALLY_FLOAT64, TALLY_SUM, comm) ==
                 TALLY_SUCCESS &&
             tally_comm_destroy(comm) == TALLY_SUCCESS;
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    printf("app: %s, sum %g\n", ok && x == 1.5 * size ? "ok" : "FAILED", x);
    MPI_Finalize();
    return !(ok && x == 1.5 * size);
}
C
flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs tally) ||
    fail "pkg-config --cflags --libs tally"
# shellcheck disable=SC2086
cc -o "$prefix/app" "$prefix/app.c" $flags || fail "cc app.c \$(pkg-config --cflags --libs tally)"
ldd "$prefix/app" | grep -q "$prefix/lib/libtally.so.0" ||
    fail "the installed program does not find the installed libtally.so.0"
"$here/../mpirun.sh" 2 60 "$prefix/app" || fail "the installed program on 2 ranks"
# The same program with CMake: find_package(tally 0.1) and tally::tally.
if command -v cmake >/dev/null 2>&1; then
    mkdir -p "$prefix/cmake-app"
    cp "$prefix/app.c" "$prefix/cmake-app/app.c"
    cat > "$prefix/cmake-app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(app C)
find_package(tally 0.1 REQUIRED)
add_executable(app app.c)
target_link_libraries(app tally::tally)
CM
    cmake -S "$prefix/cmake-app" -B "$prefix/cmake-app/b" -DCMAKE_PREFIX_PATH="$prefix" \
        >"$prefix/cmake.log" 2>&1 && cmake --build "$prefix/cmake-app/b" >>"$prefix/cmake.log" 2>&1 ||
        { cat "$prefix/cmake.log"; fail "find_package(tally) and tally::tally"; }
    "$here/../mpirun.sh" 2 60 "$prefix/cmake-app/b/app" || fail "the CMake-built program"
    rm -rf "$prefix/cmake-app" "$prefix/cmake.log"
else
    echo "run-install: SKIP the CMake package: cmake is not installed"
fi
make -s -C "$top" uninstall PREFIX="$prefix" BUILD="$BUILD" >/dev/null || fail "make uninstall"
rm -f "$prefix/app" "$prefix/app.c"
left=$(find "$prefix" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "run-install: install, pkg-config and CMake builds, run on 2 ranks and uninstall: ok"
