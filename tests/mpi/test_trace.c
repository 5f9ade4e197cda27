/* test_trace.c - TALLY_TRACE and TALLY_STATS from an API program (run
 * under mpirun at 1..5 ranks by tests/run-tests.sh, and by
 * tests/trace/run-trace.sh, which checks the files and the table it
 * leaves behind).  Check runs in CK_NOFORK mode; every assertion is agreed
 * across ranks so no rank is left in a collective.
 *
 * Case "trace": K calls (TALLY_TEST_TRACE_CALLS, default 6) of cycling
 * sizes, or all of TALLY_TEST_TRACE_COUNT float32 elements, each result
 * checked; then each rank reads its own PATH.R.json: it ends with the
 * closing bracket, and holds K call spans of this communicator (not of
 * its groups across nodes) with seq 0..K-1 in order.  With TALLY_TRACE
 * unset the test makes a directory of its own and removes it; with
 * TALLY_TRACE set (run-trace.sh) the files stay for the JSON checks.
 *
 * Case "stats": calls with ring, then recursive_doubling, forced, then
 * with mpi forced on float16, which mpi cannot serve (so tally's choice
 * runs elsewhere than asked).  Rank 0 prints on stdout what the
 * TALLY_STATS table must show ("expect ALGORITHM CALLS", "expect-elsewhere
 * ALGORITHM CALLS"); run-trace.sh compares it with the table. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size;

static long env_long(const char *name, long dflt)
{
    const char *text = getenv(name);
    return text && *text ? strtol(text, NULL, 10) : dflt;
}

static tally_comm_t *make_comm(void)
{
    setenv("TALLY_FALLBACK", "silent", 1);
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    unsetenv("TALLY_FALLBACK");
    ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS, "tally_comm_create: %s", tally_strerror(st)),
                  "tally_comm_create failed");
    return comm;
}

/* One float32 SUM of `count` elements whose result is exact; true if
 * every element is right. */
static bool sum_call(tally_comm_t *comm, size_t count, float *send, float *recv,
                     tally_status_t *st)
{
    for (size_t i = 0; i < count; i++)
        send[i] = (float)(world_rank + 1) + (float)(i % 7);
    *st = tally_allreduce(send, recv, count, TALLY_FLOAT32, TALLY_SUM, comm);
    if (*st != TALLY_SUCCESS)
        return false;
    const float ranks = (float)(world_size * (world_size + 1) / 2);
    for (size_t i = 0; i < count; i++)
        if (recv[i] != ranks + (float)world_size * (float)(i % 7))
            return false;
    return true;
}

/* Reads this rank's trace file; counts the call spans of a communicator
 * of all ranks (not "group of ...") and checks their seqs run 0, 1, ...
 * in the order they were written (the order the calls ended). */
static bool own_file_ok(const char *path, long calls, char *why, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, len, "cannot open %s", path);
        return false;
    }
    char line[4096], last[4096] = "";
    long n = 0;
    bool in_order = true;
    while (fgets(line, sizeof line, f)) {
        snprintf(last, sizeof last, "%s", line);
        if (!strstr(line, "\"cat\":\"call\"") || strstr(line, "\"comm\":\"group of"))
            continue;
        const char *seq = strstr(line, "\"seq\":");
        if (!seq || strtol(seq + 6, NULL, 10) != n)
            in_order = false;
        n++;
    }
    fclose(f);
    if (strcmp(last, "]\n") != 0) {
        snprintf(why, len, "%s does not end with the closing bracket: %s", path, last);
        return false;
    }
    if (n != calls || !in_order) {
        snprintf(why, len, "%s: %ld call spans (%s), expected %ld with seq 0..%ld", path, n,
                 in_order ? "in order" : "not in seq order", calls, calls - 1);
        return false;
    }
    return true;
}

START_TEST(test_trace_calls)
{
    const char *given = getenv("TALLY_TRACE");
    const bool own = !given || !*given;
    char dir[64] = "", prefix[512];
    if (own) {
        /* Rank 0 makes the directory; everyone writes into it. */
        if (world_rank == 0) {
            snprintf(dir, sizeof dir, "/tmp/tally-test-trace-XXXXXX");
            if (!mkdtemp(dir))
                dir[0] = '\0';
        }
        MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
        ck_assert_msg(tt_all_ok(dir[0] != '\0', "mkdtemp failed"), "no directory");
        snprintf(prefix, sizeof prefix, "%s/trace", dir);
        setenv("TALLY_TRACE", prefix, 1);
    } else {
        snprintf(prefix, sizeof prefix, "%s", given);
    }
    const long calls = env_long("TALLY_TEST_TRACE_CALLS", 6);
    const long fixed = env_long("TALLY_TEST_TRACE_COUNT", 0);
    static const size_t cycle[] = {1, 1000, 65537, 262144}; /* 4 B .. 1 MiB */
    size_t most = fixed > 0 ? (size_t)fixed : cycle[3];
    float *send = malloc(most * sizeof *send), *recv = malloc(most * sizeof *recv);
    ck_assert(send && recv);

    tally_comm_t *comm = make_comm();
    bool ok = true;
    tally_status_t st = TALLY_SUCCESS;
    long i;
    for (i = 0; i < calls && ok; i++) {
        size_t count = fixed > 0 ? (size_t)fixed : cycle[i % 4];
        ok = sum_call(comm, count, send, recv, &st);
    }
    ck_assert_msg(tt_all_ok(ok, "call %ld: %s", i - 1,
                            st == TALLY_SUCCESS ? "wrong result" : tally_strerror(st)),
                  "a traced call failed");
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
    free(send);
    free(recv);
    if (own)
        unsetenv("TALLY_TRACE");

    char path[600], why[4600] = "";
    snprintf(path, sizeof path, "%s.%d.json", prefix, world_rank);
    ok = own_file_ok(path, calls, why, sizeof why);
    if (own) {
        unlink(path);
        MPI_Barrier(MPI_COMM_WORLD);
        if (world_rank == 0)
            rmdir(dir);
    }
    ck_assert_msg(tt_all_ok(ok, "%s", why), "trace file");
}
END_TEST

START_TEST(test_stats_calls)
{
    enum { RING = 3, RD = 2, ELSEWHERE = 2 };
    tally_comm_t *comm = make_comm();
    float send[1000], recv[1000];
    bool ok = true;
    tally_status_t st = TALLY_SUCCESS;
    const char *ring = NULL, *rd = NULL, *choice = NULL;

    ok = tally_comm_set_algorithm(comm, "ring") == TALLY_SUCCESS &&
         tally_comm_get_algorithm(comm, 1000, TALLY_FLOAT32, TALLY_SUM, &ring) ==
             TALLY_SUCCESS;
    for (int i = 0; i < RING && ok; i++)
        ok = sum_call(comm, 1000, send, recv, &st);
    ok = ok && tally_comm_set_algorithm(comm, "recursive_doubling") == TALLY_SUCCESS &&
         tally_comm_get_algorithm(comm, 1000, TALLY_FLOAT32, TALLY_SUM, &rd) == TALLY_SUCCESS;
    for (int i = 0; i < RD && ok; i++)
        ok = sum_call(comm, 1000, send, recv, &st);
    /* mpi cannot serve float16: with TALLY_FALLBACK=silent, tally's choice. */
    uint16_t half[100] = {0}, half_out[100];
    ok = ok && tally_comm_set_algorithm(comm, "mpi") == TALLY_SUCCESS &&
         tally_comm_get_algorithm(comm, 100, TALLY_FLOAT16, TALLY_SUM, &choice) ==
             TALLY_SUCCESS;
    for (int i = 0; i < ELSEWHERE && ok; i++) {
        st = tally_allreduce(half, half_out, 100, TALLY_FLOAT16, TALLY_SUM, comm);
        ok = st == TALLY_SUCCESS;
    }
    ck_assert_msg(tt_all_ok(ok, "forced calls: %s", tally_strerror(st)), "forced calls");
    ck_assert_msg(tt_all_ok(strcmp(ring, "ring") == 0 && strcmp(rd, "recursive_doubling") == 0 &&
                                strcmp(choice, "mpi") != 0,
                            "forced: %s, %s, and %s for float16", ring, rd, choice),
                  "tally_comm_get_algorithm");
    if (world_rank == 0) {
        /* One line per algorithm, as the table has one row per algorithm. */
        const char *names[3] = {ring, rd, choice};
        int counts[3] = {RING, RD, ELSEWHERE};
        for (int a = 0; a < 3; a++) {
            int n = counts[a];
            bool seen = false;
            for (int b = 0; b < a; b++)
                seen = seen || strcmp(names[a], names[b]) == 0;
            if (seen)
                continue;
            for (int b = a + 1; b < 3; b++)
                if (strcmp(names[a], names[b]) == 0)
                    n += counts[b];
            printf("expect %s %d\n", names[a], n);
        }
        printf("expect-elsewhere mpi %d\n", ELSEWHERE);
        fflush(stdout);
    }
    MPI_Barrier(MPI_COMM_WORLD); /* the lines come before the table */
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *trace = tcase_create("trace");
    tcase_set_timeout(trace, 300);
    tcase_add_test(trace, test_trace_calls);
    suite_add_tcase(s, trace);
    TCase *stats = tcase_create("stats");
    tcase_set_timeout(stats, 120);
    tcase_add_test(stats, test_stats_calls);
    suite_add_tcase(s, stats);
    return s;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    SRunner *sr = srunner_create(trace_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
