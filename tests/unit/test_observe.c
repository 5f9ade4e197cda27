/* test_observe.c - unit tests (no MPI communication) of what tally writes
 * about its calls: the TALLY_TRACE file (core/trace.c) through fake call
 * objects, and the TALLY_STATS table and the debug and trace log lines
 * (core/stats.c) through a fake communicator.  Where python3 is present
 * the trace files are also parsed as JSON. */
#define _GNU_SOURCE
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "algo/algo.h"
#include "core/comm.h"
#include "core/stats.h"
#include "core/trace.h"
#include "tally.h"

static const tally_algo_t fake_ring = {.name = "ring"};
static const tally_algo_t fake_rd = {.name = "recursive_doubling"};

/* A directory of its own per test (tests run forked, one at a time). */
static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/tally-test-observe-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct tally_comm *fake_comm(int size, bool nested)
{
    struct tally_comm *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->size = size;
    c->rank = 0;
    c->nested = nested;
    /* As comm.c names communicators. */
    if (nested)
        snprintf(c->label, sizeof c->label, "group of %d (across nodes)", size);
    else
        snprintf(c->label, sizeof c->label, "%d rank%s", size, size == 1 ? "" : "s");
    c->config.log_level = TALLY_LOG_WARN;
    return c;
}

static tally_call_t fake_call(struct tally_comm *comm, const tally_algo_t *algo, uint64_t seq,
                              size_t count, tally_trace_t *trace)
{
    return (tally_call_t){
        .count = count,
        .elem_size = 4,
        .dtype = TALLY_FLOAT32,
        .op = TALLY_SUM,
        .algo = algo,
        .reason = "a built-in row",
        .comm = comm,
        .rank = comm->rank,
        .size = comm->size,
        .seq = seq,
        .trace = trace,
        .comm_label = comm->label,
    };
}

/* The whole file in a malloc'd string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *text = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            text = realloc(text, cap);
            ck_assert_ptr_nonnull(text);
        }
        size_t n = fread(text + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

static int occurrences(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* Parses path with python3's json module and prints "events calls phases"
 * into out; false (test skipped for this part) without python3. */
static bool python_counts(const char *path, int *events, int *calls, int *phases)
{
    if (system("python3 -c '' >/dev/null 2>&1") != 0)
        return false;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); "
             "print(len(e), sum(x.get(\"cat\")==\"call\" for x in e), "
             "sum(x.get(\"cat\")==\"phase\" for x in e))' '%s'",
             path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = fscanf(p, "%d %d %d", events, calls, phases);
    int rc = pclose(p);
    ck_assert_msg(rc == 0 && n == 3, "python3 cannot parse %s as JSON", path);
    return true;
}

START_TEST(test_trace_unset_is_null)
{
    tally_trace_t *t = (tally_trace_t *)&t;
    ck_assert_int_eq(tally_trace_open("", &t), TALLY_SUCCESS);
    ck_assert_ptr_null(t);
    tally_trace_close(NULL);
    struct tally_comm *c = fake_comm(2, false);
    tally_call_t call = fake_call(c, &fake_ring, 0, 10, NULL);
    ck_assert(tally_phase_begin(&call) == 0.0);
    tally_phase_end(&call, "nothing", 0.0); /* must not touch a trace */
    free(c);
}
END_TEST

START_TEST(test_trace_shared_and_valid)
{
    make_dir();
    char prefix[128], path[160];
    snprintf(prefix, sizeof prefix, "%s/run", dir);
    snprintf(path, sizeof path, "%s.0.json", prefix); /* rank 0 without MPI */
    tally_trace_t *a = NULL, *b = NULL;
    ck_assert_int_eq(tally_trace_open(prefix, &a), TALLY_SUCCESS);
    ck_assert_int_eq(tally_trace_open(prefix, &b), TALLY_SUCCESS);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a, b); /* one file per process */

    struct tally_comm *c4 = fake_comm(4, false), *g2 = fake_comm(2, true);
    for (uint64_t seq = 0; seq < 5; seq++) {
        tally_call_t call = fake_call(c4, &fake_ring, seq, 1000 + seq, a);
        call.t_start = tally_trace_now();
        double p0 = tally_phase_begin(&call);
        ck_assert(p0 >= call.t_start);
        tally_phase_end(&call, "reduce-scatter", p0);
        tally_trace_call(&call, tally_trace_now(), TALLY_SUCCESS);
    }
    tally_call_t g = fake_call(g2, &fake_rd, 7, 3, b);
    g.t_start = tally_trace_now();
    tally_trace_call(&g, g.t_start + 1e-3, TALLY_ERR_MPI);

    tally_trace_close(a); /* b still holds it */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    tally_trace_close(b);

    char *text = slurp(path);
    ck_assert_msg(strncmp(text, "[\n", 2) == 0, "does not open an array: %.40s", text);
    size_t len = strlen(text);
    ck_assert_msg(len > 3 && strcmp(text + len - 3, "\n]\n") == 0,
                  "does not end with the bracket: %s", text + (len > 40 ? len - 40 : 0));
    ck_assert_int_eq(occurrences(text, "\"cat\":\"call\""), 6);
    ck_assert_int_eq(occurrences(text, "\"cat\":\"phase\""), 5);
    ck_assert_int_eq(occurrences(text, "\"name\":\"reduce-scatter\""), 5);
    ck_assert_int_eq(occurrences(text, "\"pid\":0,\"tid\":0"), 6 + 5 + 3);
    ck_assert_int_eq(occurrences(text, "\"args\":{\"name\":\"rank 0\"}"), 1);
    ck_assert_ptr_nonnull(strstr(text, "\"name\":\"ring\",\"cat\":\"call\",\"ph\":\"X\""));
    ck_assert_ptr_nonnull(strstr(text, "\"args\":{\"seq\":4,\"bytes\":4016,\"count\":1004,"
                                       "\"dtype\":\"float32\",\"op\":\"sum\","
                                       "\"comm\":\"4 ranks\",\"status\":\"TALLY_SUCCESS\","
                                       "\"why\":\"a built-in row\"}"));
    ck_assert_ptr_nonnull(strstr(text, "\"dur\":1000.000,"));
    ck_assert_ptr_nonnull(strstr(text, "\"args\":{\"seq\":7,\"bytes\":12,\"count\":3,"
                                       "\"dtype\":\"float32\",\"op\":\"sum\","
                                       "\"comm\":\"group of 2 (across nodes)\","
                                       "\"status\":\"TALLY_ERR_MPI\","
                                       "\"why\":\"a built-in row\"}"));
    free(text);
    int events, calls, phases;
    if (python_counts(path, &events, &calls, &phases)) {
        ck_assert_int_eq(events, 3 + 6 + 5);
        ck_assert_int_eq(calls, 6);
        ck_assert_int_eq(phases, 5);
    }

    /* A communicator made after the last close adds to the same file. */
    ck_assert_int_eq(tally_trace_open(prefix, &a), TALLY_SUCCESS);
    tally_call_t more = fake_call(c4, &fake_ring, 5, 1, a);
    more.t_start = tally_trace_now();
    tally_trace_call(&more, tally_trace_now(), TALLY_SUCCESS);
    tally_trace_close(a);
    /* ... and one that opens and closes without a call leaves it valid. */
    ck_assert_int_eq(tally_trace_open(prefix, &a), TALLY_SUCCESS);
    tally_trace_close(a);
    text = slurp(path);
    ck_assert_int_eq(occurrences(text, "\"cat\":\"call\""), 7);
    ck_assert_int_eq(occurrences(text, "\"name\":\"process_name\""), 1);
    free(text);
    if (python_counts(path, &events, &calls, &phases))
        ck_assert_int_eq(calls, 7);

    /* Another TALLY_TRACE starts its own file; the first stays as it was. */
    char prefix2[128], path2[160];
    snprintf(prefix2, sizeof prefix2, "%s/other", dir);
    snprintf(path2, sizeof path2, "%s.0.json", prefix2);
    ck_assert_int_eq(tally_trace_open(prefix2, &a), TALLY_SUCCESS);
    more.trace = a;
    tally_trace_call(&more, tally_trace_now(), TALLY_SUCCESS);
    tally_trace_close(a);
    if (python_counts(path2, &events, &calls, &phases))
        ck_assert_int_eq(calls, 1);
    if (python_counts(path, &events, &calls, &phases))
        ck_assert_int_eq(calls, 7);
    free(c4);
    free(g2);
    remove_dir();
}
END_TEST

START_TEST(test_trace_unwritable_path)
{
    tally_trace_t *t = (tally_trace_t *)&t;
    ck_assert_int_eq(tally_trace_open("/nonexistent-dir-of-tally/x", &t),
                     TALLY_ERR_INVALID_CONFIG);
    ck_assert_ptr_eq(t, (tally_trace_t *)&t); /* untouched */
}
END_TEST

/* The table printed for c, in a malloc'd string. */
static char *table_of(const struct tally_comm *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mem);
    tally_stats_print(c->stats, mem);
    fclose(mem);
    return text;
}

START_TEST(test_stats_table)
{
    struct tally_comm *c = fake_comm(4, false);
    c->config.stats = 1;
    ck_assert_int_eq(tally_stats_create(c->label, c->size, &c->stats), TALLY_SUCCESS);
    char *text = table_of(c);
    ck_assert_str_eq(text, ""); /* no call, no table */
    free(text);

    for (uint64_t seq = 0; seq < 3; seq++) {
        tally_call_t call = fake_call(c, &fake_ring, seq, 250, NULL);
        tally_stats_record(c->stats, &call, 0.25, TALLY_SUCCESS);
    }
    tally_call_t call = fake_call(c, &fake_ring, 3, 250, NULL);
    tally_stats_record(c->stats, &call, 0.5, TALLY_ERR_MPI);
    /* The same name from another pointer counts in the same row. */
    static const tally_algo_t ring_again = {.name = "ring"};
    call = fake_call(c, &ring_again, 4, 1, NULL);
    tally_stats_record(c->stats, &call, 0.25, TALLY_SUCCESS);
    call = fake_call(c, &fake_rd, 5, 2, NULL);
    tally_stats_record(c->stats, &call, 0.125, TALLY_SUCCESS);
    tally_stats_elsewhere(c->stats, c, "shm", "the node window is unavailable");
    tally_stats_elsewhere(c->stats, c, "shm", "the node window is unavailable");
    tally_stats_elsewhere(c->stats, c, "hier", "the node window is unavailable");

    text = table_of(c);
    const char *want =
        "tally: statistics of a communicator of 4 ranks, its rank 0 (TALLY_STATS=1)\n"
        "tally:  ranks algorithm                   calls            bytes      seconds\n"
        "tally:      4 ring                            4             3004     1.000000\n"
        "tally:      4 recursive_doubling              1                8     0.125000\n"
        "tally:        elsewhere                   calls   (algorithm asked; why the call "
        "ran elsewhere)\n"
        "tally:        shm                             2   the node window is unavailable\n"
        "tally:        hier                            1   the node window is unavailable\n"
        "tally:        failed                      calls   (returned an error)\n"
        "tally:        ring                            1\n";
    ck_assert_str_eq(text, want);
    free(text);
    tally_stats_destroy(c->stats);
    tally_stats_destroy(NULL);
    free(c);
}
END_TEST

/* Runs fn with stderr going to a file; returns what was written. */
static char *capture_stderr(void (*fn)(struct tally_comm *), struct tally_comm *c)
{
    char path[] = "/tmp/tally-test-observe-err-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn(c);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    char *text = slurp(path);
    unlink(path);
    return text;
}

/* Calls of 4000, 4000, 6000 (both 4 KiB .. 8 KiB), 8192 (8 KiB .. 16 KiB)
 * and 0 bytes through ring, 4000 through recursive_doubling, and a call
 * that ran elsewhere, twice. */
static void some_calls(struct tally_comm *c)
{
    const size_t counts[] = {1000, 1000, 1500, 2048, 0};
    for (int i = 0; i < 5; i++) {
        tally_call_t call = fake_call(c, &fake_ring, (uint64_t)i, counts[i], NULL);
        tally_stats_record(c->stats, &call, 1e-3, TALLY_SUCCESS);
    }
    tally_call_t call = fake_call(c, &fake_rd, 5, 1000, NULL);
    tally_stats_record(c->stats, &call, 1e-3, TALLY_SUCCESS);
    tally_stats_elsewhere(c->stats, c, "shm", "the node window is unavailable");
    tally_stats_elsewhere(c->stats, c, "shm", "the node window is unavailable");
}

START_TEST(test_stats_log_levels)
{
    struct tally_comm *c = fake_comm(3, false);
    ck_assert_int_eq(tally_stats_create(c->label, c->size, &c->stats), TALLY_SUCCESS);

    c->config.log_level = TALLY_LOG_INFO;
    char *text = capture_stderr(some_calls, c);
    ck_assert_str_eq(text, "");
    free(text);

    /* Debug: each (algorithm, size class) once, and the first elsewhere. */
    tally_stats_destroy(c->stats);
    ck_assert_int_eq(tally_stats_create(c->label, c->size, &c->stats), TALLY_SUCCESS);
    c->config.log_level = TALLY_LOG_DEBUG;
    text = capture_stderr(some_calls, c);
    ck_assert_int_eq(occurrences(text, "tally[0]: debug: "), 6);
    ck_assert_int_eq(occurrences(text, "tally[0]: trace: "), 0);
    ck_assert_ptr_nonnull(strstr(text, "3 ranks: ring for calls of 2 KiB up to 4 KiB (first: "
                                       "call 0, 4000 bytes of float32, sum): a built-in row"));
    ck_assert_ptr_nonnull(strstr(text, "ring for calls of 4 KiB up to 8 KiB (first: call 2,"));
    ck_assert_ptr_nonnull(strstr(text, "ring for calls of 8 KiB up to 16 KiB (first: call 3,"));
    ck_assert_ptr_nonnull(strstr(text, "ring for calls of 0 B (first: call 4,"));
    ck_assert_ptr_nonnull(strstr(text, "recursive_doubling for calls of 2 KiB up to 4 KiB"));
    ck_assert_ptr_nonnull(strstr(text, "shm asked, the call runs elsewhere: the node window"));
    /* Logged once per communicator: the same calls again log nothing. */
    free(text);
    text = capture_stderr(some_calls, c);
    ck_assert_int_eq(occurrences(text, "debug: "), 0);
    free(text);

    /* Trace: every call as well. */
    tally_stats_destroy(c->stats);
    ck_assert_int_eq(tally_stats_create(c->label, c->size, &c->stats), TALLY_SUCCESS);
    c->config.log_level = TALLY_LOG_TRACE;
    text = capture_stderr(some_calls, c);
    ck_assert_int_eq(occurrences(text, "tally[0]: debug: "), 6);
    ck_assert_int_eq(occurrences(text, "tally[0]: trace: "), 6);
    ck_assert_ptr_nonnull(strstr(text, "trace: 3 ranks: call 3: ring, 8192 bytes of float32, "
                                       "sum, 0.001000 s"));
    free(text);
    tally_stats_destroy(c->stats);
    free(c);
}
END_TEST

static Suite *observe_suite(void)
{
    Suite *s = suite_create("observe");
    TCase *tc = tcase_create("observe");
    tcase_add_test(tc, test_trace_unset_is_null);
    tcase_add_test(tc, test_trace_shared_and_valid);
    tcase_add_test(tc, test_trace_unwritable_path);
    tcase_add_test(tc, test_stats_table);
    tcase_add_test(tc, test_stats_log_levels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(observe_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
