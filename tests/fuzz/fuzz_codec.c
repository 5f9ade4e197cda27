/* fuzz_codec.c - libFuzzer target for the codecs' decoders and encoders
 * (src/compress/codec.c, tally(7) COMPRESSION).  Built alone with clang:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       $(mpicc --showme:compile) tests/fuzz/fuzz_codec.c \
 *       src/compress/codec.c src/compress/spec.c -lm
 *
 * (tests/fuzz/run-fuzz.sh codec builds and runs it.)  Input: byte 0 picks
 * the codec, byte 1 the mode, bytes 2-3 the element count (at most 4096),
 * the rest is data.  Mode even: the data is a payload from the wire; the
 * decoder must accept or refuse it without reading or writing out of
 * bounds, and a refusal must leave the accumulator untouched.  Mode odd:
 * the data is floats; their encoding must stay within the codec's bound
 * and decode without error.  The payload is copied to a buffer of exactly
 * its size, so AddressSanitizer catches any read past the end. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const specs[] = {"fp16", "bf16", "int8", "sign", "topk:0.1", "topk:0.7"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    tally_codec_spec_t spec;
    if (tally_codec_spec_parse(specs[data[0] % 6], &spec, NULL, 0) != TALLY_SUCCESS)
        abort();
    const tally_codec_t *c = spec.codec;
    const size_t count = ((size_t)data[2] | (size_t)data[3] << 8) % 4097;
    const uint8_t *body = data + 4;
    const size_t len = size - 4;
    float *acc = malloc((count ? count : 1) * sizeof *acc);
    float *copy = malloc((count ? count : 1) * sizeof *copy);
    if (!acc || !copy)
        abort();
    for (size_t i = 0; i < count; i++)
        acc[i] = copy[i] = (float)i;
    if (data[1] % 2 == 0) {
        uint8_t *payload = malloc(len ? len : 1);
        if (!payload)
            abort();
        memcpy(payload, body, len);
        tally_status_t st = c->decode_axpy(payload, len, count, 1.0f, acc, data[1] & 2);
        if (st != TALLY_SUCCESS && memcmp(acc, copy, count * sizeof *acc) != 0) {
            fprintf(stderr, "fuzz_codec: %s refused a payload but wrote the result\n", c->name);
            abort();
        }
        free(payload);
    } else {
        const size_t n = len / sizeof(float) < count ? len / sizeof(float) : count;
        float *x = malloc((n ? n : 1) * sizeof *x);
        const size_t bound = c->bound(n, &spec);
        uint8_t *out = malloc(bound ? bound : 1);
        if (!x || !out)
            abort();
        memcpy(x, body, n * sizeof *x);
        tally_codec_ctx_t ctx = {&spec, data[1]};
        const size_t bytes = c->encode(x, n, out, &ctx);
        if (bytes > bound || c->decode_axpy(out, bytes, n, 1.0f, acc, true) != TALLY_SUCCESS) {
            fprintf(stderr, "fuzz_codec: %s's own encoding of %zu floats failed (%zu > %zu?)\n",
                    c->name, n, bytes, bound);
            abort();
        }
        free(x);
        free(out);
    }
    free(acc);
    free(copy);
    return 0;
}
