/* test_allreduce.c - MPI integration tests, run under mpirun at several
 * rank counts (tests/run-tests.sh).  Check runs in CK_NOFORK mode (forking
 * after MPI_Init is unsafe), so every assertion is first agreed on by all
 * ranks: either all ranks fail a test together or none does, and no rank is
 * left waiting in a collective. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "tally_test.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

static int world_rank, world_size;

/* A communicator with point-to-point segments of `segment` bytes, `depth`
 * in flight, and shared-memory chunks of `chunk` bytes. */
static tally_comm_t *make_comm_chunked(const char *segment, const char *depth,
                                       const char *chunk)
{
    setenv("TALLY_SEGMENT_SIZE", segment, 1);
    setenv("TALLY_PIPELINE_DEPTH", depth, 1);
    setenv("TALLY_SHM_CHUNK", chunk, 1);
    setenv("TALLY_FALLBACK", "silent", 1);
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    unsetenv("TALLY_SEGMENT_SIZE");
    unsetenv("TALLY_PIPELINE_DEPTH");
    unsetenv("TALLY_SHM_CHUNK");
    unsetenv("TALLY_FALLBACK");
    ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS, "tally_comm_create: %s", tally_strerror(st)),
                  "tally_comm_create failed");
    return comm;
}

static tally_comm_t *make_comm(const char *segment, const char *depth)
{
    return make_comm_chunked(segment, depth, "4K");
}

/* The shape, found independently of tally: nodes from the MPI's own split
 * by shared memory, and the most ranks on one of them. */
static void world_nodes(int *nodes, int *max_per_node)
{
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node);
    int local_rank, local_size;
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    int leader = local_rank == 0;
    MPI_Allreduce(&leader, nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&local_size, max_per_node, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Comm_free(&node);
}

/* Whether `algo` can run on MPI_COMM_WORLD's shape at all, by its
 * documented restrictions (tally_allreduce(3)). */
static int fits_world(const char *algo)
{
    int nodes, max_per_node;
    world_nodes(&nodes, &max_per_node);
    if (strcmp(algo, "shm") == 0)
        return nodes == 1;
    if (strcmp(algo, "hier") == 0 || strcmp(algo, "hier_leader") == 0)
        return nodes >= 2 && max_per_node >= 2;
    return 1;
}

/* A buffer with guard bytes on both sides. */
typedef struct guarded {
    unsigned char *base;
    void *data;
    size_t bytes;
} guarded_t;

static guarded_t guarded_alloc(size_t bytes)
{
    guarded_t g = {.bytes = bytes};
    g.base = malloc(bytes + 2 * GUARD);
    ck_assert_ptr_nonnull(g.base);
    memset(g.base, GUARD_BYTE, GUARD);
    memset(g.base + GUARD + bytes, GUARD_BYTE, GUARD);
    g.data = g.base + GUARD;
    return g;
}

static int guards_intact(const guarded_t *g)
{
    for (size_t i = 0; i < GUARD; i++)
        if (g->base[i] != GUARD_BYTE || g->base[GUARD + g->bytes + i] != GUARD_BYTE)
            return 0;
    return 1;
}

/* One call checked every way the issue asks: the reference result from
 * MPI_Allgather + a local reduction, identical bits on every rank, the send
 * buffer unchanged, no byte written outside recvbuf. */
static int check_one(tally_comm_t *comm, const char *algo, size_t count,
                     tally_dtype_t dtype, tally_op_t op, int in_place)
{
    const size_t es = tt_dtype_size(dtype), bytes = count * es;
    const int p = world_size;
    guarded_t recv = guarded_alloc(bytes);
    void *send = malloc(bytes + 1), *send_copy = malloc(bytes + 1);
    void *all = malloc(bytes * (size_t)p + 1), *expect = malloc(bytes + 1);
    ck_assert(send && send_copy && all && expect);
    uint32_t seed = (uint32_t)(count * 31 + dtype * 7 + op);
    tt_fill(send, count, dtype, op, world_rank, seed);
    memcpy(send_copy, send, bytes);
    MPI_Allgather(send, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    tt_reference(expect, all, count, p, dtype, op);

    if (in_place)
        memcpy(recv.data, send, bytes);
    else
        memset(recv.data, 0x5A, bytes);
    tally_status_t st = tally_allreduce(in_place ? TALLY_IN_PLACE : send, recv.data, count,
                                        dtype, op, comm);
    int ok = st == TALLY_SUCCESS;
    const char *what = ok ? "" : tally_strerror(st);
    if (ok && memcmp(recv.data, expect, bytes) != 0) {
        ok = 0;
        what = "result differs from the reference";
        for (size_t i = 0; i < count; i++) {
            if (memcmp((char *)recv.data + i * es, (char *)expect + i * es, es) != 0) {
                fprintf(stderr, "rank %d: first difference at element %zu of %zu\n",
                        world_rank, i, count);
                break;
            }
        }
    }
    if (ok && !guards_intact(&recv)) {
        ok = 0;
        what = "bytes written outside recvbuf";
    }
    if (ok && !in_place && memcmp(send, send_copy, bytes) != 0) {
        ok = 0;
        what = "sendbuf was modified";
    }
    /* Identical bits everywhere: compare every rank's hash with rank 0's. */
    uint64_t h = tt_hash(recv.data, bytes), h0 = h;
    MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (ok && h != h0) {
        ok = 0;
        what = "result differs from rank 0's";
    }
    int agreed = tt_all_ok(ok, "%s %s %s count=%zu %s: %s", algo, tally_dtype_name(dtype),
                        tally_op_name(op), count, in_place ? "in-place" : "out-of-place", what);
    free(recv.base);
    free(send);
    free(send_copy);
    free(all);
    free(expect);
    return agreed;
}

/* Whether tally actually runs `algo` for this dtype and op (a forced
 * algorithm that cannot serve falls back silently in these tests). */
static int serves(tally_comm_t *comm, const char *algo, tally_dtype_t dtype, tally_op_t op)
{
    const char *chosen = NULL;
    ck_assert_int_eq(tally_comm_get_algorithm(comm, 1000, dtype, op, &chosen), TALLY_SUCCESS);
    return strcmp(chosen, algo) == 0;
}

/* Whether the 2^20 + 3 count runs for this pair (it dominates the run
 * time).  It exercises the pipelined multi-segment paths, which depend on
 * the element size rather than the op, so it runs for SUM on every dtype and
 * for every op on int16, uint64, float16 and float64; every other count runs
 * for every pair. */
static int big_count_pair(tally_dtype_t dtype, tally_op_t op)
{
    return op == TALLY_SUM || dtype == TALLY_INT16 || dtype == TALLY_UINT64 ||
           dtype == TALLY_FLOAT16 || dtype == TALLY_FLOAT64;
}

/* Every dtype x op x awkward count x in-place, for one algorithm.  A pair
 * the forced algorithm does not serve falls back to tally's own choice
 * (which the "auto" run covers), so it runs the small counts only. */
static void run_matrix(const char *algo)
{
    const int p = world_size;
    const size_t counts[] = {0, 1, (size_t)p - 1, (size_t)p, (size_t)p + 1, 99991,
                             ((size_t)1 << 20) + 3};
    /* Segments tiny for the tiny counts and still many per step for the
     * large ones, so the multi-segment paths run at every size. */
    tally_comm_t *tiny = make_comm_chunked("24", "3", "4K");
    tally_comm_t *small = make_comm_chunked("4K", "2", "4K");
    tally_comm_t *medium = make_comm_chunked("64K", "4", "64K");
    tally_comm_t *comms[] = {tiny, small, medium};
    for (int c = 0; c < 3; c++)
        ck_assert_int_eq(tally_comm_set_algorithm(comms[c], algo), TALLY_SUCCESS);

    /* TALLY_TEST_MAX_COUNT bounds the counts where calls are slow (the
     * emulated cluster's network); the bound is printed, never silent. */
    const char *max_text = getenv("TALLY_TEST_MAX_COUNT");
    const size_t max_count = max_text ? strtoull(max_text, NULL, 10) : SIZE_MAX;
    if (max_text && world_rank == 0)
        printf("NOTE: %s: counts above TALLY_TEST_MAX_COUNT=%zu left out\n", algo, max_count);
    int failures = 0, served = 0;
    for (int d = 0; d < TT_DTYPES; d++) {
        for (int o = 0; o < TT_OPS; o++) {
            tally_dtype_t dtype = (tally_dtype_t)d;
            tally_op_t op = (tally_op_t)o;
            if (!tt_op_valid_for(op, dtype))
                continue;
            const int serving = serves(tiny, algo, dtype, op);
            served += serving;
            for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
                if (counts[k] >= 1000 && !serving && strcmp(algo, "auto") != 0)
                    continue;
                if ((counts[k] >= 200000 && !big_count_pair(dtype, op)) || counts[k] > max_count)
                    continue;
                tally_comm_t *comm = counts[k] < 1000 ? tiny : counts[k] < 200000 ? small
                                                                                  : medium;
                for (int in_place = 0; in_place < 2; in_place++)
                    failures += !check_one(comm, algo, counts[k], dtype, op, in_place);
            }
        }
    }
    for (int c = 0; c < 3; c++)
        ck_assert_int_eq(tally_comm_destroy(comms[c]), TALLY_SUCCESS);
    ck_assert_msg(failures == 0, "%s: %d failing combinations", algo, failures);
    if (strcmp(algo, "auto") == 0)
        return;
    if (fits_world(algo)) {
        ck_assert_msg(served > 0, "%s served no dtype/op at all", algo);
    } else {
        /* The restriction holds: tally's own choice ran every call. */
        ck_assert_msg(served == 0, "%s served calls on a shape it does not fit", algo);
        if (world_rank == 0)
            printf("NOTE: %s does not fit %d ranks here (its shape restriction); every "
                   "call above ran tally's fallback choice\n",
                   algo, world_size);
    }
}

START_TEST(test_ring) { run_matrix("ring"); }
END_TEST

START_TEST(test_recursive_doubling) { run_matrix("recursive_doubling"); }
END_TEST

START_TEST(test_rabenseifner) { run_matrix("rabenseifner"); }
END_TEST

START_TEST(test_mpi) { run_matrix("mpi"); }
END_TEST

START_TEST(test_auto) { run_matrix("auto"); }
END_TEST

START_TEST(test_shm) { run_matrix("shm"); }
END_TEST

START_TEST(test_hier) { run_matrix("hier"); }
END_TEST

START_TEST(test_hier_leader) { run_matrix("hier_leader"); }
END_TEST

/* The algorithms with a test_NAME above (run_matrix): each has its own
 * test so that a run can pick it (CK_RUN_TEST, CK_RUN_CASE). */
static const char *const matrix_tested[] = {"ring", "recursive_doubling", "rabenseifner",
                                            "mpi", "shm", "hier", "hier_leader"};

/* The device algorithms' matrix is test_device.c's (on device buffers). */
static const char *const device_tested[] = {"nccl", "ipc", "staged"};

/* A new algorithm in the registry fails here until it has its matrix. */
START_TEST(test_every_algorithm_has_matrix)
{
    for (int i = 0; i < tally_algorithm_count(); i++) {
        const char *name = tally_algorithm_name(i);
        int found = 0;
        for (size_t k = 0; k < sizeof device_tested / sizeof device_tested[0]; k++)
            found |= strcmp(device_tested[k], name) == 0;
        for (size_t k = 0; k < sizeof matrix_tested / sizeof matrix_tested[0]; k++)
            found |= strcmp(matrix_tested[k], name) == 0;
        ck_assert_msg(found, "%s has no run_matrix test in test_allreduce.c", name);
    }
}
END_TEST

/* The mpi algorithm serves exactly what its restrictions promise. */
START_TEST(test_mpi_coverage)
{
    tally_comm_t *comm = make_comm("64K", "4");
    ck_assert_int_eq(tally_comm_set_algorithm(comm, "mpi"), TALLY_SUCCESS);
    for (int d = 0; d < TT_DTYPES; d++) {
        for (int o = 0; o < TT_OPS; o++) {
            tally_dtype_t dtype = (tally_dtype_t)d;
            tally_op_t op = (tally_op_t)o;
            if (!tt_op_valid_for(op, dtype))
                continue;
            /* 8- and 16-bit integers: Open MPI 4.1 saturates their sums. */
            int wide = dtype != TALLY_INT8 && dtype != TALLY_UINT8 &&
                       dtype != TALLY_INT16 && dtype != TALLY_UINT16 &&
                       dtype != TALLY_FLOAT16 && dtype != TALLY_BFLOAT16;
            int minmax_float = tt_dtype_is_float(dtype) && (op == TALLY_MIN || op == TALLY_MAX);
            ck_assert_msg(serves(comm, "mpi", dtype, op) == (wide && !minmax_float),
                          "mpi on %s %s", tally_dtype_name(dtype), tally_op_name(op));
        }
    }
    tally_comm_destroy(comm);
}
END_TEST

/* Random (inexact) floats: every rank still holds the same bits, and the
 * result is within the rounding that the summation order explains. */
START_TEST(test_random_floats_identical)
{
    tally_comm_t *comm = make_comm("1K", "3");
    const size_t count = 50021;
    float *send = malloc(count * sizeof *send), *recv = malloc(count * sizeof *recv);
    float *all = malloc(count * sizeof *all * (size_t)world_size);
    srand(1234u + (unsigned)world_rank);
    for (size_t i = 0; i < count; i++)
        send[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    MPI_Allgather(send, (int)count, MPI_FLOAT, all, (int)count, MPI_FLOAT, MPI_COMM_WORLD);
    /* Every algorithm tally has; one that does not fit the shape runs
     * tally's choice (TALLY_FALLBACK=silent). */
    for (int a = 0; a < tally_algorithm_count(); a++) {
        const char *algo = tally_algorithm_name(a);
        ck_assert_int_eq(tally_comm_set_algorithm(comm, algo), TALLY_SUCCESS);
        ck_assert_int_eq(tally_allreduce(send, recv, count, TALLY_FLOAT32, TALLY_SUM, comm),
                         TALLY_SUCCESS);
        double worst = 0;
        for (size_t i = 0; i < count; i++) {
            double exact = 0, magnitude = 0;
            for (int r = 0; r < world_size; r++) {
                exact += all[(size_t)r * count + i];
                magnitude += fabs(all[(size_t)r * count + i]);
            }
            double err = fabs(recv[i] - exact) / (magnitude * world_size * 6e-8 + 1e-30);
            worst = err > worst ? err : worst;
        }
        uint64_t h = tt_hash(recv, count * sizeof *recv), h0 = h;
        MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        ck_assert_msg(tt_all_ok(h == h0, "%s: bits differ from rank 0", algo),
                      "%s: ranks disagree", algo);
        ck_assert_msg(tt_all_ok(worst <= 1.0, "%s: error %.3g units", algo, worst),
                      "%s: error beyond the summation bound", algo);
    }
    free(send);
    free(recv);
    free(all);
    tally_comm_destroy(comm);
}
END_TEST

/* Back-to-back calls in place, each reading what the last one wrote: a
 * rank that races into the next call must not overwrite data a slower
 * rank is still reading (the shared-memory window's sets). */
START_TEST(test_back_to_back_in_place)
{
    const char *algos[] = {"shm", "hier", "hier_leader", "ring"};
    tally_comm_t *comm = make_comm_chunked("1K", "2", "4K");
    enum { COUNT = 3001, CALLS = 150 };
    int32_t *buf = malloc(COUNT * sizeof *buf);
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        ck_assert_int_eq(tally_comm_set_algorithm(comm, algos[a]), TALLY_SUCCESS);
        long bad = 0;
        for (int call = 0; call < CALLS; call++) {
            for (int i = 0; i < COUNT; i++)
                buf[i] = call * 7 + i % 13 + world_rank;
            ck_assert_int_eq(tally_allreduce(TALLY_IN_PLACE, buf, COUNT, TALLY_INT32, TALLY_SUM,
                                             comm),
                             TALLY_SUCCESS);
            const int32_t ranks = world_size * (world_size - 1) / 2;
            for (int i = 0; i < COUNT; i++)
                bad += buf[i] != (call * 7 + i % 13) * world_size + ranks;
        }
        ck_assert_msg(tt_all_ok(bad == 0, "%s: %ld wrong elements over %d calls", algos[a], bad,
                                (int)CALLS),
                      "%s: back-to-back calls in place", algos[a]);
    }
    free(buf);
    tally_comm_destroy(comm);
}
END_TEST

/* NaN propagates through SUM/MIN/MAX in every algorithm, identically (mpi
 * does not serve floating MIN/MAX, and runs tally's choice there). */
START_TEST(test_nan_propagates)
{
    const tally_op_t ops[] = {TALLY_SUM, TALLY_MIN, TALLY_MAX};
    tally_comm_t *comm = make_comm("16", "2");
    double send[9], recv[9];
    for (int a = 0; a < tally_algorithm_count(); a++) {
        const char *algo = tally_algorithm_name(a);
        for (size_t o = 0; o < 3; o++) {
            for (int i = 0; i < 9; i++)
                send[i] = (world_rank == world_size - 1 && i % 3 == 0) ? NAN : i + world_rank;
            ck_assert_int_eq(tally_comm_set_algorithm(comm, algo), TALLY_SUCCESS);
            ck_assert_int_eq(tally_allreduce(send, recv, 9, TALLY_FLOAT64, ops[o], comm),
                             TALLY_SUCCESS);
            int ok = 1;
            for (int i = 0; i < 9; i++)
                ok &= (i % 3 == 0) ? isnan(recv[i]) : !isnan(recv[i]);
            ck_assert_msg(tt_all_ok(ok, "%s %s: NaN lost or invented", algo,
                                 tally_op_name(ops[o])),
                          "NaN handling");
        }
    }
    tally_comm_destroy(comm);
}
END_TEST

/* Each bad argument has its own status, and recvbuf stays untouched. */
START_TEST(test_bad_input)
{
    setenv("TALLY_LOG_LEVEL", "none", 1); /* the messages are expected here */
    tally_comm_t *comm = make_comm("256K", "4");
    int send[4] = {1, 2, 3, 4}, recv[4] = {7, 7, 7, 7};
    const int untouched[4] = {7, 7, 7, 7};
    ck_assert_int_eq(tally_allreduce(NULL, recv, 4, TALLY_INT32, TALLY_SUM, comm),
                     TALLY_ERR_NULL_BUFFER);
    ck_assert_int_eq(tally_allreduce(send, NULL, 4, TALLY_INT32, TALLY_SUM, comm),
                     TALLY_ERR_NULL_BUFFER);
    ck_assert_int_eq(tally_allreduce(send, recv, 4, (tally_dtype_t)99, TALLY_SUM, comm),
                     TALLY_ERR_INVALID_DTYPE);
    ck_assert_int_eq(tally_allreduce(send, recv, 4, (tally_dtype_t)-1, TALLY_SUM, comm),
                     TALLY_ERR_INVALID_DTYPE);
    ck_assert_int_eq(tally_allreduce(send, recv, 4, TALLY_INT32, (tally_op_t)42, comm),
                     TALLY_ERR_INVALID_OP);
    ck_assert_int_eq(tally_allreduce(send, recv, 4, TALLY_INT32, TALLY_AVG, comm),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_int_eq(tally_allreduce(send, recv, 4, TALLY_UINT16, TALLY_AVG, comm),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_int_eq(tally_allreduce(send, recv, 4, TALLY_FLOAT32, TALLY_BXOR, comm),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_int_eq(tally_allreduce(send, recv, 2, TALLY_FLOAT64, TALLY_LAND, comm),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_int_eq(tally_allreduce(send, recv, 8, TALLY_FLOAT16, TALLY_BOR, comm),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    const char *none = NULL;
    ck_assert_int_eq(tally_comm_get_algorithm(comm, 4, TALLY_BFLOAT16, TALLY_LXOR, &none),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_ptr_null(none);
    ck_assert_int_eq(tally_allreduce(recv, recv, 4, TALLY_INT32, TALLY_SUM, comm),
                     TALLY_ERR_ALIASED_BUFFERS);
    ck_assert_int_eq(tally_allreduce(recv + 1, recv, 3, TALLY_INT32, TALLY_SUM, comm),
                     TALLY_ERR_ALIASED_BUFFERS);
    ck_assert_int_eq(tally_allreduce(send, recv, 4, TALLY_INT32, TALLY_SUM, NULL),
                     TALLY_ERR_NULL_COMM);
    ck_assert_int_eq(tally_allreduce(send, recv, SIZE_MAX / 2, TALLY_INT32, TALLY_SUM, comm),
                     TALLY_ERR_COUNT_TOO_LARGE);
    /* Byte counts that fit a size_t but not a ptrdiff_t: the overlap check
     * would wrap (SIZE_MAX / 4 floats once passed and crashed). */
    ck_assert_int_eq(tally_allreduce(send, recv, SIZE_MAX / 4, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_ERR_COUNT_TOO_LARGE);
    ck_assert_int_eq(tally_allreduce(send, recv, (size_t)PTRDIFF_MAX / 4 + 1, TALLY_FLOAT32,
                                     TALLY_SUM, comm),
                     TALLY_ERR_COUNT_TOO_LARGE);
    ck_assert_int_eq(tally_allreduce(send, (void *)TALLY_IN_PLACE, 4, TALLY_INT32, TALLY_SUM,
                                     comm),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_comm_set_algorithm(comm, "bogus"), TALLY_ERR_UNKNOWN_ALGORITHM);
    /* One rank alone with a bad name: every rank fails, and every rank keeps
     * its previous choice. */
    ck_assert_int_eq(tally_comm_set_algorithm(comm, "ring"), TALLY_SUCCESS);
    ck_assert_int_eq(tally_comm_set_algorithm(comm, world_rank == 0 ? "bogus" : "mpi"),
                     TALLY_ERR_UNKNOWN_ALGORITHM);
    if (world_size > 1)
        ck_assert_int_eq(tally_comm_set_algorithm(comm, world_rank == 0 ? "ring" : "mpi"),
                         TALLY_ERR_CONFIG_MISMATCH);
    const char *chosen = NULL;
    ck_assert_int_eq(tally_comm_get_algorithm(comm, 4, TALLY_INT32, TALLY_SUM, &chosen),
                     TALLY_SUCCESS);
    ck_assert_str_eq(chosen, "ring");
    ck_assert_mem_eq(recv, untouched, sizeof recv);
    /* count 0 with NULL buffers is a valid no-op. */
    ck_assert_int_eq(tally_allreduce(NULL, NULL, 0, TALLY_INT32, TALLY_SUM, comm),
                     TALLY_SUCCESS);
    tally_comm_t *out = (tally_comm_t *)&comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_NULL, &out), TALLY_ERR_NULL_COMM);
    ck_assert_ptr_eq(out, (tally_comm_t *)&comm);
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, NULL), TALLY_ERR_INVALID_ARGUMENT);
    unsetenv("TALLY_LOG_LEVEL");
    tally_comm_destroy(comm);
}
END_TEST

/* Bad configuration fails tally_comm_create on every rank alike, even when
 * only one rank holds it. */
static tally_status_t create_with(const char *var, const char *value, int only_rank)
{
    setenv("TALLY_LOG_LEVEL", "none", 1);
    if (only_rank < 0 || only_rank == world_rank)
        setenv(var, value, 1);
    tally_comm_t *comm = (tally_comm_t *)&world_rank;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    unsetenv(var);
    unsetenv("TALLY_LOG_LEVEL");
    if (st == TALLY_SUCCESS)
        tally_comm_destroy(comm);
    else
        ck_assert_ptr_eq(comm, (tally_comm_t *)&world_rank); /* output untouched */
    return st;
}

START_TEST(test_bad_config)
{
    ck_assert_int_eq(create_with("TALLY_ALGO", "bogus", -1), TALLY_ERR_UNKNOWN_ALGORITHM);
    ck_assert_int_eq(create_with("TALLY_ALGO", "Ring!", -1), TALLY_ERR_INVALID_CONFIG);
    ck_assert_int_eq(create_with("TALLY_SEGMENT_SIZE", "-5", -1), TALLY_ERR_INVALID_CONFIG);
    ck_assert_int_eq(create_with("TALLY_SEGMENT_SIZE", "99999999999999999999", -1),
                     TALLY_ERR_INVALID_CONFIG);
    ck_assert_int_eq(create_with("TALLY_PIPELINE_DEPTH", "0", -1), TALLY_ERR_INVALID_CONFIG);
    ck_assert_int_eq(create_with("TALLY_FALLBACK", "maybe", -1), TALLY_ERR_INVALID_CONFIG);
    ck_assert_int_eq(create_with("TALLY_ALGO", "ring", -1), TALLY_SUCCESS);
    /* One rank alone with a bad value: every rank fails. */
    tally_status_t st = create_with("TALLY_SEGMENT_SIZE", "12Q", 0);
    ck_assert_int_eq(st, TALLY_ERR_INVALID_CONFIG);
    if (world_size > 1) {
        st = create_with("TALLY_ALGO", "rabenseifner", world_size - 1);
        ck_assert_int_eq(st, TALLY_ERR_CONFIG_MISMATCH);
        /* Ranks that differed here would run different collectives: the
         * mpi algorithm non-blocking under a timeout and blocking without,
         * fused tensors in other groups. */
        ck_assert_int_eq(create_with("TALLY_TIMEOUT", "5", world_size - 1),
                         TALLY_ERR_CONFIG_MISMATCH);
        ck_assert_int_eq(create_with("TALLY_FUSION_BYTES", "1K", world_size - 1),
                         TALLY_ERR_CONFIG_MISMATCH);
        ck_assert_int_eq(create_with("TALLY_DEVICE", "none", world_size - 1),
                         TALLY_ERR_CONFIG_MISMATCH);
    }
}
END_TEST

/* A forced algorithm that cannot serve a call follows TALLY_FALLBACK. */
START_TEST(test_fallback_policy)
{
    uint16_t send[5], recv[5] = {9, 9, 9, 9, 9}, expect[5];
    for (int i = 0; i < 5; i++) {
        send[i] = tt_float_to_half((float)(i + world_rank));
        expect[i] = tt_float_to_half((float)(world_size * i + world_size * (world_size - 1) / 2));
    }
    const uint16_t untouched[5] = {9, 9, 9, 9, 9};
    setenv("TALLY_ALGO", "mpi", 1);
    setenv("TALLY_FALLBACK", "error", 1);
    setenv("TALLY_LOG_LEVEL", "none", 1);
    tally_comm_t *comm = NULL;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    ck_assert_int_eq(tally_allreduce(send, recv, 5, TALLY_FLOAT16, TALLY_SUM, comm),
                     TALLY_ERR_UNSUPPORTED);
    ck_assert_mem_eq(recv, untouched, sizeof recv);
    tally_comm_destroy(comm);
    setenv("TALLY_FALLBACK", "silent", 1);
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    ck_assert_int_eq(tally_allreduce(send, recv, 5, TALLY_FLOAT16, TALLY_SUM, comm),
                     TALLY_SUCCESS);
    ck_assert_mem_eq(recv, expect, sizeof recv);
    tally_comm_destroy(comm);
    unsetenv("TALLY_ALGO");
    unsetenv("TALLY_FALLBACK");
    unsetenv("TALLY_LOG_LEVEL");
}
END_TEST

/* Counts above INT_MAX (run only when TALLY_TEST_BIG=1: 4 GiB a rank). */
START_TEST(test_count_above_int_max)
{
    const size_t count = (size_t)INT_MAX + 4099;
    const char *algos[] = {"ring", "rabenseifner", "recursive_doubling"};
    tally_comm_t *comm = make_comm("1M", "4");
    uint8_t *send = malloc(count), *recv = malloc(count);
    ck_assert(send && recv);
    for (size_t i = 0; i < count; i++)
        send[i] = (uint8_t)(i * 31 + (size_t)world_rank * 7);
    for (size_t a = 0; a < 3; a++) {
        ck_assert_int_eq(tally_comm_set_algorithm(comm, algos[a]), TALLY_SUCCESS);
        ck_assert_int_eq(tally_allreduce(send, recv, count, TALLY_UINT8, TALLY_SUM, comm),
                         TALLY_SUCCESS);
        size_t bad = 0;
        const uint8_t rank_sum = (uint8_t)(7 * world_size * (world_size - 1) / 2);
        for (size_t i = 0; i < count; i++)
            bad += recv[i] != (uint8_t)(i * 31 * (size_t)world_size + rank_sum);
        ck_assert_msg(tt_all_ok(bad == 0, "%s: %zu wrong bytes", algos[a], bad),
                      "%s above INT_MAX", algos[a]);
    }
    free(send);
    free(recv);
    tally_comm_destroy(comm);
}
END_TEST

static Suite *allreduce_suite(void)
{
    Suite *s = suite_create("allreduce");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_fallback_policy);
    tcase_add_test(tc, test_mpi_coverage);
    tcase_add_test(tc, test_every_algorithm_has_matrix);
    suite_add_tcase(s, tc);
    TCase *algos = tcase_create("algorithms");
    tcase_set_timeout(algos, 0);
    tcase_add_test(algos, test_ring);
    tcase_add_test(algos, test_recursive_doubling);
    tcase_add_test(algos, test_rabenseifner);
    tcase_add_test(algos, test_mpi);
    tcase_add_test(algos, test_auto);
    suite_add_tcase(s, algos);
    /* The shared-memory and hierarchical algorithms, alone so that the
     * emulated-cluster runs can pick them (CK_RUN_CASE=hierarchy). */
    TCase *hierarchy = tcase_create("hierarchy");
    tcase_set_timeout(hierarchy, 0);
    tcase_add_test(hierarchy, test_shm);
    tcase_add_test(hierarchy, test_hier);
    tcase_add_test(hierarchy, test_hier_leader);
    tcase_add_test(hierarchy, test_random_floats_identical);
    tcase_add_test(hierarchy, test_nan_propagates);
    tcase_add_test(hierarchy, test_back_to_back_in_place);
    suite_add_tcase(s, hierarchy);
    if (getenv("TALLY_TEST_BIG")) {
        TCase *big = tcase_create("big");
        tcase_set_timeout(big, 0);
        tcase_add_test(big, test_count_above_int_max);
        suite_add_tcase(s, big);
    }
    return s;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    SRunner *sr = srunner_create(allreduce_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    /* Only rank 0 reports; failures are agreed on by all ranks anyway. */
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
