/* codec.c - how fast each codec encodes and decodes on this host: GB/s of
 * float input, best of several passes over N elements (default 16 Mi),
 * one core, no MPI.  `make bench-codec`; the compressed path's cost model
 * starts from the same figures (compress/codec.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compress/codec.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : (size_t)16 << 20;
    const int passes = 5;
    float *x = malloc(n * sizeof *x), *acc = malloc(n * sizeof *acc);
    if (!x || !acc || n == 0)
        return 1;
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) { /* gradient-like: mostly small, some large */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((int64_t)(s >> 11) - (1ll << 52)) / (float)(1ll << 52) *
               ((s & 0xff) == 0 ? 100.0f : 1.0f);
    }
    printf("# codec rates on %zu floats (%.0f MiB), best of %d; GB/s of float input\n", n,
           n * 4.0 / (1 << 20), passes);
    printf("%-14s %10s %10s %12s\n", "codec", "encode", "decode", "bytes/input");
    const char *specs[] = {"fp16", "bf16", "int8", "sign", "topk:0.01", "topk:0.001"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        tally_codec_spec_t spec;
        char why[256];
        if (tally_codec_spec_parse(specs[k], &spec, why, sizeof why) != TALLY_SUCCESS)
            return 1;
        const tally_codec_t *c = spec.codec;
        void *out = malloc(c->bound(n, &spec));
        if (!out)
            return 1;
        double enc = 1e30, dec = 1e30;
        size_t bytes = 0;
        for (int p = 0; p < passes; p++) {
            tally_codec_ctx_t ctx = {&spec, (uint64_t)p};
            double t0 = now();
            bytes = c->encode(x, n, out, &ctx);
            double t1 = now();
            memset(acc, 0, n * sizeof *acc);
            double t2 = now();
            if (c->decode_axpy(out, bytes, n, 1.0f, acc, true) != TALLY_SUCCESS)
                return 1;
            double t3 = now();
            enc = t1 - t0 < enc ? t1 - t0 : enc;
            dec = t3 - t2 < dec ? t3 - t2 : dec;
        }
        printf("%-14s %10.2f %10.2f %12.4f\n", specs[k], n * 4.0 / enc / 1e9, n * 4.0 / dec / 1e9,
               (double)bytes / (n * 4.0));
        free(out);
    }
    free(x);
    free(acc);
    return 0;
}
