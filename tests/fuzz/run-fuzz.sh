#!/bin/sh
# run-fuzz.sh - builds one fuzz target (clang -fsanitize=fuzzer,address,
# undefined) into $BUILD/fuzz/ and runs it for a bounded time over a copy of
# its seed corpus tests/fuzz/corpus-TARGET (new inputs go to a temporary
# directory, never into the source tree):
#   tuning  fuzz_tuning.c with src/select/tuning.c (tally-tuning(5) files)
#   codec   fuzz_codec.c with the codecs (every decoder, every encoder)
#   spec    fuzz_spec.c with the codec spec parser
#   config  fuzz_config.c with src/core/config.c (TALLY_* values)
#   preload fuzz_preload.c with src/preload/preload.c over $BUILD/lib's
#           libtally.so, on two ranks under tests/mpirun.sh: the drop-in's
#           mapping of datatype, op, count and buffers, against PMPI
#
#   tests/fuzz/run-fuzz.sh [TARGET]   from the source root (make check runs
#                                     each; default tuning)
#
# Environment: BUILD (default build), CLANG (default clang), FUZZ_RUNS
# (default 200000), FUZZ_TIME (seconds, default 45), FUZZ_MAX_LEN (default
# 4096).  Prints "SKIP fuzz_tuning: <reason>" and exits 0 when clang cannot
# build any libFuzzer program here; exits non-zero when the target does not
# build or the fuzzer finds a crash, leak, sanitizer report or broken
# invariant (the input is kept as $BUILD/fuzz/crash-* and the like).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
CLANG=${CLANG:-clang}
FUZZ_RUNS=${FUZZ_RUNS:-200000}
FUZZ_TIME=${FUZZ_TIME:-45}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-4096}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
target=${1:-tuning}
out="$BUILD/fuzz"
bin="$out/fuzz_$target"
case $target in
tuning) srcs="$root/tests/fuzz/fuzz_tuning.c $root/src/select/tuning.c" incs="-I$root/src/select" ;;
codec | spec)
    srcs="$root/tests/fuzz/fuzz_$target.c $root/src/compress/codec.c $root/src/compress/spec.c"
    # codec.h includes tally.h, which includes mpi.h.
    incs="-I$root/include -I$root/src $(mpicc --showme:compile 2>/dev/null)" ;;
config)
    srcs="$root/tests/fuzz/fuzz_config.c $root/src/core/config.c $root/src/compress/codec.c $root/src/compress/spec.c"
    incs="-I$root/include -I$root/src $(mpicc --showme:compile 2>/dev/null)" ;;
preload)
    # The library itself is not instrumented; the preload's code is.  MPI
    # keeps its own allocations to the end, so leaks are not looked for.
    srcs="$root/tests/fuzz/fuzz_preload.c $root/src/preload/preload.c"
    incs="-I$root/include $(mpicc --showme:compile 2>/dev/null)"
    libs="-L$BUILD/lib -Wl,-rpath,$(cd "$BUILD/lib" 2>/dev/null && pwd) -ltally $(mpicc --showme:link 2>/dev/null)"
    extra="-detect_leaks=0" asan="detect_leaks=0" launch="$root/tests/mpirun.sh 2" ;;
*) echo "run-fuzz.sh: TARGET is tuning, codec, spec, config or preload" >&2; exit 2 ;;
esac
if [ "$target" = preload ] && [ ! -e "$BUILD/lib/libtally.so" ]; then
    echo "FAIL fuzz_preload: build $BUILD/lib/libtally.so first (make)"
    exit 1
fi

if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "SKIP fuzz_$target: no $CLANG in PATH"
    exit 0
fi
mkdir -p "$out" || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_$target.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# Can this clang build a libFuzzer program at all?  If not, skip; if it can
# but the real target fails, that is a failure of the code.
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$tmp/probe.c"
# shellcheck disable=SC2086
if ! why=$("$CLANG" $FLAGS -o "$tmp/probe" "$tmp/probe.c" 2>&1); then
    echo "SKIP fuzz_$target: $CLANG cannot build a libFuzzer program:" \
        "$(printf '%s\n' "$why" | grep -m 1 -i error || printf '%s\n' "$why" | tail -n 1)"
    exit 0
fi

echo "building $bin"
# shellcheck disable=SC2086
"$CLANG" $FLAGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror \
    $incs -o "$bin" $srcs ${libs:-} -lm || { echo "FAIL fuzz_$target: the target does not build"; exit 1; }

mkdir -p "$tmp/corpus"
echo "fuzzing: -runs=$FUZZ_RUNS -max_total_time=$FUZZ_TIME -max_len=$FUZZ_MAX_LEN"
# The first directory receives new inputs; the seed corpus is only read.
# shellcheck disable=SC2086
ASAN_OPTIONS=${asan:-${ASAN_OPTIONS:-}} ${launch:-timeout -k 5} $((FUZZ_TIME + 60)) "$bin" ${extra:-} -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_TIME" \
    -max_len="$FUZZ_MAX_LEN" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/" "$tmp/corpus" "$here/corpus-$target" >"$tmp/log" 2>&1
rc=$?
grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done |stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$tmp/log"
if [ "$rc" != 0 ]; then
    tail -n 60 "$tmp/log"
    echo "FAIL fuzz_$target: exit status $rc; inputs kept under $out/"
    exit 1
fi
echo "fuzz_$target: no crash"
