/* test_requests_single.c - MPI tests of the non-blocking calls under
 * MPI_THREAD_SINGLE, where tally starts no progress thread (even with
 * TALLY_PROGRESS_THREAD=1) and started calls run inside tally_test and
 * tally_wait: no thread appears and nothing runs until then; each
 * tally_test makes progress; a blocking call and a wait run the calls
 * started before them; 300 mixed calls in flight bit-equal to the same
 * calls blocking, and calls on three communicators completed in another
 * order (requests_mix.h); compressed and multi calls started together. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "requests_mix.h"
#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size, provided;

static tally_comm_t *make_comm(void)
{
    /* Asked for, and not granted: the MPI does not allow threads. */
    setenv("TALLY_PROGRESS_THREAD", "1", 1);
    setenv("TALLY_FUSION_BYTES", "4K", 1); /* small: packing and going alone both run */
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    unsetenv("TALLY_PROGRESS_THREAD");
    unsetenv("TALLY_FUSION_BYTES");
    return comm;
}

/* Threads of this process, -1 if /proc cannot tell. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* n elements of call k: the exact sums of rm_small over every rank. */
static float *make_input(size_t n, int k)
{
    float *b = malloc((n ? n : 1) * sizeof *b);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (float)rm_small(world_rank, i, k, 0);
    return b;
}

static int is_sum(const float *b, size_t n, int k)
{
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (int r = 0; r < world_size; r++)
            s += (float)rm_small(r, i, k, 0);
        if (b[i] != s)
            return 0;
    }
    return 1;
}

START_TEST(test_many_in_flight)
{
    tally_comm_t *comm = make_comm();
    rm_many_in_flight(comm, 300, "many in flight, MPI_THREAD_SINGLE");
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

/* No thread is made, a started call waits for tally_test, and every
 * tally_test runs at least one queued call, so a test loop on the last of
 * K calls ends within K tries. */
START_TEST(test_runs_inside_test)
{
    tally_comm_t *comm = make_comm();
    enum { K = 4 };
    const size_t n[K] = {10, 3000, 100000, 1};
    float *in[K], *out[K];
    tally_request_t *req[K];
    int before = thread_count();
    for (int k = 0; k < K; k++) {
        in[k] = make_input(n[k], k);
        out[k] = malloc(n[k] * sizeof(float));
        ck_assert_ptr_nonnull(out[k]);
        memset(out[k], 0xff, n[k] * sizeof(float)); /* NaNs: never a sum */
        ck_assert_int_eq(tally_iallreduce(in[k], out[k], n[k], TALLY_FLOAT32, TALLY_SUM, comm,
                                          &req[k]),
                         TALLY_SUCCESS);
    }
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    int after = thread_count();
    ck_assert_msg(tt_all_ok(before < 0 || after == before,
                            "%d threads before starting calls, %d after", before, after),
                  "a thread started without MPI_THREAD_MULTIPLE");
    /* Reading a started call's buffer is safe here only because nothing
     * may run it: no thread, no test or wait yet. */
    int untouched = 1;
    for (int k = 0; k < K; k++)
        for (size_t i = 0; i < n[k]; i++)
            untouched &= isnan(out[k][i]);
    ck_assert_msg(tt_all_ok(untouched, "a started call ran before any tally_test or tally_wait"),
                  "ran early");
    int tries = 0, done = 0;
    while (!done) {
        ck_assert_int_eq(tally_test(&req[K - 1], &done), TALLY_SUCCESS);
        tries++;
        if (tries > K)
            break;
    }
    ck_assert_msg(tt_all_ok(done, "the last of %d calls not done after %d tally_test", K, tries),
                  "no progress in tally_test");
    ck_assert_ptr_null(req[K - 1]);
    /* The calls started before it ran first: done at the first test. */
    for (int k = 0; k < K - 1; k++) {
        done = 0;
        ck_assert_int_eq(tally_test(&req[k], &done), TALLY_SUCCESS);
        ck_assert_msg(tt_all_ok(done == 1, "call %d not done after a later one", k), "order");
        ck_assert_ptr_null(req[k]);
    }
    for (int k = 0; k < K; k++) {
        ck_assert_msg(tt_all_ok(is_sum(out[k], n[k], k), "call %d of %zu elements wrong", k,
                                n[k]),
                      "results");
        free(in[k]);
        free(out[k]);
    }
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

/* A blocking call, and a wait on a later request, run the started calls
 * queued before them. */
START_TEST(test_blocking_and_wait_run_the_queue)
{
    tally_comm_t *comm = make_comm();
    enum { K = 3 };
    const size_t n = 2000;
    float *x[2 * K];
    tally_request_t *req[2 * K];
    for (int k = 0; k < K; k++) {
        x[k] = make_input(n, k);
        ck_assert_int_eq(tally_iallreduce(TALLY_IN_PLACE, x[k], n, TALLY_FLOAT32, TALLY_SUM,
                                          comm, &req[k]),
                         TALLY_SUCCESS);
    }
    float *b = make_input(n, 9);
    ck_assert_int_eq(tally_allreduce(TALLY_IN_PLACE, b, n, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_SUCCESS);
    ck_assert_msg(tt_all_ok(is_sum(b, n, 9), "blocking call after started ones"), "blocking");
    for (int k = 0; k < K; k++) {
        int done = 0;
        ck_assert_int_eq(tally_test(&req[k], &done), TALLY_SUCCESS);
        ck_assert_msg(tt_all_ok(done == 1, "call %d not done after a later blocking call", k),
                      "blocking drains");
    }
    for (int k = K; k < 2 * K; k++) {
        x[k] = make_input(n, k);
        ck_assert_int_eq(tally_iallreduce(TALLY_IN_PLACE, x[k], n, TALLY_FLOAT32, TALLY_SUM,
                                          comm, &req[k]),
                         TALLY_SUCCESS);
    }
    ck_assert_int_eq(tally_wait(&req[2 * K - 1]), TALLY_SUCCESS);
    ck_assert_ptr_null(req[2 * K - 1]);
    for (int k = K; k < 2 * K - 1; k++) {
        int done = 0;
        ck_assert_int_eq(tally_test(&req[k], &done), TALLY_SUCCESS);
        ck_assert_msg(tt_all_ok(done == 1, "call %d not done after waiting for a later one", k),
                      "wait runs the queue");
    }
    for (int k = 0; k < 2 * K; k++) {
        ck_assert_msg(tt_all_ok(is_sum(x[k], n, k), "call %d wrong", k), "results");
        free(x[k]);
    }
    free(b);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

START_TEST(test_several_comms)
{
    rm_several_comms(1, "several communicators, MPI_THREAD_SINGLE");
}
END_TEST

/* A compressed call and a multi call in one queue, completed by waitall. */
START_TEST(test_compressed_and_multi)
{
    tally_comm_t *comm = make_comm();
    const size_t n = 4096;
    tally_compressor_t *z;
    ck_assert_int_eq(tally_compressor_create(comm, "fp16", n, TALLY_FLOAT32, &z), TALLY_SUCCESS);
    float *g = make_input(n, 0), *r = malloc(n * sizeof *r);
    ck_assert_ptr_nonnull(r);
    enum { T = 4 };
    const size_t counts[T] = {100, 2000, 0, 700};
    float *t[T];
    tally_buffer_t bufs[T];
    for (int i = 0; i < T; i++) {
        t[i] = make_input(counts[i], i + 1);
        bufs[i] = (tally_buffer_t){TALLY_IN_PLACE, t[i], counts[i]};
    }
    tally_request_t *req[2];
    ck_assert_int_eq(tally_iallreduce_compressed(g, r, n, TALLY_FLOAT32, TALLY_SUM, z, &req[0]),
                     TALLY_SUCCESS);
    ck_assert_int_eq(tally_iallreduce_multi(bufs, T, TALLY_FLOAT32, TALLY_SUM, comm, &req[1]),
                     TALLY_SUCCESS);
    ck_assert_int_eq(tally_waitall(2, req), TALLY_SUCCESS);
    ck_assert_ptr_null(req[0]);
    ck_assert_ptr_null(req[1]);
    /* Small integers are exact in fp16, and one node compresses nothing. */
    ck_assert_msg(tt_all_ok(is_sum(r, n, 0), "iallreduce_compressed"), "compressed");
    for (int i = 0; i < T; i++) {
        ck_assert_msg(tt_all_ok(is_sum(t[i], counts[i], i + 1), "multi tensor %d", i), "multi");
        free(t[i]);
    }
    free(g);
    free(r);
    ck_assert_int_eq(tally_compressor_destroy(z), TALLY_SUCCESS);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

int main(int argc, char **argv)
{
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (world_rank == 0 && provided == MPI_THREAD_MULTIPLE)
        printf("NOTE: asked for MPI_THREAD_SINGLE, the MPI grants MPI_THREAD_MULTIPLE: tally "
               "makes a progress thread and the no-thread checks are skipped\n");
    Suite *s = suite_create("requests_single");
    TCase *tc = tcase_create("requests_single");
    tcase_set_timeout(tc, 0);
    if (provided != MPI_THREAD_MULTIPLE)
        tcase_add_test(tc, test_runs_inside_test);
    tcase_add_test(tc, test_blocking_and_wait_run_the_queue);
    tcase_add_test(tc, test_many_in_flight);
    tcase_add_test(tc, test_several_comms);
    tcase_add_test(tc, test_compressed_and_multi);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
