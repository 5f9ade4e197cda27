/* test_calls.c - two calls in flight on one communicator cannot cross (run
 * under mpirun at 1..5 ranks; it reaches the call object, so it links the
 * library's internal archive).
 *
 * Call A is built and sends its own message around the ring (rank r to
 * r + 1) through the transport's non-blocking primitive; then call B, a
 * whole ring allreduce on the same communicator, runs between the same
 * neighbours; only then does A post its receive.  If the two calls shared
 * a tag, B's first receive from r - 1 would match A's message, sent
 * first, and both results would be wrong.  A's scratch, filled with a pattern, must survive B too.
 * Every assertion is agreed across ranks so no rank is left in a
 * collective.  A call that fails partway breaks its communicator. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/call.h"
#include "core/comm.h"
#include "core/entry.h"
#include "algo/algo.h"
#include "core/scratch.h"
#include "tally.h"
#include "tally_test.h"
#include "transport/p2p.h"

static int world_rank, world_size;

START_TEST(test_two_calls_do_not_cross)
{
    enum { N = 4099 };
    tally_comm_t *comm = NULL;
    ck_assert(tt_all_ok(tally_comm_create(MPI_COMM_WORLD, &comm) == TALLY_SUCCESS, "create"));
    ck_assert(tt_all_ok(tally_comm_set_algorithm(comm, "ring") == TALLY_SUCCESS, "ring"));
    const int next = (world_rank + 1) % world_size;
    const int prev = (world_rank + world_size - 1) % world_size;

    /* Call A: its own buffers, tag and scratch. */
    int32_t *a_send = malloc(N * sizeof *a_send), *a_recv = malloc(N * sizeof *a_recv);
    int32_t *b_buf = malloc(N * sizeof *b_buf);
    ck_assert(a_send && a_recv && b_buf);
    for (int i = 0; i < N; i++) {
        a_send[i] = 1000000 * (world_rank + 1) + i; /* what A's peer must receive */
        a_recv[i] = -1;
        b_buf[i] = world_rank + 1 + i;             /* B sums these */
    }
    tally_call_t a;
    ck_assert(tt_all_ok(tally_call_init(&a, comm, a_send, a_recv, N, TALLY_INT32, TALLY_SUM) ==
                            TALLY_SUCCESS,
                        "init A"));
    unsigned char *a_scratch = tally_call_scratch(&a, 1 << 16);
    ck_assert_ptr_nonnull(a_scratch);
    memset(a_scratch, 0xa5, 1 << 16);
    MPI_Request req[2];
    ck_assert(tt_all_ok(tally_p2p_isend(&a, a.mpi, 0, a_send, N * sizeof *a_send, next, &req[1]) ==
                            TALLY_SUCCESS,
                        "send A"));

    /* Call B runs whole while A's messages wait. */
    tally_call_t b;
    ck_assert(tt_all_ok(tally_call_init(&b, comm, TALLY_IN_PLACE, b_buf, N, TALLY_INT32,
                                        TALLY_SUM) == TALLY_SUCCESS,
                        "init B"));
    ck_assert(tt_all_ok(tally_call_execute(&b) == TALLY_SUCCESS, "run B"));
    int b_ok = 1;
    const int64_t ranks_sum = (int64_t)world_size * (world_size + 1) / 2;
    for (int i = 0; i < N; i++)
        b_ok &= b_buf[i] == (int32_t)(ranks_sum + (int64_t)world_size * i);
    ck_assert(tt_all_ok(b_ok, "B's sum is wrong: a message of A reached B"));

    /* A completes: exactly what its peer sent, and its scratch untouched. */
    ck_assert(tt_all_ok(tally_p2p_irecv(&a, a.mpi, 0, a_recv, N * sizeof *a_recv, prev, &req[0]) ==
                                TALLY_SUCCESS &&
                            tally_p2p_waitall(&a, req, 2) == TALLY_SUCCESS,
                        "receive A"));
    int a_ok = 1;
    for (int i = 0; i < N; i++)
        a_ok &= a_recv[i] == 1000000 * (prev + 1) + i;
    ck_assert(tt_all_ok(a_ok, "A received something other than its peer's message"));
    int scratch_ok = 1;
    for (int i = 0; i < 1 << 16; i++)
        scratch_ok &= a_scratch[i] == 0xa5;
    ck_assert(tt_all_ok(scratch_ok, "B wrote into A's scratch"));
    tally_scratch_give(a.scratch);
    ck_assert(tt_all_ok(a.tag != b.tag && b.seq == a.seq + 1, "tags %d and %d, seq %llu %llu",
                        a.tag, b.tag, (unsigned long long)a.seq, (unsigned long long)b.seq));

    free(a_send);
    free(a_recv);
    free(b_buf);
    ck_assert(tt_all_ok(tally_comm_destroy(comm) == TALLY_SUCCESS, "destroy"));
}
END_TEST

START_TEST(test_tags_cycle_per_communicator)
{
    /* Every rank numbers calls alike; tags stay in their range. */
    tally_comm_t *comm = NULL;
    ck_assert(tt_all_ok(tally_comm_create(MPI_COMM_WORLD, &comm) == TALLY_SUCCESS, "create"));
    int ok = 1;
    float x = 1.0f;
    for (int i = 0; i < 10; i++) {
        tally_call_t c;
        ok &= tally_call_init(&c, comm, TALLY_IN_PLACE, &x, 1, TALLY_FLOAT32, TALLY_SUM) ==
              TALLY_SUCCESS;
        ok &= c.seq == (uint64_t)i && c.tag >= TALLY_TAG_BASE &&
              c.tag + TALLY_TAG_LANES <= TALLY_TAG_BASE + TALLY_TAG_SPAN * TALLY_TAG_LANES &&
              c.tag + TALLY_TAG_LANES <= 32767;
        ok &= tally_call_execute(&c) == TALLY_SUCCESS;
    }
    int64_t seq = (int64_t)comm->next_seq, lo = seq, hi = seq;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    ck_assert(tt_all_ok(ok && lo == hi && seq == 10, "sequence numbers differ or tags out of range"));
    ck_assert(tt_all_ok(tally_comm_destroy(comm) == TALLY_SUCCESS, "destroy"));
}
END_TEST

/* A call that fails partway, as one whose ranks disagreed on the count
 * does: it has sent a message that no receive will ever match (Open MPI
 * cannot cancel it) and reports an MPI error. */
static tally_status_t fail_midway(tally_call_t *call)
{
    if (call->size > 1) {
        MPI_Request req;
        PMPI_Isend(call->sendbuf, (int)(call->count * call->elem_size), MPI_BYTE,
                   (call->rank + 1) % call->size, call->tag, call->mpi, &req);
        PMPI_Request_free(&req);
    }
    return TALLY_ERR_MPI;
}

static const tally_algo_t failing = {
    .name = "failing",
    .summary = "sends a message and fails",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, 0, ""},
    .run = fail_midway,
};

/* After a call fails partway the communicator is broken: every later call
 * on it fails with TALLY_ERR_COMM_BROKEN on every rank and touches nothing
 * (before, the next correct call could return success with wrong data on
 * one rank and hang on another); destroying it still works, and a new
 * communicator serves calls again. */
START_TEST(test_failed_call_breaks_communicator)
{
    enum { N = 1000 };
    tally_comm_t *comm = NULL;
    ck_assert(tt_all_ok(tally_comm_create(MPI_COMM_WORLD, &comm) == TALLY_SUCCESS, "create"));
    float *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    for (int i = 0; i < N; i++)
        in[i] = (float)(world_rank + i % 5);
    ck_assert(tt_all_ok(tally_allreduce(in, out, N, TALLY_FLOAT32, TALLY_SUM, comm) ==
                            TALLY_SUCCESS,
                        "a call before the failure"));
    tally_call_t c;
    ck_assert(tt_all_ok(tally_call_init(&c, comm, in, out, N, TALLY_FLOAT32, TALLY_SUM) ==
                            TALLY_SUCCESS,
                        "init"));
    c.algo = &failing;
    ck_assert(tt_all_ok(tally_call_execute(&c) == TALLY_ERR_MPI, "the failing call"));
    for (int i = 0; i < N; i++)
        out[i] = -1.0f;
    tally_status_t st[4] = {
        tally_allreduce(in, out, N, TALLY_FLOAT32, TALLY_SUM, comm),
        tally_allreduce(TALLY_IN_PLACE, out, 1, TALLY_FLOAT32, TALLY_MAX, comm),
        tally_allreduce_multi(&(tally_buffer_t){in, out, N}, 1, TALLY_FLOAT32, TALLY_SUM, comm),
        TALLY_ERR_COMM_BROKEN,
    };
    tally_request_t *req = NULL;
    if (tally_iallreduce(in, out, N, TALLY_FLOAT32, TALLY_SUM, comm, &req) == TALLY_SUCCESS)
        st[3] = tally_wait(&req);
    int ok = 1;
    for (int k = 0; k < 4; k++)
        ok &= st[k] == TALLY_ERR_COMM_BROKEN;
    for (int i = 0; i < N; i++)
        ok &= out[i] == -1.0f;
    ck_assert(tt_all_ok(ok, "a call after the failure: %s %s %s %s, or recvbuf touched",
                        tally_strerror(st[0]), tally_strerror(st[1]), tally_strerror(st[2]),
                        tally_strerror(st[3])));
    ck_assert(tt_all_ok(tally_comm_destroy(comm) == TALLY_SUCCESS, "destroy"));
    /* A fresh communicator is clean (the stale message is on the old one's
     * private duplicate). */
    ck_assert(tt_all_ok(tally_comm_create(MPI_COMM_WORLD, &comm) == TALLY_SUCCESS, "create"));
    ck_assert(tt_all_ok(tally_allreduce(in, out, N, TALLY_FLOAT32, TALLY_SUM, comm) ==
                            TALLY_SUCCESS,
                        "a new communicator"));
    for (int i = 0; i < N; i++) {
        float want = 0;
        for (int r = 0; r < world_size; r++)
            want += (float)(r + i % 5);
        ok &= out[i] == want;
    }
    ck_assert(tt_all_ok(ok, "the new communicator's result"));
    ck_assert(tt_all_ok(tally_comm_destroy(comm) == TALLY_SUCCESS, "destroy"));
    free(out);
    free(in);
}
END_TEST

static Suite *calls_suite(void)
{
    Suite *s = suite_create("calls");
    TCase *tc = tcase_create("calls");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_two_calls_do_not_cross);
    tcase_add_test(tc, test_tags_cycle_per_communicator);
    tcase_add_test(tc, test_failed_call_breaks_communicator);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    SRunner *sr = srunner_create(calls_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
