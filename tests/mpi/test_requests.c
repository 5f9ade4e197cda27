/* test_requests.c - MPI tests of the non-blocking calls and fusion:
 * tally_iallreduce / _compressed / _multi with tally_test, tally_wait and
 * tally_waitall, mixed with blocking calls (order kept), with a progress
 * thread (MPI_THREAD_MULTIPLE) and without one (TALLY_PROGRESS_THREAD=0:
 * calls run inside test and wait); tally_allreduce_multi packing small
 * tensors and running large ones alone (TALLY_FUSION_BYTES small), in place
 * or not; the idle thread burns no CPU; the trace shows each started
 * call's wait in the queue; bad arguments refused with nothing started;
 * 300 calls of mixed sizes, dtypes and ops in flight at once, bit-equal
 * to the same calls run blocking (tally's choice, then each algorithm
 * forced); calls interleaved on three communicators and completed in
 * another order (requests_mix.h). */
#include <check.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "requests_mix.h"
#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size;

/* Element i of rank r's input: small integers, exact in float. */
static float input(int r, size_t i)
{
    return (float)((r + 1) * ((i % 13) + 1));
}

static float expected(size_t i)
{
    float s = 0;
    for (int r = 0; r < world_size; r++)
        s += input(r, i);
    return s;
}

static float *make(size_t n)
{
    float *b = malloc((n ? n : 1) * sizeof *b);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++)
        b[i] = input(world_rank, i);
    return b;
}

static int correct(const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != expected(i))
            return 0;
    return 1;
}

static tally_comm_t *make_comm(int threaded)
{
    setenv("TALLY_PROGRESS_THREAD", threaded ? "1" : "0", 1);
    setenv("TALLY_FUSION_BYTES", "4K", 1); /* small: packing and going alone both run */
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    unsetenv("TALLY_PROGRESS_THREAD");
    unsetenv("TALLY_FUSION_BYTES");
    return comm;
}

/* Non-blocking calls of many sizes, a blocking call in between, test and
 * wait; then waitall. */
static void run_mixed(int threaded)
{
    tally_comm_t *comm = make_comm(threaded);
    const size_t sizes[] = {1, 7, 1000, 65536, 300000};
    enum { K = 5 };
    float *in[K], *out[K];
    tally_request_t *req[K];
    for (int k = 0; k < K; k++) {
        in[k] = make(sizes[k]);
        out[k] = malloc(sizes[k] * sizeof(float));
        ck_assert_int_eq(tally_iallreduce(k % 2 ? TALLY_IN_PLACE : in[k], k % 2 ? in[k] : out[k],
                                          sizes[k], TALLY_FLOAT32, TALLY_SUM, comm, &req[k]),
                         TALLY_SUCCESS);
        ck_assert_ptr_nonnull(req[k]);
    }
    /* A blocking call keeps its place: after the ones started before it. */
    float *b = make(5000);
    ck_assert_int_eq(tally_allreduce(TALLY_IN_PLACE, b, 5000, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_SUCCESS);
    ck_assert_msg(tt_all_ok(correct(b, 5000), "blocking call between non-blocking ones"), "b");
    int done = 0;
    while (!done)
        ck_assert_int_eq(tally_test(&req[0], &done), TALLY_SUCCESS);
    ck_assert_ptr_null(req[0]);
    ck_assert_int_eq(tally_wait(&req[1]), TALLY_SUCCESS);
    ck_assert_ptr_null(req[1]);
    ck_assert_int_eq(tally_waitall(K, req), TALLY_SUCCESS);
    for (int k = 0; k < K; k++) {
        ck_assert_ptr_null(req[k]);
        ck_assert_msg(tt_all_ok(correct(k % 2 ? in[k] : out[k], sizes[k]),
                                "%s: call %d of %zu elements wrong",
                                threaded ? "thread" : "no thread", k, sizes[k]),
                      "non-blocking results");
        free(in[k]);
        free(out[k]);
    }
    /* A request waited for is gone: a second wait is a clear error. */
    ck_assert_int_eq(tally_wait(&req[0]), TALLY_ERR_INVALID_ARGUMENT);
    free(b);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}

START_TEST(test_nonblocking_thread)
{
    run_mixed(1);
}
END_TEST

START_TEST(test_nonblocking_no_thread)
{
    run_mixed(0);
}
END_TEST

/* Fusion: small tensors packed (4 KiB buffer), large ones alone, in place
 * and not, blocking and non-blocking. */
START_TEST(test_multi)
{
    for (int threaded = 0; threaded < 2; threaded++) {
        tally_comm_t *comm = make_comm(threaded);
        enum { N = 9 };
        const size_t counts[N] = {3, 100, 0, 900, 1024, 5000, 17, 1, 2000};
        float *in[N], *out[N];
        tally_buffer_t bufs[N];
        for (int i = 0; i < N; i++) {
            in[i] = make(counts[i]);
            out[i] = malloc((counts[i] ? counts[i] : 1) * sizeof(float));
            bufs[i] = (tally_buffer_t){i % 3 == 0 ? TALLY_IN_PLACE : in[i],
                                       i % 3 == 0 ? in[i] : out[i], counts[i]};
        }
        ck_assert_int_eq(tally_allreduce_multi(bufs, N, TALLY_FLOAT32, TALLY_SUM, comm),
                         TALLY_SUCCESS);
        for (int i = 0; i < N; i++)
            ck_assert_msg(tt_all_ok(correct(i % 3 == 0 ? in[i] : out[i], counts[i]),
                                    "multi: tensor %d of %zu", i, counts[i]),
                          "multi");
        /* Again, started: the in-place tensors now start from the sums. */
        for (int i = 0; i < N; i++)
            for (size_t e = 0; e < counts[i]; e++)
                in[i][e] = input(world_rank, e);
        tally_request_t *req = NULL;
        ck_assert_int_eq(tally_iallreduce_multi(bufs, N, TALLY_FLOAT32, TALLY_SUM, comm, &req),
                         TALLY_SUCCESS);
        ck_assert_int_eq(tally_wait(&req), TALLY_SUCCESS);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(tt_all_ok(correct(i % 3 == 0 ? in[i] : out[i], counts[i]),
                                    "imulti: tensor %d", i),
                          "imulti");
            free(in[i]);
            free(out[i]);
        }
        ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
    }
}
END_TEST

/* Fused tensors on shm, reduced where they lie (walked: large tensors,
 * or small ones on ranks that share cores) or packed (small ones on ranks
 * with cores of their own), with window pieces that cross tensors (a
 * 4 KiB TALLY_SHM_CHUNK): each tensor equal, bit for bit, to the same
 * elements reduced as one contiguous vector by the same algorithm; inputs
 * of out-of-place tensors untouched.  Every other algorithm packs, unless
 * the tensors are one stretch of memory (views of one buffer, all in place
 * or all not), which runs as one plain call; on several nodes shm cannot
 * serve and falls back.  The tensors fit one fusion buffer: split into
 * groups, an element could have another owner than in the contiguous call
 * and be summed in another order.  Layout 3 is one stretch on even ranks
 * and separate tensors on odd ones: the ranks go different ways to the
 * same call, which must neither hang nor differ. */
static void multi_where_they_lie(tally_comm_t *comm, size_t scale)
{
    enum { N = 97 };
    size_t counts[N], total = 0;
    for (int i = 0; i < N; i++)
        total += counts[i] = (size_t)(i * 37 % 211) * scale;
    float *whole = malloc(total * sizeof *whole), *ref = malloc(total * sizeof *ref);
    float *in = malloc(total * sizeof *in), *out = malloc(total * sizeof *out);
    ck_assert(whole && ref && in && out);
    for (size_t e = 0; e < total; e++) /* not integers: any change of order shows */
        whole[e] = (float)(world_rank + 1) / 3.0f + (float)(e % 101) * 0.37f;
    const char *algos[] = {"shm", "ring", "mpi"};
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        ck_assert_int_eq(tally_comm_set_algorithm(comm, algos[a]), TALLY_SUCCESS);
        /* Layout 0: in place and not in turn; 1: all in place and 2: none,
         * views of one buffer that make one stretch of memory; 3: layout 1
         * on even ranks, 0 on odd ones, run first, while the fusion buffer
         * has not grown (growing is a collective step). */
        for (int shown = 3; shown >= 0; shown--)
            for (int op = 0; op < 2; op++) {
                const int layout = shown < 3 ? shown : world_rank % 2 ? 0 : 1;
                const tally_op_t top = op ? TALLY_AVG : TALLY_SUM;
                ck_assert_int_eq(tally_allreduce(whole, ref, total, TALLY_FLOAT32, top, comm),
                                 TALLY_SUCCESS);
                memcpy(in, whole, total * sizeof *in);
                memset(out, 0x5a, total * sizeof *out);
                tally_buffer_t bufs[N];
                size_t at = 0;
                for (int i = 0; i < N; at += counts[i++]) {
                    const bool in_place = layout == 0 ? i % 2 : layout == 1;
                    bufs[i] = (tally_buffer_t){in_place ? TALLY_IN_PLACE : in + at,
                                               in_place ? in + at : out + at, counts[i]};
                }
                ck_assert_int_eq(tally_allreduce_multi(bufs, N, TALLY_FLOAT32, top, comm),
                                 TALLY_SUCCESS);
                int ok = 1;
                at = 0;
                for (int i = 0; i < N; at += counts[i++]) {
                    const bool in_place = bufs[i].sendbuf == TALLY_IN_PLACE;
                    const float *got = in_place ? in + at : out + at;
                    ok &= memcmp(got, ref + at, counts[i] * sizeof *got) == 0;
                    if (!in_place) /* the input of an out-of-place tensor */
                        ok &= memcmp(in + at, whole + at, counts[i] * sizeof *in) == 0;
                }
                ck_assert_msg(tt_all_ok(ok, "fused where they lie, %s, x%zu, layout %d, %s",
                                        algos[a], scale, shown, op ? "avg" : "sum"),
                              "fused tensors differ from the contiguous call");
            }
    }
    free(whole);
    free(ref);
    free(in);
    free(out);
}

START_TEST(test_multi_where_they_lie)
{
    setenv("TALLY_SHM_CHUNK", "4K", 1);
    setenv("TALLY_FALLBACK", "silent", 1);
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    unsetenv("TALLY_SHM_CHUNK");
    unsetenv("TALLY_FALLBACK");
    multi_where_they_lie(comm, 1);  /* 420 B per tensor on average */
    multi_where_they_lie(comm, 16); /* 6.6 KiB: all in one group still */
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

START_TEST(test_compressed_started)
{
    tally_comm_t *comm = make_comm(1);
    const size_t n = 4096;
    float *g = make(n), *r = malloc(n * sizeof *r);
    tally_compressor_t *z;
    ck_assert_int_eq(tally_compressor_create(comm, "fp16", n, TALLY_FLOAT32, &z), TALLY_SUCCESS);
    tally_request_t *req;
    ck_assert_int_eq(tally_iallreduce_compressed(g, r, n, TALLY_FLOAT32, TALLY_SUM, z, &req),
                     TALLY_SUCCESS);
    ck_assert_int_eq(tally_wait(&req), TALLY_SUCCESS);
    /* Small integers are exact in fp16 too, and one node compresses nothing. */
    ck_assert_msg(tt_all_ok(correct(r, n), "iallreduce_compressed"), "compressed");
    tally_compressor_destroy(z);
    free(g);
    free(r);
    tally_comm_destroy(comm);
}
END_TEST

/* The thread sleeps when idle: a second of waiting costs far less than a
 * second of CPU. */
START_TEST(test_idle_thread_sleeps)
{
    tally_comm_t *comm = make_comm(1);
    float x = 1;
    tally_request_t *req;
    ck_assert_int_eq(tally_iallreduce(TALLY_IN_PLACE, &x, 1, TALLY_FLOAT32, TALLY_SUM, comm, &req),
                     TALLY_SUCCESS);
    ck_assert_int_eq(tally_wait(&req), TALLY_SUCCESS);
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    struct timespec half = {0, 500000000};
    nanosleep(&half, NULL);
    getrusage(RUSAGE_SELF, &b);
    double cpu = (b.ru_utime.tv_sec - a.ru_utime.tv_sec) +
                 1e-6 * (b.ru_utime.tv_usec - a.ru_utime.tv_usec) +
                 (b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
                 1e-6 * (b.ru_stime.tv_usec - a.ru_stime.tv_usec);
    ck_assert_msg(cpu < 0.1, "0.5 s idle cost %.3f s of CPU", cpu);
    tally_comm_destroy(comm);
}
END_TEST

/* TALLY_TRACE: each started call's wait in the queue is a span of its own. */
START_TEST(test_trace_queue)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tally-test-requests-%d", (int)getpid());
    int len = (int)strlen(path);
    MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(path, len + 1, MPI_CHAR, 0, MPI_COMM_WORLD);
    setenv("TALLY_TRACE", path, 1);
    tally_comm_t *comm = make_comm(1);
    unsetenv("TALLY_TRACE");
    float x[3][100];
    tally_request_t *req[3];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 100; i++)
            x[k][i] = input(world_rank, (size_t)i);
        ck_assert_int_eq(tally_iallreduce(TALLY_IN_PLACE, x[k], 100, TALLY_FLOAT32, TALLY_SUM,
                                          comm, &req[k]),
                         TALLY_SUCCESS);
    }
    ck_assert_int_eq(tally_waitall(3, req), TALLY_SUCCESS);
    tally_comm_destroy(comm); /* closes the trace */
    char file[96];
    snprintf(file, sizeof file, "%s.%d.json", path, world_rank);
    FILE *f = fopen(file, "r");
    ck_assert_msg(f != NULL, "no trace file %s", file);
    char buf[1 << 16];
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = '\0';
    fclose(f);
    remove(file);
    int queued = 0;
    for (const char *p = buf; (p = strstr(p, "\"cat\":\"queue\"")); p++)
        queued++;
    ck_assert_msg(tt_all_ok(queued == 3, "%d queue spans for 3 started calls", queued),
                  "queue spans");
}
END_TEST

START_TEST(test_bad_arguments)
{
    tally_comm_t *comm = make_comm(1);
    float a[4] = {0}, b[4];
    tally_request_t *req = (tally_request_t *)0x1;
    ck_assert_int_eq(tally_iallreduce(a, a, 4, TALLY_FLOAT32, TALLY_SUM, comm, &req),
                     TALLY_ERR_ALIASED_BUFFERS);
    ck_assert_int_eq(tally_iallreduce(NULL, b, 4, TALLY_FLOAT32, TALLY_SUM, comm, &req),
                     TALLY_ERR_NULL_BUFFER);
    ck_assert_int_eq(tally_iallreduce(a, b, 4, TALLY_FLOAT32, TALLY_BAND, comm, &req),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_ptr_eq(req, (tally_request_t *)0x1); /* nothing started */
    ck_assert_int_eq(tally_iallreduce(a, b, 4, TALLY_FLOAT32, TALLY_SUM, comm, NULL),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_wait(NULL), TALLY_ERR_INVALID_ARGUMENT);
    int done;
    tally_request_t *none = NULL;
    ck_assert_int_eq(tally_test(&none, &done), TALLY_ERR_INVALID_ARGUMENT);
    tally_buffer_t bad[2] = {{a, b, 4}, {a, a, 4}};
    ck_assert_int_eq(tally_allreduce_multi(bad, 2, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_ERR_ALIASED_BUFFERS);
    ck_assert_int_eq(tally_allreduce_multi(NULL, 2, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_ERR_NULL_BUFFER);
    /* A bad tensor after good ones, each kind of fault the full check names. */
    const struct { tally_buffer_t tensor; tally_status_t st; } faults[] = {
        {{TALLY_IN_PLACE, NULL, 4}, TALLY_ERR_NULL_BUFFER},
        {{a, (void *)(uintptr_t)TALLY_IN_PLACE, 4}, TALLY_ERR_INVALID_ARGUMENT},
        {{TALLY_IN_PLACE, b, SIZE_MAX / 2}, TALLY_ERR_COUNT_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        tally_buffer_t mixed[3] = {{a, b, 4}, {TALLY_IN_PLACE, b, 0}, faults[i].tensor};
        ck_assert_int_eq(tally_allreduce_multi(mixed, 3, TALLY_FLOAT32, TALLY_SUM, comm),
                         faults[i].st);
    }
    ck_assert_int_eq(tally_allreduce_multi(NULL, 0, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_SUCCESS);
    ck_assert_int_eq(tally_waitall(0, NULL), TALLY_SUCCESS);
    tally_comm_destroy(comm);
}
END_TEST

/* Hundreds of calls in flight at once, then the same calls blocking: the
 * same bits. */
START_TEST(test_many_in_flight_thread)
{
    tally_comm_t *comm = make_comm(1);
    rm_many_in_flight(comm, 300, "many in flight, thread");
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

START_TEST(test_many_in_flight_no_thread)
{
    tally_comm_t *comm = make_comm(0);
    rm_many_in_flight(comm, 300, "many in flight, no thread");
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

/* The same with each algorithm forced (auto runs mostly shm here); one
 * that cannot serve a call falls back quietly, the same way both times. */
START_TEST(test_many_in_flight_each_algorithm)
{
    setenv("TALLY_FALLBACK", "silent", 1);
    tally_comm_t *comm = make_comm(1);
    unsetenv("TALLY_FALLBACK");
    for (int a = 0; a < tally_algorithm_count(); a++) {
        char label[64];
        snprintf(label, sizeof label, "many in flight, %s", tally_algorithm_name(a));
        ck_assert_int_eq(tally_comm_set_algorithm(comm, tally_algorithm_name(a)), TALLY_SUCCESS);
        rm_many_in_flight(comm, 60, label);
    }
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

START_TEST(test_several_comms)
{
    rm_several_comms(1, "several communicators, thread");
    rm_several_comms(0, "several communicators, no thread");
}
END_TEST

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (world_rank == 0 && provided != MPI_THREAD_MULTIPLE)
        printf("NOTE: the MPI grants thread level %d, not MPI_THREAD_MULTIPLE: the progress "
               "thread tests run without a thread\n", provided);
    Suite *s = suite_create("requests");
    TCase *tc = tcase_create("requests");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_nonblocking_thread);
    tcase_add_test(tc, test_nonblocking_no_thread);
    tcase_add_test(tc, test_multi);
    tcase_add_test(tc, test_multi_where_they_lie);
    tcase_add_test(tc, test_compressed_started);
    tcase_add_test(tc, test_trace_queue);
    tcase_add_test(tc, test_many_in_flight_thread);
    tcase_add_test(tc, test_many_in_flight_no_thread);
    tcase_add_test(tc, test_many_in_flight_each_algorithm);
    tcase_add_test(tc, test_several_comms);
    if (provided == MPI_THREAD_MULTIPLE)
        tcase_add_test(tc, test_idle_thread_sleeps);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
