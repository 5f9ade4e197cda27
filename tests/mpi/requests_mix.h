/* requests_mix.h - the non-blocking workloads shared by test_requests.c
 * (with and without a progress thread) and test_requests_single.c
 * (MPI_THREAD_SINGLE: calls run inside tally_test and tally_wait):
 *
 * rm_many_in_flight: hundreds of calls started back to back (mixed sizes,
 * dtypes and ops, in place or not, some tally_iallreduce_multi), completed
 * by a mix of tally_test, tally_wait and tally_waitall, then the same calls
 * run blocking on fresh inputs in the same order: the bits must be equal
 * (the same size gets the same algorithm), and near an independent
 * reference.  Inputs are pseudo-random with full mantissas, so a sum
 * reordered between the two runs would show.
 *
 * rm_several_comms: calls started interleaved on three communicators (two
 * over world, one over the odd or even ranks) and completed in another
 * order, against exact expected values.
 *
 * Static functions in a header: the Makefile links one .c per MPI test. */
#ifndef REQUESTS_MIX_H
#define REQUESTS_MIX_H

#include <check.h>
#include <math.h>
#include <mpi.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "tally_test.h"

/* --- inputs --------------------------------------------------------------- */

static uint64_t rm_hash(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static int rm_is_logical(tally_op_t op)
{
    return op == TALLY_LAND || op == TALLY_LOR || op == TALLY_LXOR;
}

/* Element i of `rank`'s input to tensor `seed`.  Floats: 53 random
 * mantissa bits scaled by 2^-3 .. 2^4, so sums round and their order
 * shows in the bits (PROD: [0.5, 2), no overflow); integers: full range,
 * a third of them 0 for the logical ops. */
static void rm_element(void *dst, size_t i, tally_dtype_t dtype, tally_op_t op, int rank,
                       uint64_t seed)
{
    uint64_t h = rm_hash(rm_hash(seed * 1000003u + (uint64_t)rank) ^ i);
    if (!tt_dtype_is_float(dtype)) {
        if (rm_is_logical(op) && (h >> 60) % 3 == 0)
            h = 0;
        switch (tt_dtype_size(dtype)) {
        case 1: *(uint8_t *)dst = (uint8_t)h; break;
        case 2: *(uint16_t *)dst = (uint16_t)h; break;
        case 4: *(uint32_t *)dst = (uint32_t)h; break;
        default: *(uint64_t *)dst = h; break;
        }
        return;
    }
    double m = (double)(h >> 11) * 0x1p-53; /* [0, 1) */
    double v = op == TALLY_PROD ? 0.5 + 1.5 * m : ldexp(2 * m - 1, (int)(h & 7) - 3);
    switch (dtype) {
    case TALLY_FLOAT16: *(uint16_t *)dst = tt_float_to_half((float)v); break;
    case TALLY_BFLOAT16: *(uint16_t *)dst = tt_float_to_bf16((float)v); break;
    case TALLY_FLOAT32: *(float *)dst = (float)v; break;
    default: *(double *)dst = v; break;
    }
}

static double rm_load(const void *base, size_t i, tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_FLOAT16: return tt_half_to_float(((const uint16_t *)base)[i]);
    case TALLY_BFLOAT16: return tt_bf16_to_float(((const uint16_t *)base)[i]);
    case TALLY_FLOAT32: return ((const float *)base)[i];
    default: return ((const double *)base)[i];
    }
}

/* --- the calls ------------------------------------------------------------ */

#define RM_MAX_T 5

typedef struct rm_call {
    int multi;                     /* tally_iallreduce_multi, else tally_iallreduce */
    size_t nt;                     /* tensors (1 unless multi) */
    tally_dtype_t dtype;
    tally_op_t op;
    size_t count[RM_MAX_T];
    int in_place[RM_MAX_T];
    uint64_t seed[RM_MAX_T];
    /* [0]: the non-blocking run, [1]: the blocking one */
    void *in[2][RM_MAX_T];         /* the input; in place also the result */
    void *out[2][RM_MAX_T];        /* out of place: the result */
    uint64_t in_hash[RM_MAX_T];    /* out of place: the input must stay as it was */
    tally_request_t *req;
} rm_call_t;

static void *rm_result(const rm_call_t *c, int run, size_t t)
{
    return c->in_place[t] ? c->in[run][t] : c->out[run][t];
}

/* Call k of the mix, the same on every rank. */
static void rm_plan(rm_call_t *c, size_t k)
{
    static const tally_dtype_t dtypes[] = {TALLY_FLOAT32, TALLY_FLOAT64, TALLY_INT32,
                                           TALLY_INT64,   TALLY_FLOAT16, TALLY_BFLOAT16,
                                           TALLY_UINT8,   TALLY_INT16};
    /* SUM twice: the op whose bits depend on the order. */
    static const tally_op_t ops[] = {TALLY_SUM, TALLY_SUM, TALLY_AVG,  TALLY_MAX,
                                     TALLY_MIN, TALLY_PROD, TALLY_BXOR, TALLY_LOR};
    static const size_t small[] = {0,    1,    2,    3,    7,    16,   31,   100,
                                   255,  256,  1000, 1023, 1025, 4097, 5000, 12345};
    static const size_t parts[] = {0, 1, 7, 100, 600, 1000, 3000};
    enum { ND = sizeof dtypes / sizeof *dtypes, NO = sizeof ops / sizeof *ops };
    memset(c, 0, sizeof *c);
    uint64_t h = rm_hash(k + 0x5eed);
    c->dtype = k % 50 == 17 ? dtypes[(k / 50) % ND] : dtypes[h % ND];
    size_t o = (h >> 8) % NO;
    while (tally_op_check(ops[o], c->dtype) != TALLY_SUCCESS)
        o = (o + 1) % NO;
    c->op = ops[o];
    c->multi = k % 20 == 9;
    c->nt = c->multi ? 2 + (h >> 16) % (RM_MAX_T - 1) : 1;
    for (size_t t = 0; t < c->nt; t++) {
        uint64_t g = rm_hash(h + t);
        if (c->multi)
            c->count[t] = parts[g % (sizeof parts / sizeof *parts)];
        else if (k % 50 == 17)
            c->count[t] = 200000;
        else if (k % 25 == 4)
            c->count[t] = 65536 + k;
        else
            c->count[t] = small[g % (sizeof small / sizeof *small)];
        c->in_place[t] = (g >> 32) & 1;
        c->seed[t] = k * RM_MAX_T + t;
    }
}

static void rm_fill(rm_call_t *c, int rank)
{
    const size_t es = tt_dtype_size(c->dtype);
    for (size_t t = 0; t < c->nt; t++) {
        for (int run = 0; run < 2; run++) {
            size_t bytes = c->count[t] * es;
            c->in[run][t] = malloc(bytes ? bytes : 1);
            ck_assert_ptr_nonnull(c->in[run][t]);
            for (size_t i = 0; i < c->count[t]; i++)
                rm_element((char *)c->in[run][t] + i * es, i, c->dtype, c->op, rank,
                           c->seed[t]);
            if (!c->in_place[t]) {
                c->out[run][t] = malloc(bytes ? bytes : 1);
                ck_assert_ptr_nonnull(c->out[run][t]);
                memset(c->out[run][t], 0xa5, bytes); /* every byte must be written */
            }
        }
        c->in_hash[t] = tt_hash(c->in[0][t], c->count[t] * es);
    }
}

static void rm_free(rm_call_t *c)
{
    for (int run = 0; run < 2; run++)
        for (size_t t = 0; t < c->nt; t++) {
            free(c->in[run][t]);
            free(c->out[run][t]);
        }
}

static void rm_buffers(const rm_call_t *c, int run, tally_buffer_t *bufs)
{
    for (size_t t = 0; t < c->nt; t++)
        bufs[t] = (tally_buffer_t){c->in_place[t] ? TALLY_IN_PLACE : c->in[run][t],
                                   rm_result(c, run, t), c->count[t]};
}

static tally_status_t rm_start(rm_call_t *c, tally_comm_t *comm)
{
    if (c->multi) {
        tally_buffer_t bufs[RM_MAX_T];
        rm_buffers(c, 0, bufs);
        return tally_iallreduce_multi(bufs, c->nt, c->dtype, c->op, comm, &c->req);
    }
    return tally_iallreduce(c->in_place[0] ? TALLY_IN_PLACE : c->in[0][0], rm_result(c, 0, 0),
                            c->count[0], c->dtype, c->op, comm, &c->req);
}

static tally_status_t rm_blocking(rm_call_t *c, tally_comm_t *comm)
{
    if (c->multi) {
        tally_buffer_t bufs[RM_MAX_T];
        rm_buffers(c, 1, bufs);
        return tally_allreduce_multi(bufs, c->nt, c->dtype, c->op, comm);
    }
    return tally_allreduce(c->in_place[0] ? TALLY_IN_PLACE : c->in[1][0], rm_result(c, 1, 0),
                           c->count[0], c->dtype, c->op, comm);
}

/* --- checks --------------------------------------------------------------- */

/* The first local failure, reported through tt_all_ok at the next
 * checkpoint so that every rank leaves the test together. */
typedef struct rm_errors {
    int n;
    char first[256];
} rm_errors_t;

static void rm_fail(rm_errors_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rm_fail(rm_errors_t *e, const char *fmt, ...)
{
    if (e->n++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->first, sizeof e->first, fmt, ap);
        va_end(ap);
    }
}

static int rm_all_ok(const rm_errors_t *e, const char *what)
{
    return tt_all_ok(e->n == 0, "%s: %d failures, the first: %s", what, e->n, e->first);
}

/* Smallest spacing at 1 of a floating dtype, and of its subnormals. */
static double rm_eps(tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_FLOAT16: return 0x1p-10;
    case TALLY_BFLOAT16: return 0x1p-7;
    case TALLY_FLOAT32: return 0x1p-23;
    default: return 0x1p-52;
    }
}

static double rm_tiny(tally_dtype_t dtype)
{
    return dtype == TALLY_FLOAT16 ? 0x1p-24 : 0;
}

/* Element i of tensor t against tt_reference over every rank's input:
 * integers exactly; floats within the rounding of p - 1 operations in any
 * order (MIN and MAX exactly). */
static int rm_near_reference(const rm_call_t *c, size_t t, const void *got, size_t i, int p)
{
    const size_t es = tt_dtype_size(c->dtype);
    unsigned char all[64 * 8], ref[8];
    if (p > 64)
        return 1; /* not checked: more ranks than the buffer holds */
    for (int r = 0; r < p; r++)
        rm_element(all + (size_t)r * es, i, c->dtype, c->op, r, c->seed[t]);
    tt_reference(ref, all, 1, p, c->dtype, c->op);
    if (!tt_dtype_is_float(c->dtype) || c->op == TALLY_MIN || c->op == TALLY_MAX)
        return memcmp(ref, (const char *)got + i * es, es) == 0;
    double mag = c->op == TALLY_PROD ? 1 : 0; /* bound of the partial results */
    for (int r = 0; r < p; r++) {
        double x = fabs(rm_load(all, (size_t)r, c->dtype));
        mag = c->op == TALLY_PROD ? mag * x : mag + x;
    }
    if (c->op == TALLY_AVG)
        mag /= p;
    double tol = (p + 3) * rm_eps(c->dtype) * mag + (p + 3) * rm_tiny(c->dtype);
    double g = rm_load(got, i, c->dtype), want = rm_load(ref, 0, c->dtype);
    return fabs(g - want) <= tol;
}

/* Every result of the non-blocking run equal in its bits to the blocking
 * run's, near the reference (every element of small tensors, a sample of
 * large ones), and out-of-place inputs untouched in both runs. */
static void rm_check_results(rm_call_t *calls, size_t n, int p, rm_errors_t *e)
{
    for (size_t k = 0; k < n; k++) {
        const rm_call_t *c = &calls[k];
        const size_t es = tt_dtype_size(c->dtype);
        for (size_t t = 0; t < c->nt; t++) {
            const size_t bytes = c->count[t] * es;
            const char *a = rm_result(c, 0, t), *b = rm_result(c, 1, t);
            if (memcmp(a, b, bytes) != 0) {
                size_t i = 0;
                while (memcmp(a + i * es, b + i * es, es) == 0)
                    i++;
                rm_fail(e, "call %zu tensor %zu (%s%s %s, %zu elements, %s): started and "
                        "blocking results differ from element %zu (%.17g vs %.17g)",
                        k, t, c->multi ? "multi " : "", tally_dtype_name(c->dtype),
                        tally_op_name(c->op),
                        c->count[t], c->in_place[t] ? "in place" : "out of place", i,
                        tt_dtype_is_float(c->dtype) ? rm_load(a, i, c->dtype) : 0.0,
                        tt_dtype_is_float(c->dtype) ? rm_load(b, i, c->dtype) : 0.0);
            }
            const size_t stride = c->count[t] <= 5000 ? 1 : 97;
            for (size_t i = 0; i < c->count[t]; i += stride)
                if (!rm_near_reference(c, t, a, i, p)) {
                    rm_fail(e, "call %zu tensor %zu (%s %s, %zu elements): element %zu is "
                            "not the reduction of the inputs",
                            k, t, tally_dtype_name(c->dtype), tally_op_name(c->op),
                            c->count[t], i);
                    break;
                }
            if (!c->in_place[t])
                for (int run = 0; run < 2; run++)
                    if (tt_hash(c->in[run][t], bytes) != c->in_hash[t])
                        rm_fail(e, "call %zu tensor %zu: the %s run changed its sendbuf", k,
                                t, run ? "blocking" : "started");
        }
    }
}

/* --- completion ------------------------------------------------------------ */

static void rm_test_loop(rm_call_t *c, size_t k, rm_errors_t *e)
{
    int done = 0;
    while (!done) {
        tally_status_t st = tally_test(&c->req, &done);
        if (st != TALLY_SUCCESS) {
            rm_fail(e, "tally_test on call %zu: %s", k, tally_strerror(st));
            return;
        }
        if (!done)
            sched_yield(); /* more ranks than cores: let the progress thread run */
    }
    if (c->req)
        rm_fail(e, "call %zu: tally_test reported done but left the request", k);
}

static void rm_wait(rm_call_t *c, size_t k, rm_errors_t *e)
{
    tally_status_t st = tally_wait(&c->req);
    if (st != TALLY_SUCCESS)
        rm_fail(e, "tally_wait on call %zu: %s", k, tally_strerror(st));
    if (c->req)
        rm_fail(e, "call %zu: tally_wait left the request", k);
}

/* Calls run in the order they were started: once call `done_upto` is seen
 * complete, one tally_test on any earlier call (a sample) says done. */
static void rm_check_order(rm_call_t *calls, size_t done_upto, rm_errors_t *e)
{
    for (size_t k = 0; k < done_upto; k += 5) {
        if (!calls[k].req)
            continue;
        int done = -1;
        tally_status_t st = tally_test(&calls[k].req, &done);
        if (st != TALLY_SUCCESS || done != 1 || calls[k].req)
            rm_fail(e, "call %zu started before the completed call %zu: tally_test gives "
                    "%s, done %d", k, done_upto, tally_strerror(st), done);
    }
}

/* Completes every call: single tests from the last back (done or not,
 * by timing), a wait in the middle, test loops forward, waits backward
 * from the end, then waitall over the rest. */
static void rm_complete(rm_call_t *calls, size_t n, rm_errors_t *e)
{
    size_t highest = 0; /* 1 + the latest call seen complete */
    for (size_t k = n; k-- > 0;) {
        if ((n - 1 - k) % 37)
            continue;
        int done = -1;
        tally_status_t st = tally_test(&calls[k].req, &done);
        if (st != TALLY_SUCCESS || (done != 0 && done != 1) || (done == !!calls[k].req))
            rm_fail(e, "first tally_test on call %zu: %s, done %d, request %s", k,
                    tally_strerror(st), done, calls[k].req ? "kept" : "freed");
        if (done == 1 && k + 1 > highest)
            highest = k + 1;
    }
    rm_check_order(calls, highest, e);
    if (calls[n / 2].req)
        rm_wait(&calls[n / 2], n / 2, e);
    rm_check_order(calls, n / 2, e);
    for (size_t k = n / 2 + 1; k < 3 * n / 4; k += 3)
        if (calls[k].req)
            rm_test_loop(&calls[k], k, e);
    for (size_t k = n; k-- > 3 * n / 4;)
        if (k % 4 == 3 && calls[k].req)
            rm_wait(&calls[k], k, e);
    tally_request_t **reqs = malloc(n * sizeof *reqs);
    ck_assert_ptr_nonnull(reqs);
    for (size_t k = 0; k < n; k++)
        reqs[k] = calls[k].req; /* NULL where completed: skipped, as MPI_REQUEST_NULL */
    tally_status_t st = tally_waitall(n, reqs);
    if (st != TALLY_SUCCESS)
        rm_fail(e, "tally_waitall: %s", tally_strerror(st));
    for (size_t k = 0; k < n; k++) {
        if (reqs[k])
            rm_fail(e, "tally_waitall left request %zu", k);
        calls[k].req = NULL;
    }
    free(reqs);
}

/* The whole mix on comm: n calls started back to back, completed, then
 * run blocking, and compared. */
static void rm_many_in_flight(tally_comm_t *comm, size_t n, const char *label)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rm_call_t *calls = calloc(n, sizeof *calls);
    ck_assert_ptr_nonnull(calls);
    for (size_t k = 0; k < n; k++) {
        rm_plan(&calls[k], k);
        rm_fill(&calls[k], rank);
    }
    rm_errors_t e = {0};
    for (size_t k = 0; k < n; k++) {
        tally_status_t st = rm_start(&calls[k], comm);
        if (st != TALLY_SUCCESS || !calls[k].req)
            rm_fail(&e, "starting call %zu: %s", k, tally_strerror(st));
    }
    ck_assert_msg(rm_all_ok(&e, label), "%s: starting", label);
    rm_complete(calls, n, &e);
    ck_assert_msg(rm_all_ok(&e, label), "%s: completing", label);
    for (size_t k = 0; k < n; k++) {
        tally_status_t st = rm_blocking(&calls[k], comm);
        if (st != TALLY_SUCCESS)
            rm_fail(&e, "blocking call %zu: %s", k, tally_strerror(st));
    }
    ck_assert_msg(rm_all_ok(&e, label), "%s: blocking", label);
    rm_check_results(calls, n, size, &e);
    ck_assert_msg(rm_all_ok(&e, label), "%s: results", label);
    for (size_t k = 0; k < n; k++)
        rm_free(&calls[k]);
    free(calls);
}

/* --- several communicators ------------------------------------------------ */

/* Element i of `rank`'s input to call k on communicator c: small integers,
 * exact in every order. */
static int rm_small(int rank, size_t i, int k, int c)
{
    return (rank + 1) * (int)((i + (size_t)k + (size_t)c) % 7 + 1);
}

/* Calls started round-robin on three communicators: two over
 * MPI_Comm_dup(MPI_COMM_WORLD), one over the ranks of this rank's parity
 * (MPI_Comm_split); with a blocking call on the second in between.  They
 * complete in another order: the third's from its last back by wait, the
 * first's by test loops, the second's by waitall over every request. */
static void rm_several_comms(int threaded, const char *label)
{
    enum { NC = 3, K = 6 };
    static const size_t counts[K] = {1, 1000, 70000, 0, 33, 5000};
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm mpi[NC];
    MPI_Comm_dup(MPI_COMM_WORLD, &mpi[0]);
    MPI_Comm_dup(MPI_COMM_WORLD, &mpi[1]);
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &mpi[2]);
    setenv("TALLY_PROGRESS_THREAD", threaded ? "1" : "0", 1);
    tally_comm_t *comm[NC];
    for (int c = 0; c < NC; c++)
        ck_assert_int_eq(tally_comm_create(mpi[c], &comm[c]), TALLY_SUCCESS);
    unsetenv("TALLY_PROGRESS_THREAD");

    /* The ranks each communicator reduces over: all, or those of my parity. */
    int members[NC][2]; /* first rank, step */
    members[0][0] = members[1][0] = 0;
    members[0][1] = members[1][1] = 1;
    members[2][0] = rank % 2;
    members[2][1] = 2;

    /* Even k: int32 SUM out of place; odd k: float64 MAX in place. */
    void *in[NC][K], *out[NC][K];
    tally_request_t *req[NC][K];
    rm_errors_t e = {0};
    const size_t blocking_n = 777;
    int32_t *blocking = malloc(blocking_n * sizeof *blocking);
    ck_assert_ptr_nonnull(blocking);
    for (int k = 0; k < K; k++) {
        for (int c = 0; c < NC; c++) {
            size_t n = counts[k];
            if (k % 2 == 0) {
                int32_t *a = malloc((n ? n : 1) * sizeof *a), *b = malloc((n ? n : 1) * sizeof *b);
                ck_assert(a && b);
                for (size_t i = 0; i < n; i++) {
                    a[i] = rm_small(rank, i, k, c);
                    b[i] = -1;
                }
                in[c][k] = a;
                out[c][k] = b;
            } else {
                double *a = malloc((n ? n : 1) * sizeof *a);
                ck_assert_ptr_nonnull(a);
                for (size_t i = 0; i < n; i++)
                    a[i] = rm_small(rank, i, k, c);
                in[c][k] = NULL;
                out[c][k] = a;
            }
            tally_status_t st =
                k % 2 == 0 ? tally_iallreduce(in[c][k], out[c][k], n, TALLY_INT32, TALLY_SUM,
                                              comm[c], &req[c][k])
                           : tally_iallreduce(TALLY_IN_PLACE, out[c][k], n, TALLY_FLOAT64,
                                              TALLY_MAX, comm[c], &req[c][k]);
            if (st != TALLY_SUCCESS || !req[c][k]) {
                rm_fail(&e, "starting call %d on communicator %d: %s", k, c,
                        tally_strerror(st));
                req[c][k] = NULL;
            }
        }
        if (k == K / 2) {
            /* A blocking call on the second: after its own started calls,
             * whatever the others have in flight. */
            for (size_t i = 0; i < blocking_n; i++)
                blocking[i] = rm_small(rank, i, 99, 1);
            tally_status_t st = tally_allreduce(TALLY_IN_PLACE, blocking, blocking_n,
                                                TALLY_INT32, TALLY_SUM, comm[1]);
            if (st != TALLY_SUCCESS)
                rm_fail(&e, "blocking call on communicator 1: %s", tally_strerror(st));
            for (int j = 0; j <= k; j++) {
                int done = -1;
                if (req[1][j] && (tally_test(&req[1][j], &done) != TALLY_SUCCESS || !done))
                    rm_fail(&e, "call %d on communicator 1 not done after a later "
                            "blocking call", j);
            }
        }
    }
    ck_assert_msg(rm_all_ok(&e, label), "%s: starting", label);
    for (int k = K; k-- > 0;)
        if (req[2][k] && tally_wait(&req[2][k]) != TALLY_SUCCESS)
            rm_fail(&e, "tally_wait on call %d of communicator 2", k);
    for (int k = 0; k < K; k++) {
        int done = 0;
        while (req[0][k] && !done) {
            if (tally_test(&req[0][k], &done) != TALLY_SUCCESS) {
                rm_fail(&e, "tally_test on call %d of communicator 0", k);
                break;
            }
            if (!done)
                sched_yield();
        }
    }
    if (tally_waitall(NC * K, &req[0][0]) != TALLY_SUCCESS)
        rm_fail(&e, "tally_waitall");
    for (int c = 0; c < NC; c++)
        for (int k = 0; k < K; k++)
            if (req[c][k])
                rm_fail(&e, "request %d of communicator %d left after waitall", k, c);
    ck_assert_msg(rm_all_ok(&e, label), "%s: completing", label);

    for (size_t i = 0; i < blocking_n; i++) {
        int32_t want = 0;
        for (int r = 0; r < size; r++)
            want += rm_small(r, i, 99, 1);
        if (blocking[i] != want) {
            rm_fail(&e, "blocking call on communicator 1: element %zu is %d, not %d", i,
                    (int)blocking[i], (int)want);
            break;
        }
    }
    for (int c = 0; c < NC; c++)
        for (int k = 0; k < K; k++) {
            for (size_t i = 0; i < counts[k]; i++) {
                int32_t sum = 0;
                double max = -1;
                for (int r = members[c][0]; r < size; r += members[c][1]) {
                    sum += rm_small(r, i, k, c);
                    if (rm_small(r, i, k, c) > max)
                        max = rm_small(r, i, k, c);
                }
                int ok = k % 2 == 0 ? ((int32_t *)out[c][k])[i] == sum
                                    : ((double *)out[c][k])[i] == max;
                if (!ok) {
                    rm_fail(&e, "communicator %d call %d (%zu elements): element %zu wrong", c,
                            k, counts[k], i);
                    break;
                }
            }
            free(in[c][k]);
            free(out[c][k]);
        }
    free(blocking);
    ck_assert_msg(rm_all_ok(&e, label), "%s: results", label);
    for (int c = NC; c-- > 0;) {
        ck_assert_int_eq(tally_comm_destroy(comm[c]), TALLY_SUCCESS);
        MPI_Comm_free(&mpi[c]);
    }
}

#endif
