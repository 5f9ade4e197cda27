/* test_compress.c - MPI tests of tally_compressor_* and
 * tally_allreduce_compressed: every codec, floating dtypes, awkward counts,
 * in place or not; results bit-identical on every rank and within the
 * codec's error of the exact sum; error feedback driving the mean of many
 * calls to the exact sum; on one node nothing compressed (exact, no bytes
 * counted); bad arguments refused with nothing created.  Runs at np 1-5 on
 * one node and on the emulated clusters (tests/cluster/), where the
 * streamed exchange (two nodes), the two-stage path (three or more) and
 * the compressed whole call (one rank per node) run. */
#include <check.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size;

static const char *const specs[] = {"fp16",      "bf16",     "int8",       "sign",
                                    "topk:0.01", "topk:0.6", "powersgd:2", "int8,ef=off"};
/* Relative error bound of one call against the exact sum (before error
 * feedback): the codec's own, times the stages it goes through. */
static const double one_call_bound[] = {2e-3, 2e-2, 0.1, 1.5, 1.5, 1.0, 1.5, 0.1};

/* Values of a gradient: smooth, different on every rank, a few large. */
static double value(int rank, size_t i)
{
    return sin(0.1 * (double)i + 0.7 * rank) * ((i % 97) == 0 ? 20.0 : 1.0);
}

static void fill(void *buf, size_t count, tally_dtype_t dtype, int rank)
{
    for (size_t i = 0; i < count; i++) {
        double v = value(rank, i);
        switch (dtype) {
        case TALLY_FLOAT64: ((double *)buf)[i] = v; break;
        case TALLY_FLOAT16: ((uint16_t *)buf)[i] = tt_float_to_half((float)v); break;
        case TALLY_BFLOAT16: ((uint16_t *)buf)[i] = tt_float_to_bf16((float)v); break;
        default: ((float *)buf)[i] = (float)v; break;
        }
    }
}

static double get(const void *buf, size_t i, tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_FLOAT64: return ((const double *)buf)[i];
    case TALLY_FLOAT16: return tt_half_to_float(((const uint16_t *)buf)[i]);
    case TALLY_BFLOAT16: return tt_bf16_to_float(((const uint16_t *)buf)[i]);
    default: return ((const float *)buf)[i];
    }
}

/* The same bits on every rank. */
static int identical(const void *buf, size_t bytes)
{
    uint64_t h = tt_hash(buf, bytes), lo, hi;
    MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

/* Relative L2 error of buf against the exact mean or sum. */
static double rel_error(const void *buf, size_t count, tally_dtype_t dtype, tally_op_t op,
                        double scale)
{
    double err = 0, norm = 0;
    for (size_t i = 0; i < count; i++) {
        double exact = 0;
        for (int r = 0; r < world_size; r++)
            exact += value(r, i);
        if (op == TALLY_AVG)
            exact /= world_size;
        double d = get(buf, i, dtype) / scale - exact;
        err += d * d;
        norm += exact * exact;
    }
    return norm > 0 ? sqrt(err / norm) : sqrt(err);
}

/* One call of every codec x dtype x count x placement. */
START_TEST(test_codecs_identical)
{
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    const tally_dtype_t dtypes[] = {TALLY_FLOAT32, TALLY_FLOAT64, TALLY_FLOAT16};
    const size_t counts[] = {1, (size_t)world_size + 1, 1009, 99991};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++)
        for (size_t d = 0; d < 3; d++)
            for (size_t c = 0; c < 4; c++)
                for (int in_place = 0; in_place < 2; in_place++) {
                    const tally_dtype_t dt = dtypes[d];
                    if (dt != TALLY_FLOAT32 && (c == 1 || in_place)) /* fewer, for time */
                        continue;
                    const size_t n = counts[c], es = tt_dtype_size(dt);
                    void *send = malloc(n * es), *recv = malloc(n * es);
                    ck_assert(send && recv);
                    fill(send, n, dt, world_rank);
                    memset(recv, 0x5a, n * es);
                    if (in_place)
                        memcpy(recv, send, n * es);
                    tally_compressor_t *z;
                    ck_assert_int_eq(tally_compressor_create(comm, specs[k], n, dt, &z),
                                     TALLY_SUCCESS);
                    const tally_op_t op = c % 2 ? TALLY_AVG : TALLY_SUM;
                    tally_status_t st = tally_allreduce_compressed(
                        in_place ? TALLY_IN_PLACE : send, recv, n, dt, op, z);
                    ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS, "%s: %s", specs[k],
                                            tally_strerror(st)),
                                  "%s failed", specs[k]);
                    ck_assert_msg(identical(recv, n * es),
                                  "%s, %s, %zu elements%s: ranks hold different results",
                                  specs[k], tally_dtype_name(dt), n, in_place ? ", in place" : "");
                    /* A 16-bit dtype adds its own rounding to the codec's. */
                    double bound = one_call_bound[k] + (dt == TALLY_FLOAT16 ? 2e-3 : 0.0);
                    double e = rel_error(recv, n, dt, op, 1.0);
                    ck_assert_msg(tt_all_ok(e <= bound, "%s, %s, %zu: error %g > %g", specs[k],
                                            tally_dtype_name(dt), n, e, bound),
                                  "%s: too far from the exact result", specs[k]);
                    size_t wire, plain;
                    ck_assert_int_eq(tally_compressor_bytes(z, &wire, &plain), TALLY_SUCCESS);
                    int nodes_one = 0;
                    {
                        /* One node: nothing is compressed, the result is exact. */
                        MPI_Comm node;
                        int node_size;
                        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
                                            MPI_INFO_NULL, &node);
                        MPI_Comm_size(node, &node_size);
                        MPI_Comm_free(&node);
                        nodes_one = node_size == world_size;
                    }
                    if (nodes_one)
                        ck_assert_msg(wire == 0 && plain == 0,
                                      "one node: %zu bytes counted as compressed", wire);
                    tally_compressor_destroy(z);
                    free(send);
                    free(recv);
                }
    tally_comm_destroy(comm);
}
END_TEST

/* Error feedback: the same gradient T times; the mean of the results
 * approaches the exact sum as 1/T once the residual has settled (here: 200
 * calls beat one by 4x for int8 and top-k; sign, whose residual settles
 * slowly on this spiky gradient, by 1.6x), where compression happens; exact
 * where it does not. */
START_TEST(test_error_feedback)
{
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    const size_t n = 20000;
    float *g = malloc(n * sizeof *g), *r = malloc(n * sizeof *r);
    double *sum = calloc(n, sizeof *sum);
    ck_assert(g && r && sum);
    const char *ef_specs[] = {"int8", "sign", "topk:0.05"};
    const double gain[] = {4.0, 1.6, 4.0};
    for (size_t k = 0; k < 3; k++) {
        tally_compressor_t *z;
        ck_assert_int_eq(tally_compressor_create(comm, ef_specs[k], n, TALLY_FLOAT32, &z),
                         TALLY_SUCCESS);
        memset(sum, 0, n * sizeof *sum);
        double first = 0;
        const int T = 200;
        for (int t = 0; t < T; t++) {
            fill(g, n, TALLY_FLOAT32, world_rank);
            ck_assert_int_eq(tally_allreduce_compressed(g, r, n, TALLY_FLOAT32, TALLY_SUM, z),
                             TALLY_SUCCESS);
            for (size_t i = 0; i < n; i++)
                sum[i] += r[i];
            if (t == 0)
                first = rel_error(r, n, TALLY_FLOAT32, TALLY_SUM, 1.0);
        }
        float *mean = malloc(n * sizeof *mean);
        for (size_t i = 0; i < n; i++)
            mean[i] = (float)(sum[i] / T);
        double last = rel_error(mean, n, TALLY_FLOAT32, TALLY_SUM, 1.0);
        ck_assert_msg(identical(mean, n * sizeof *mean), "%s: means differ between ranks",
                      ef_specs[k]);
        ck_assert_msg(tt_all_ok(first < 1e-6 || last < first / gain[k],
                                "%s: error of one call %g, of the mean of %d calls %g",
                                ef_specs[k], first, T, last),
                      "%s: error feedback does not converge", ef_specs[k]);
        free(mean);
        tally_compressor_destroy(z);
    }
    free(g);
    free(r);
    free(sum);
    tally_comm_destroy(comm);
}
END_TEST

/* Fused through one compressor: each tensor at its place in the
 * compressor's tensor; with a small fusion buffer some tensors are packed
 * and some go alone.  Identical bits, close to the exact sums, and error
 * feedback per tensor (the mean of many calls approaches the exact sums). */
START_TEST(test_multi_compressed)
{
    setenv("TALLY_FUSION_BYTES", "16K", 1);
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    unsetenv("TALLY_FUSION_BYTES");
    enum { N = 4, T = 60 };
    const size_t counts[N] = {1000, 3, 5000, 20000};
    size_t total = 0;
    for (int i = 0; i < N; i++)
        total += counts[i];
    tally_compressor_t *z;
    ck_assert_int_eq(tally_compressor_create(comm, "int8", total, TALLY_FLOAT32, &z),
                     TALLY_SUCCESS);
    float *in[N], *out[N];
    double *sum[N];
    tally_buffer_t bufs[N];
    for (int i = 0; i < N; i++) {
        in[i] = malloc(counts[i] * sizeof(float));
        out[i] = malloc(counts[i] * sizeof(float));
        sum[i] = calloc(counts[i], sizeof(double));
        bufs[i] = (tally_buffer_t){in[i], out[i], counts[i]};
    }
    double first = 0, err = 0, norm = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++)
            fill(in[i], counts[i], TALLY_FLOAT32, world_rank);
        ck_assert_int_eq(tally_allreduce_multi_compressed(bufs, N, TALLY_FLOAT32, TALLY_SUM, z),
                         TALLY_SUCCESS);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(identical(out[i], counts[i] * sizeof(float)),
                          "tensor %d differs between ranks", i);
            for (size_t e = 0; e < counts[i]; e++)
                sum[i][e] += out[i][e];
            if (t == 0)
                first = fmax(first, rel_error(out[i], counts[i], TALLY_FLOAT32, TALLY_SUM, 1.0));
        }
    }
    for (int i = 0; i < N; i++) {
        for (size_t e = 0; e < counts[i]; e++) {
            double exact = 0;
            for (int r = 0; r < world_size; r++)
                exact += value(r, e);
            err += (sum[i][e] / T - exact) * (sum[i][e] / T - exact);
            norm += exact * exact;
        }
        free(in[i]);
        free(out[i]);
        free(sum[i]);
    }
    const double last = sqrt(err / norm);
    ck_assert_msg(tt_all_ok(first <= 0.1, "one fused call: error %g", first), "fused error");
    ck_assert_msg(tt_all_ok(first < 1e-6 || last < first / 4,
                            "fused error feedback: %g after one call, %g over %d", first, last, T),
                  "fused error feedback");
    /* The tensors must add up to the compressor's count. */
    ck_assert_int_eq(tally_allreduce_multi_compressed(bufs, N - 1, TALLY_FLOAT32, TALLY_SUM, z),
                     TALLY_ERR_INVALID_ARGUMENT);
    tally_compressor_destroy(z);
    tally_comm_destroy(comm);
}
END_TEST

START_TEST(test_bad_arguments)
{
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    tally_compressor_t *z = (tally_compressor_t *)0x1;
    const char *bad[] = {"zip", "topk", "topk:2", "fp16:1", "powersgd:0", "int8,ef=maybe", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(tally_compressor_create(comm, bad[i], 10, TALLY_FLOAT32, &z),
                         TALLY_ERR_INVALID_ARGUMENT);
        ck_assert_msg(z == (tally_compressor_t *)0x1, "a bad spec wrote *out");
    }
    ck_assert_int_eq(tally_compressor_create(comm, NULL, 10, TALLY_FLOAT32, &z),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_compressor_create(comm, "fp16", 10, TALLY_INT32, &z),
                     TALLY_ERR_UNSUPPORTED);
    ck_assert_int_eq(tally_compressor_create(NULL, "fp16", 10, TALLY_FLOAT32, &z),
                     TALLY_ERR_NULL_COMM);
    /* Different specs on different ranks: refused on all. */
    if (world_size > 1)
        ck_assert_int_eq(tally_compressor_create(comm, world_rank ? "int8" : "fp16", 10,
                                                 TALLY_FLOAT32, &z),
                         TALLY_ERR_CONFIG_MISMATCH);
    ck_assert(z == (tally_compressor_t *)0x1);

    float a[10] = {0}, b[10];
    ck_assert_int_eq(tally_compressor_create(comm, "int8", 10, TALLY_FLOAT32, &z), TALLY_SUCCESS);
    ck_assert_int_eq(tally_allreduce_compressed(a, b, 10, TALLY_FLOAT32, TALLY_MAX, z),
                     TALLY_ERR_UNSUPPORTED);
    ck_assert_int_eq(tally_allreduce_compressed(a, b, 9, TALLY_FLOAT32, TALLY_SUM, z),
                     TALLY_ERR_INVALID_ARGUMENT);
    double da[10] = {0}, db[10];
    ck_assert_int_eq(tally_allreduce_compressed(da, db, 10, TALLY_FLOAT64, TALLY_SUM, z),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_allreduce_compressed(a, a, 10, TALLY_FLOAT32, TALLY_SUM, z),
                     TALLY_ERR_ALIASED_BUFFERS);
    ck_assert_int_eq(tally_allreduce_compressed(a, b, 10, TALLY_FLOAT32, TALLY_SUM, NULL),
                     TALLY_ERR_INVALID_ARGUMENT);
    size_t w, u;
    ck_assert_int_eq(tally_compressor_bytes(z, NULL, &u), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_compressor_bytes(z, &w, &u), TALLY_SUCCESS);
    ck_assert(w == 0 && u == 0);
    ck_assert_int_eq(tally_compressor_destroy(z), TALLY_SUCCESS);
    ck_assert_int_eq(tally_compressor_destroy(NULL), TALLY_SUCCESS);
    tally_comm_destroy(comm);
}
END_TEST

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    Suite *s = suite_create("compress");
    TCase *tc = tcase_create("compressed");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_codecs_identical);
    tcase_add_test(tc, test_error_feedback);
    tcase_add_test(tc, test_multi_compressed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
