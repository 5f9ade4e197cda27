/* test_timeout.c - MPI tests of TALLY_TIMEOUT: the last rank skips a call;
 * the others, in it with ring (point-to-point waits), shm (the node's
 * barrier) or mpi (the MPI's allreduce, started and watched), give up at
 * the deadline with TALLY_ERR_TIMEOUT instead of waiting forever, and
 * their communicator is then broken (TALLY_ERR_COMM_BROKEN), also when
 * the skipped call repeats the one before.  Agreeing calls under a
 * deadline complete as usual.  On one rank nobody can be missing: only the
 * last part runs. */
#include <check.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size;

enum { N = 64 };

static tally_comm_t *make_comm(const char *algo)
{
    setenv("TALLY_TIMEOUT", "0.5", 1);
    setenv("TALLY_FALLBACK", "silent", 1);
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    unsetenv("TALLY_TIMEOUT");
    unsetenv("TALLY_FALLBACK");
    ck_assert_int_eq(tally_comm_set_algorithm(comm, algo), TALLY_SUCCESS);
    return comm;
}

static void skipped_call(const char *algo)
{
    if (world_size < 2)
        return;
    tally_comm_t *comm = make_comm(algo);
    float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = 1.0f;
    /* First a call every rank makes, so that the skipped one repeats it:
     * a repeat's fast path must keep the deadline. */
    ck_assert_int_eq(tally_allreduce(x, y, N, TALLY_FLOAT32, TALLY_SUM, comm), TALLY_SUCCESS);
    const int skipper = world_rank == world_size - 1;
    tally_status_t st = TALLY_ERR_TIMEOUT, later = TALLY_ERR_COMM_BROKEN;
    if (!skipper) {
        const double t0 = MPI_Wtime();
        st = tally_allreduce(x, y, N, TALLY_FLOAT32, TALLY_SUM, comm);
        const double waited = MPI_Wtime() - t0;
        later = tally_allreduce(x, y, N, TALLY_FLOAT32, TALLY_SUM, comm);
        ck_assert_msg(waited >= 0.5, "%s gave up after %.3f s, before the deadline", algo, waited);
    }
    MPI_Barrier(MPI_COMM_WORLD); /* the skipper joins here */
    ck_assert_msg(tt_all_ok(st == TALLY_ERR_TIMEOUT && later == TALLY_ERR_COMM_BROKEN,
                            "%s: %s, then %s", algo, tally_strerror(st), tally_strerror(later)),
                  "a skipped call times out");
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}

START_TEST(test_ring_times_out) { skipped_call("ring"); }
END_TEST

START_TEST(test_shm_times_out) { skipped_call("shm"); }
END_TEST

START_TEST(test_mpi_times_out) { skipped_call("mpi"); }
END_TEST

/* Under a deadline, calls that every rank makes complete as usual. */
START_TEST(test_agreeing_calls_complete)
{
    const char *algos[] = {"ring", "shm", "mpi", "auto"};
    for (size_t a = 0; a < 4; a++) {
        tally_comm_t *comm = make_comm(algos[a]);
        float x[N], y[N];
        for (int i = 0; i < N; i++)
            x[i] = (float)world_rank;
        for (int k = 0; k < 20; k++)
            ck_assert_int_eq(tally_allreduce(x, y, N, TALLY_FLOAT32, TALLY_SUM, comm),
                             TALLY_SUCCESS);
        ck_assert(tt_all_ok(y[N - 1] == (float)(world_size * (world_size - 1) / 2), "%s",
                            algos[a]));
        ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
    }
}
END_TEST

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    Suite *s = suite_create("timeout");
    TCase *tc = tcase_create("timeout");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, test_agreeing_calls_complete);
    tcase_add_test(tc, test_ring_times_out);
    tcase_add_test(tc, test_shm_times_out);
    tcase_add_test(tc, test_mpi_times_out);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
