/* test_compress.c - unit tests (no MPI) of the codecs (compress/codec.h)
 * and PowerSGD's arithmetic (compress/powersgd.h): round trips at awkward
 * counts within each codec's error bound; zeros, subnormals, inf and NaN;
 * error feedback driving the applied sum towards T times the gradient;
 * hostile payloads refused without touching the accumulator; the spec
 * grammar, good and bad. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compress/codec.h"
#include "compress/powersgd.h"

static const size_t counts[] = {0, 1, 3, 1009, 1024, 1025, (1u << 20) + 3};

static tally_codec_spec_t spec_of(const char *text)
{
    tally_codec_spec_t spec;
    char why[256];
    ck_assert_msg(tally_codec_spec_parse(text, &spec, why, sizeof why) == TALLY_SUCCESS,
                  "%s: %s", text, why);
    return spec;
}

/* Gradient-like values: most small, a few large, both signs. */
static void fill(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        float v = (float)((int64_t)(s >> 11) - (1ll << 52)) / (float)(1ll << 52);
        x[i] = (s & 0x3f) == 0 ? v * 50.0f : v;
    }
}

/* Encodes x, decodes into a zeroed y; returns the payload size. */
static size_t round_trip(const tally_codec_spec_t *spec, const float *x, size_t n, float *y)
{
    const tally_codec_t *c = spec->codec;
    size_t bound = c->bound(n, spec);
    void *p = malloc(bound ? bound : 1);
    ck_assert_ptr_nonnull(p);
    tally_codec_ctx_t ctx = {spec, 7};
    size_t bytes = c->encode(x, n, p, &ctx);
    ck_assert_uint_le(bytes, bound);
    /* Decoded over garbage, which must not show through (add = false). */
    for (size_t i = 0; i < n; i++)
        y[i] = NAN;
    ck_assert_int_eq(c->decode_axpy(p, bytes, n, 1.0f, y, false), TALLY_SUCCESS);
    free(p);
    return bytes;
}

static float chunk_absmax(const float *x, size_t at, size_t n)
{
    float m = 0.0f;
    for (size_t i = at; i < at + n && i < n + at; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

START_TEST(test_round_trip_dense)
{
    const char *names[] = {"fp16", "bf16", "int8", "sign"};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        const size_t n = counts[c];
        float *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
        ck_assert(x && y);
        fill(x, n, n);
        for (size_t k = 0; k < 4; k++) {
            tally_codec_spec_t spec = spec_of(names[k]);
            round_trip(&spec, x, n, y);
            for (size_t at = 0; at < n; at += TALLY_CODEC_CHUNK) {
                const size_t len = n - at < TALLY_CODEC_CHUNK ? n - at : TALLY_CODEC_CHUNK;
                const float m = chunk_absmax(x, at, len);
                double l1 = 0;
                for (size_t i = at; i < at + len; i++)
                    l1 += fabsf(x[i]);
                for (size_t i = at; i < at + len; i++) {
                    const float err = fabsf(y[i] - x[i]);
                    bool ok;
                    switch (k) {
                    case 0: ok = err <= fabsf(x[i]) * 0x1p-11f + 0x1p-24f; break;
                    case 1: ok = err <= fabsf(x[i]) * 0x1p-8f + 1e-38f; break;
                    case 2: ok = err <= m / 127.0f * 1.0001f; break;
                    default: /* +-mean |x|, the sign of x */
                        ok = fabsf(fabsf(y[i]) - (float)(l1 / len)) <= 1e-5f * (float)(l1 / len) &&
                             (signbit(y[i]) == signbit(x[i]));
                    }
                    if (!ok)
                        ck_abort_msg("%s, %zu elements: element %zu is %g, decoded %g", names[k],
                                     n, i, x[i], y[i]);
                }
            }
        }
        free(x);
        free(y);
    }
}
END_TEST

START_TEST(test_round_trip_topk)
{
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        const size_t n = counts[c];
        float *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
        ck_assert(x && y);
        fill(x, n, n + 1);
        const char *specs[] = {"topk:0.01", "topk:0.3", "topk:1"};
        for (size_t k = 0; k < 3; k++) {
            tally_codec_spec_t spec = spec_of(specs[k]);
            round_trip(&spec, x, n, y);
            size_t keep = n ? (size_t)ceil(spec.ratio * n) : 0, kept = 0;
            float smallest_kept = INFINITY, largest_dropped = 0.0f;
            for (size_t i = 0; i < n; i++) {
                if (y[i] != 0.0f) {
                    ck_assert_msg(y[i] == x[i], "kept values travel exactly");
                    kept++;
                    smallest_kept = fminf(smallest_kept, fabsf(x[i]));
                } else {
                    largest_dropped = fmaxf(largest_dropped, fabsf(x[i]));
                }
            }
            if (n)
                ck_assert_uint_eq(kept, keep < 1 ? 1 : keep);
            ck_assert_msg(kept == n || smallest_kept >= largest_dropped,
                          "%s, %zu: a dropped element is larger than a kept one", specs[k], n);
        }
        free(x);
        free(y);
    }
}
END_TEST

/* Zeros, subnormals, inf and NaN: what each codec promises (codec.c). */
START_TEST(test_odd_values)
{
    float zeros[5] = {0}, y[5];
    const char *all[] = {"fp16", "bf16", "int8", "sign", "topk:0.5"};
    for (size_t k = 0; k < 5; k++) {
        tally_codec_spec_t spec = spec_of(all[k]);
        round_trip(&spec, zeros, 5, y);
        for (int i = 0; i < 5; i++)
            ck_assert_msg(y[i] == 0.0f, "%s: zeros stay zeros", all[k]);
    }
    /* Subnormal floats: fp16 flushes them to zero (below its range), bf16
     * keeps them, int8 scales them. */
    float sub[3] = {0.0f, -2e-40f, 3e-40f}; /* with a zero: 0 x (127 / m) must not be NaN */
    tally_codec_spec_t bf = spec_of("bf16"), i8 = spec_of("int8");
    round_trip(&bf, sub, 3, y);
    ck_assert(fabsf(y[1] - sub[1]) <= 0x1p-134f); /* half of bf16's subnormal step */
    round_trip(&i8, sub, 3, y);
    ck_assert(fabsf(y[2] - sub[2]) <= 3e-40f / 127.0f * 1.01f);
    /* inf and NaN: carried by fp16, bf16, topk; a whole int8/sign chunk
     * decodes as NaN. */
    float odd[4] = {1.0f, INFINITY, NAN, -2.0f};
    tally_codec_spec_t h = spec_of("fp16"), tk = spec_of("topk:0.5"), sg = spec_of("sign");
    round_trip(&h, odd, 4, y);
    ck_assert(isinf(y[1]) && isnan(y[2]) && y[0] == 1.0f && y[3] == -2.0f);
    round_trip(&bf, odd, 4, y);
    ck_assert(isinf(y[1]) && isnan(y[2]));
    round_trip(&tk, odd, 4, y);
    ck_assert(isinf(y[1]) && isnan(y[2]));
    round_trip(&i8, odd, 4, y);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(isnan(y[i]), "int8: a chunk with inf/NaN decodes as NaN");
    round_trip(&sg, odd, 4, y);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(isnan(y[i]), "sign: a chunk with inf/NaN decodes as NaN");
    /* fp16 saturates large finite values instead of making them inf. */
    float big[2] = {1e6f, -1e6f};
    round_trip(&h, big, 2, y);
    ck_assert(y[0] == 65504.0f && y[1] == -65504.0f);
}
END_TEST

/* Error feedback: the same gradient g fed T times; what was applied sums
 * to T g minus the last residual, which stays bounded, so the relative
 * error falls like 1/T once the residual has settled (after about 1/delta
 * steps for a delta-contractive codec: sign's delta is small on gradients
 * with a heavy tail). */
static double ef_error(const char *text, size_t n, int T)
{
    tally_codec_spec_t spec = spec_of(text);
    const tally_codec_t *c = spec.codec;
    float *g = malloc(n * sizeof *g), *res = calloc(n, sizeof *res), *v = malloc(n * sizeof *v),
          *applied = calloc(n, sizeof *applied);
    void *p = malloc(c->bound(n, &spec));
    ck_assert(g && res && v && applied && p);
    fill(g, n, 99);
    for (int t = 0; t < T; t++) {
        for (size_t i = 0; i < n; i++)
            v[i] = g[i] + res[i];
        tally_codec_ctx_t ctx = {&spec, (uint64_t)t};
        size_t bytes = c->encode(v, n, p, &ctx);
        memcpy(res, v, n * sizeof *res);
        ck_assert_int_eq(c->decode_axpy(p, bytes, n, -1.0f, res, true), TALLY_SUCCESS);
        ck_assert_int_eq(c->decode_axpy(p, bytes, n, 1.0f, applied, true), TALLY_SUCCESS);
    }
    double err = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        double want = (double)T * g[i];
        err += (applied[i] - want) * (applied[i] - want);
        norm += want * want;
    }
    free(g);
    free(res);
    free(v);
    free(applied);
    free(p);
    return sqrt(err / norm);
}

START_TEST(test_error_feedback)
{
    const char *specs[] = {"int8", "sign", "topk:0.01", "fp16"};
    for (size_t k = 0; k < 4; k++) {
        double e1 = ef_error(specs[k], 4096, 100), e2 = ef_error(specs[k], 4096, 1000);
        ck_assert_msg(e2 < e1 / 4 || e2 < 1e-6,
                      "%s: relative error %g after 100 steps, %g after 1000: not falling like 1/T",
                      specs[k], e1, e2);
        ck_assert_msg(e2 < 0.1, "%s: relative error %g after 1000 steps", specs[k], e2);
    }
}
END_TEST

/* Every hostile payload is refused and leaves acc as it was. */
static void refuse(const char *text, size_t n, const void *payload, size_t bytes, const char *what)
{
    tally_codec_spec_t spec = spec_of(text);
    float acc[4096];
    for (size_t i = 0; i < n; i++)
        acc[i] = (float)i;
    ck_assert_msg(spec.codec->decode_axpy(payload, bytes, n, 1.0f, acc, true) ==
                      TALLY_ERR_CORRUPT_PAYLOAD,
                  "%s: %s accepted", text, what);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(acc[i] == (float)i, "%s: %s wrote into the result", text, what);
}

START_TEST(test_hostile_payloads)
{
    unsigned char buf[8192];
    memset(buf, 0, sizeof buf);
    refuse("fp16", 10, buf, 19, "a short fp16 payload");
    refuse("fp16", 10, buf, 21, "a long fp16 payload");
    float bad_scale[3] = {INFINITY, -1.0f, NAN};
    for (int k = 0; k < 3; k++) {
        memset(buf, 0, sizeof buf);
        memcpy(buf, &bad_scale[k], 4);
        if (k == 2) { /* a NaN other than the marker */
            uint32_t other = 0x7fc00001u;
            memcpy(buf, &other, 4);
        }
        refuse("int8", 16, buf, 4 + 16, "a bad int8 scale");
        refuse("sign", 16, buf, 4 + 2, "a bad sign scale");
    }
    memset(buf, 0, sizeof buf);
    buf[4 + 3] = 0x80; /* -128 */
    refuse("int8", 16, buf, 20, "an int8 value of -128");
    memset(buf, 0, sizeof buf);
    buf[4 + 1] = 0x80; /* element 15 of 13 */
    refuse("sign", 13, buf, 4 + 2, "a sign padding bit");
    refuse("int8", 16, buf, 19, "a short int8 payload");
    /* top-k: n too large, index out of range, not increasing, wrong size. */
    uint32_t tk[7];
    tk[0] = 3; tk[1] = 1; tk[2] = 2; tk[3] = 100;
    refuse("topk:0.5", 10, tk, 4 + 24, "a top-k index out of range");
    tk[3] = 2;
    refuse("topk:0.5", 10, tk, 4 + 24, "a repeated top-k index");
    tk[1] = 5; tk[2] = 4; tk[3] = 6;
    refuse("topk:0.5", 10, tk, 4 + 24, "decreasing top-k indices");
    tk[0] = 11;
    refuse("topk:0.5", 10, tk, 4 + 88, "more top-k elements than the vector");
    tk[0] = 2;
    refuse("topk:0.5", 10, tk, 4 + 24, "a top-k payload of the wrong size");
    tk[0] = UINT32_MAX;
    refuse("topk:0.5", 10, tk, 4 + 24, "a dense top-k payload of the wrong size");
    refuse("topk:0.5", 10, tk, 3, "a top-k payload without its header");
}
END_TEST

START_TEST(test_specs)
{
    tally_codec_spec_t s = spec_of("topk:0.01,ef=off,seed=42");
    ck_assert_str_eq(s.codec->name, "topk");
    ck_assert(fabs(s.ratio - 0.01) < 1e-12 && !s.error_feedback && s.seed == 42);
    s = spec_of("powersgd:4,cols=128");
    ck_assert(s.rank == 4 && s.cols == 128 && s.error_feedback);
    s = spec_of("none");
    ck_assert_int_eq(s.codec->kind, TALLY_CODEC_NONE);
    struct {
        const char *spec, *names;
    } bad[] = {
        {"", "empty"},
        {"zip", "\"zip\""},
        {"topk", "RATIO"},
        {"topk:0", "0 < RATIO"},
        {"topk:1.5", "\"1.5\""},
        {"topk:x", "\"x\""},
        {"fp16:3", "takes no parameter"},
        {"powersgd:0", "rank \"0\""},
        {"powersgd:99", "rank \"99\""},
        {"fp16,ef=maybe", "ef=\"maybe\""},
        {"fp16,seed=-1", "seed=\"-1\""},
        {"fp16,cols=8", "powersgd only"},
        {"fp16,speed=1", "\"speed\""},
        {"fp16,", "empty option"},
        {"fp16,ef", "KEY=VALUE"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[256] = "";
        tally_codec_spec_t out = {.rank = 77};
        ck_assert_msg(tally_codec_spec_parse(bad[i].spec, &out, why, sizeof why) ==
                          TALLY_ERR_INVALID_ARGUMENT,
                      "\"%s\" accepted", bad[i].spec);
        ck_assert_msg(strstr(why, bad[i].names), "\"%s\": message \"%s\" does not name %s",
                      bad[i].spec, why, bad[i].names);
        ck_assert_msg(out.rank == 77, "a bad spec wrote its output");
    }
}
END_TEST

/* PowerSGD on an exactly rank-2 matrix recovers it in one step with a
 * rank-2 factorisation (from a generic Q). */
START_TEST(test_powersgd_low_rank_exact)
{
    const size_t rows = 12, cols = 10, n = rows * cols;
    float x[120], q[20], p[24], back[20], y[120] = {0};
    for (size_t i = 0; i < rows; i++)
        for (size_t c = 0; c < cols; c++)
            x[i * cols + c] = (float)(i + 1) * (float)(c % 3) - 0.5f * (float)c * (float)(i % 2);
    size_t r_rows, r_cols;
    tally_powersgd_shape(n, cols, &r_rows, &r_cols);
    ck_assert(r_rows == rows && r_cols == cols);
    tally_powersgd_init_q(q, cols, 2, 5);
    tally_powersgd_project(x, n, rows, cols, q, 2, p);
    tally_powersgd_orthonormalize(p, rows, 2);
    tally_powersgd_back(x, n, rows, cols, p, 2, back);
    tally_powersgd_expand(p, back, n, cols, 2, 1.0f, y);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(y[i] - x[i]) < 1e-3f, "element %zu: %g for %g", i, y[i], x[i]);
    /* The default shape covers the count with padding. */
    tally_powersgd_shape(1009, 0, &r_rows, &r_cols);
    ck_assert(r_rows * r_cols >= 1009 && (r_rows - 1) * r_cols < 1009);
}
END_TEST

static Suite *compress_suite(void)
{
    Suite *s = suite_create("compress");
    TCase *tc = tcase_create("codecs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip_dense);
    tcase_add_test(tc, test_round_trip_topk);
    tcase_add_test(tc, test_odd_values);
    tcase_add_test(tc, test_error_feedback);
    tcase_add_test(tc, test_hostile_payloads);
    tcase_add_test(tc, test_specs);
    tcase_add_test(tc, test_powersgd_low_rank_exact);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(compress_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
