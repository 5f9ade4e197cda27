/* test_select.c - selection across ranks (run under mpirun at 1..5 ranks):
 * a tuning file's rows (with their segment sizes) choose the algorithm and
 * still give exact results; ranks holding different tables, a missing
 * file, TALLY_CALIBRATE, the shape tally_comm_print reports, and
 * tally_comm_predict / tally_comm_explain on bad and good input.  Every
 * assertion is agreed across ranks so no rank is left in a collective. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size;

/* Rank 0 writes `text` (with %d replaced by the world size) to a file
 * every rank can read; returns its path in buf. */
static void shared_file(char *buf, size_t len, const char *tag, const char *text)
{
    int pid = (int)getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    snprintf(buf, len, "/tmp/tally-test-select-%d-%s.tune", pid, tag);
    if (world_rank == 0) {
        FILE *f = fopen(buf, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, text, world_size);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void remove_file(const char *path)
{
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0)
        unlink(path);
}

static void clear_env(void)
{
    unsetenv("TALLY_ALGO");
    unsetenv("TALLY_TUNING_FILE");
    unsetenv("TALLY_CALIBRATE");
    unsetenv("TALLY_MODEL");
}

START_TEST(test_file_chooses_and_results_exact)
{
    clear_env();
    char path[256];
    /* A 24-byte segment makes every row's algorithm run many segments. */
    shared_file(path, sizeof path, "choose",
                "# written by test_select\n"
                "%d 1 0-4000 rabenseifner 24\n"
                "* * 4001-64K ring 24\n"
                "* * 64K- recursive_doubling 4K\n");
    setenv("TALLY_TUNING_FILE", path, 1);
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS, "create: %s", tally_strerror(st)), "create");
    const struct { size_t count; const char *algo; } cases[] = {
        {1, "rabenseifner"}, {999, "rabenseifner"}, {1000, "rabenseifner"},
        {1001, "ring"}, {16384, "ring"}, {16385, "recursive_doubling"}, {99991, "recursive_doubling"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = NULL;
        st = tally_comm_get_algorithm(comm, cases[i].count, TALLY_INT32, TALLY_SUM, &name);
        ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS && strcmp(name, cases[i].algo) == 0,
                             "%zu int32: %s, expected %s", cases[i].count,
                             st == TALLY_SUCCESS ? name : tally_strerror(st), cases[i].algo),
                      "choice");
        int32_t *buf = malloc(cases[i].count * sizeof *buf);
        for (size_t k = 0; k < cases[i].count; k++)
            buf[k] = (int32_t)(k * 7 + (size_t)world_rank);
        st = tally_allreduce(TALLY_IN_PLACE, buf, cases[i].count, TALLY_INT32, TALLY_SUM, comm);
        size_t bad = 0;
        for (size_t k = 0; k < cases[i].count; k++) {
            int64_t want = (int64_t)(k * 7) * world_size + (int64_t)world_size * (world_size - 1) / 2;
            bad += buf[k] != (int32_t)want;
        }
        free(buf);
        ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS && bad == 0, "%zu int32 via %s: %s, %zu wrong",
                             cases[i].count, cases[i].algo, tally_strerror(st), bad),
                      "result");
    }
    /* TALLY_ALGO still overrides the file. */
    tally_comm_destroy(comm);
    setenv("TALLY_ALGO", "ring", 1);
    st = tally_comm_create(MPI_COMM_WORLD, &comm);
    const char *name = NULL;
    if (st == TALLY_SUCCESS)
        st = tally_comm_get_algorithm(comm, 5, TALLY_INT32, TALLY_SUM, &name);
    ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS && strcmp(name, "ring") == 0, "forced: %s",
                         st == TALLY_SUCCESS ? name : tally_strerror(st)),
                  "TALLY_ALGO");
    tally_comm_destroy(comm);
    clear_env();
    remove_file(path);
}
END_TEST

START_TEST(test_ranks_with_different_tables_fail_together)
{
    if (world_size < 2) {
        if (world_rank == 0)
            printf("SKIP test_ranks_with_different_tables_fail_together: needs 2 ranks\n");
        return;
    }
    clear_env();
    char a[256], b[256];
    shared_file(a, sizeof a, "a", "* * 0-* ring\n");
    shared_file(b, sizeof b, "b", "* * 0-* rabenseifner\n");
    setenv("TALLY_TUNING_FILE", world_rank == world_size - 1 ? b : a, 1);
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    ck_assert_msg(tt_all_ok(st == TALLY_ERR_CONFIG_MISMATCH && comm == NULL, "got %s",
                         tally_strerror(st)),
                  "mismatch detected on every rank");
    /* One rank without the file: also a mismatch, not a hang. */
    if (world_rank == 0)
        unsetenv("TALLY_TUNING_FILE");
    st = tally_comm_create(MPI_COMM_WORLD, &comm);
    ck_assert_msg(tt_all_ok(st == TALLY_ERR_CONFIG_MISMATCH, "got %s", tally_strerror(st)),
                  "file on some ranks only");
    clear_env();
    remove_file(a);
    remove_file(b);
}
END_TEST

START_TEST(test_missing_file_fails_everywhere)
{
    clear_env();
    setenv("TALLY_TUNING_FILE", "/nonexistent/dir/tally.tune", 1);
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    ck_assert_msg(tt_all_ok(st == TALLY_ERR_INVALID_CONFIG && comm == NULL, "got %s",
                         tally_strerror(st)),
                  "missing file");
    clear_env();
}
END_TEST

static int print_contains(tally_comm_t *comm, const char *needle)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tally_comm_print(comm, f);
    fclose(f);
    int found = strstr(text, needle) != NULL;
    if (!found && world_rank == 0)
        fprintf(stderr, "no \"%s\" in:\n%s", needle, text);
    free(text);
    return found;
}

START_TEST(test_shape_calibration_predict_explain)
{
    clear_env();
    setenv("TALLY_CALIBRATE", "1", 1);
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS, "create: %s", tally_strerror(st)), "create");
    char shape[128];
    snprintf(shape, sizeof shape, "%d rank%s on 1 node", world_size, world_size == 1 ? "" : "s");
    ck_assert_msg(tt_all_ok(print_contains(comm, shape), "shape"), "shape");
    ck_assert_msg(tt_all_ok(print_contains(comm, "measured by TALLY_CALIBRATE=1"), "calibrated"),
                  "calibrated");

    double t_small = 0, t_big = 0, t = 0;
    int ok = tally_comm_predict(comm, "ring", 2, TALLY_FLOAT32, TALLY_SUM, &t_small) ==
                 TALLY_SUCCESS &&
             tally_comm_predict(comm, "ring", 1 << 24, TALLY_FLOAT32, TALLY_SUM, &t_big) ==
                 TALLY_SUCCESS &&
             t_small > 0 && t_big > t_small;
    ok &= tally_comm_predict(comm, "no_such", 2, TALLY_FLOAT32, TALLY_SUM, &t) ==
          TALLY_ERR_UNKNOWN_ALGORITHM;
    ok &= tally_comm_predict(comm, "mpi", 2, TALLY_FLOAT16, TALLY_SUM, &t) ==
          TALLY_ERR_UNSUPPORTED;
    ok &= tally_comm_predict(comm, "ring", 2, TALLY_FLOAT32, TALLY_BAND, &t) ==
          TALLY_ERR_OP_DTYPE_MISMATCH;
    ok &= tally_comm_predict(NULL, "ring", 2, TALLY_FLOAT32, TALLY_SUM, &t) ==
          TALLY_ERR_NULL_COMM;
    ok &= tally_comm_explain(comm, 4, TALLY_FLOAT32, TALLY_SUM, NULL) ==
          TALLY_ERR_INVALID_ARGUMENT;
    ck_assert_msg(tt_all_ok(ok, "predict: small %g big %g", t_small, t_big), "predict");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *name = NULL;
    st = tally_comm_explain(comm, 1 << 20, TALLY_FLOAT16, TALLY_SUM, f);
    fclose(f);
    tally_comm_get_algorithm(comm, 1 << 20, TALLY_FLOAT16, TALLY_SUM, &name);
    char runs[96];
    snprintf(runs, sizeof runs, "runs %s:", name ? name : "?");
    ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS && strstr(text, runs) &&
                             strstr(text, "cannot serve it") && strstr(text, "<- runs"),
                         "explain:\n%s", text),
                  "explain");
    free(text);
    tally_comm_destroy(comm);
    clear_env();
}
END_TEST

static Suite *select_suite(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("select");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_file_chooses_and_results_exact);
    tcase_add_test(tc, test_ranks_with_different_tables_fail_together);
    tcase_add_test(tc, test_missing_file_fails_everywhere);
    tcase_add_test(tc, test_shape_calibration_predict_explain);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    /* Expected failures below log errors; keep the output readable. */
    setenv("TALLY_LOG_LEVEL", "none", 1);
    SRunner *sr = srunner_create(select_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
