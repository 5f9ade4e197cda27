/* test_check.c - MPI tests of TALLY_CHECK=1: erroneous calls whose ranks
 * disagree (count, count 0 on one rank, dtype, op, in place or not, one
 * rank failing alone on mixed memory or on its argument checks) fail on
 * every rank with TALLY_ERR_ARGS_MISMATCH (the
 * failing rank with its own status) before any data moves, instead of
 * hanging or returning wrong data; agreeing calls still give the right
 * results, and the communicator stays usable after a refused call.  Each
 * mismatch comes from the last rank, so every rank count from 2 up
 * exercises it; on 1 rank there is nothing to disagree with. */
#include <check.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size;

enum { N = 1000 };

static tally_comm_t *make_comm(void)
{
    setenv("TALLY_CHECK", "1", 1);
    setenv("TALLY_DEVICE", "emulated", 1);
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    unsetenv("TALLY_CHECK");
    unsetenv("TALLY_DEVICE");
    return comm;
}

/* An agreeing call, checked for the right sums. */
static void agreeing_call(tally_comm_t *comm)
{
    float in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = (float)(world_rank + i % 3);
    ck_assert_int_eq(tally_allreduce(in, out, N, TALLY_FLOAT32, TALLY_SUM, comm), TALLY_SUCCESS);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        float want = 0;
        for (int r = 0; r < world_size; r++)
            want += (float)(r + i % 3);
        ok &= out[i] == want;
    }
    ck_assert(tt_all_ok(ok, "an agreeing call"));
}

START_TEST(test_mismatches_are_reported)
{
    tally_comm_t *comm = make_comm();
    const int odd = world_size > 1 && world_rank == world_size - 1;
    const tally_status_t want = world_size > 1 ? TALLY_ERR_ARGS_MISMATCH : TALLY_SUCCESS;
    int32_t in[N + 1], out[N + 1], untouched[N + 1];
    for (int i = 0; i <= N; i++)
        in[i] = i;
    agreeing_call(comm);
    for (int kind = 0; kind < 6; kind++) {
        memset(out, 0x5a, sizeof out);
        memcpy(untouched, out, sizeof out);
        tally_status_t st = TALLY_SUCCESS;
        switch (kind) {
        case 0: /* count */
            st = tally_allreduce(in, out, odd ? N + 1 : N, TALLY_INT32, TALLY_SUM, comm);
            break;
        case 1: /* dtype of the same size */
            st = tally_allreduce(in, out, N, odd ? TALLY_FLOAT32 : TALLY_INT32, TALLY_MAX, comm);
            break;
        case 2: /* op */
            st = tally_allreduce(in, out, N, TALLY_INT32, odd ? TALLY_MAX : TALLY_SUM, comm);
            break;
        case 3: /* in place on one rank only */
            memcpy(out, in, sizeof in);
            memcpy(untouched, out, sizeof out);
            st = tally_allreduce(odd ? TALLY_IN_PLACE : in, out, N, TALLY_INT32, TALLY_SUM, comm);
            break;
        case 4: /* count 0 on one rank: it would return at once, the others wait */
            st = tally_allreduce(in, out, odd ? 0 : N, TALLY_INT32, TALLY_SUM, comm);
            break;
        case 5: /* refused by one rank's own argument checks */
            st = tally_allreduce(in, odd ? NULL : out, N, TALLY_INT32, TALLY_SUM, comm);
            break;
        }
        const tally_status_t expect = kind == 5 && odd ? TALLY_ERR_NULL_BUFFER : want;
        ck_assert_msg(tt_all_ok(st == expect, "mismatch %d: %s", kind, tally_strerror(st)),
                      "mismatch reported");
        if (world_size > 1)
            ck_assert_msg(tt_all_ok(memcmp(out, untouched, sizeof out) == 0,
                                    "mismatch %d: recvbuf touched", kind),
                          "nothing moved");
        agreeing_call(comm); /* still usable */
    }
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

/* Calls of count 0 on every rank agree: success, and the next call too. */
START_TEST(test_count_zero_agrees)
{
    tally_comm_t *comm = make_comm();
    float in[1] = {1.0f}, out[1] = {0.0f};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tally_allreduce(in, out, 0, TALLY_FLOAT32, TALLY_SUM, comm),
                         TALLY_SUCCESS);
    ck_assert(out[0] == 0.0f);
    agreeing_call(comm);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

/* One rank fails on its own (device sendbuf, host recvbuf): every rank
 * fails instead of waiting for it. */
START_TEST(test_local_failure_is_shared)
{
    tally_comm_t *comm = make_comm();
    const int odd = world_rank == world_size - 1;
    float host[N], out[N];
    for (int i = 0; i < N; i++)
        host[i] = 1.0f;
    void *dev = NULL;
    ck_assert_int_eq(tally_mem_alloc(comm, TALLY_MEM_DEVICE, sizeof host, &dev), TALLY_SUCCESS);
    ck_assert_int_eq(tally_mem_copy(comm, dev, host, sizeof host), TALLY_SUCCESS);
    tally_status_t st = tally_allreduce(odd ? dev : host, odd ? host : out, N, TALLY_FLOAT32,
                                        TALLY_SUM, comm);
    ck_assert_msg(tt_all_ok(odd ? st == TALLY_ERR_UNSUPPORTED
                                : st == (world_size > 1 ? TALLY_ERR_ARGS_MISMATCH : TALLY_SUCCESS),
                            "%s", tally_strerror(st)),
                  "a rank failing alone");
    ck_assert_int_eq(tally_mem_free(comm, dev), TALLY_SUCCESS);
    agreeing_call(comm);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    Suite *s = suite_create("check");
    TCase *tc = tcase_create("check");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, test_mismatches_are_reported);
    tcase_add_test(tc, test_local_failure_is_shared);
    tcase_add_test(tc, test_count_zero_agrees);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
