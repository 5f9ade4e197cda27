/* fuzz_spec.c - libFuzzer target for the codec spec parser
 * (src/compress/spec.c): any bytes either parse into a spec whose fields
 * are in range, or are refused with a message and the output untouched;
 * never a crash or a read past the input (copied to exactly its size plus
 * the terminating NUL). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    tally_codec_spec_t spec, untouched;
    memset(&spec, 0xab, sizeof spec);
    memcpy(&untouched, &spec, sizeof spec);
    char why[128];
    if (tally_codec_spec_parse(text, &spec, why, sizeof why) == TALLY_SUCCESS) {
        const tally_codec_kind_t kind = spec.codec->kind;
        if ((kind == TALLY_CODEC_SPARSE && !(spec.ratio > 0.0 && spec.ratio <= 1.0)) ||
            (kind == TALLY_CODEC_LOW_RANK && (spec.rank < 1 || spec.rank > 64))) {
            fprintf(stderr, "fuzz_spec: \"%s\" parsed out of range\n", text);
            abort();
        }
    } else if (memcmp(&spec, &untouched, sizeof spec) != 0 || why[0] == '\0') {
        fprintf(stderr, "fuzz_spec: \"%s\" refused but wrote the spec or no message\n", text);
        abort();
    }
    free(text);
    return 0;
}
