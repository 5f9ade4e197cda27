# runs.sh - sourced by the test drivers (run-tests.sh, run-sanitized.sh):
# `run NAME CMD...` runs one test, prints "=== NAME" and, after it, the
# seconds it took (so that a slow test shows in CI's log), and counts it;
# `runs_summary LABEL` prints the failed runs and "LABEL: N passed, N
# failed", and returns non-zero if any failed.
passed=0
failed=0
failures=

run() {
    name=$1
    shift
    echo "=== $name"
    start=$(date +%s)
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures="$failures
  $name"
    fi
    echo "--- $name: $(($(date +%s) - start)) s"
}

runs_summary() {
    [ -n "$failures" ] && printf 'failed runs:%s\n' "$failures"
    echo "$1: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}
