/* fuzz_tuning.c - libFuzzer target for the tuning-file parser
 * (src/select/tuning.c, tally-tuning(5)).  Built alone with clang, without
 * the rest of tally:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/select \
 *       tests/fuzz/fuzz_tuning.c src/select/tuning.c -o build/fuzz/fuzz_tuning
 *
 * (`make fuzz` does this; tests/fuzz/run-fuzz.sh builds and runs it over
 * tests/fuzz/corpus-tuning.)  Each input is parsed as a whole file; the
 * invariants in tuning_check.h must hold, else the target aborts.  The
 * input buffer is exactly `size` bytes with no terminating NUL, so
 * AddressSanitizer catches any read past the end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tuning.h"
#include "tuning_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = tuning_check((const char *)data, size);
    if (why != NULL) {
        fprintf(stderr, "fuzz_tuning: invariant broken: %s\n", why);
        abort();
    }
    return 0;
}
