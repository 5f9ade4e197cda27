/* test_core.c - unit tests (no MPI communication) for status strings, the
 * configuration table, block arithmetic, the algorithm registry and the
 * restriction check, the public introspection, and the drift between the
 * library's tables and the man pages. */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo/algo.h"
#include "core/config.h"
#include "core/dtype.h"
#include "core/hash.h"
#include "tally.h"

START_TEST(test_strerror_distinct)
{
    const tally_status_t all[] = {
#define TALLY_STATUS_LIST_(name, value, text) TALLY_##name,
        TALLY_STATUS_MAP(TALLY_STATUS_LIST_)
#undef TALLY_STATUS_LIST_
    };
    const size_t n = sizeof all / sizeof all[0];
    ck_assert_int_eq(TALLY_SUCCESS, 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert(i == 0 || all[i] < 0);
        ck_assert_ptr_nonnull(tally_strerror(all[i]));
        for (size_t j = 0; j < i; j++) {
            ck_assert_int_ne(all[i], all[j]);
            ck_assert_str_ne(tally_strerror(all[i]), tally_strerror(all[j]));
        }
    }
    ck_assert_str_eq(tally_strerror((tally_status_t)-999), "unknown tally status code");
}
END_TEST

START_TEST(test_version)
{
    ck_assert_uint_eq(tally_version(), TALLY_VERSION);
    ck_assert_uint_eq(TALLY_VERSION, TALLY_VERSION_MAJOR * 10000 + TALLY_VERSION_MINOR * 100 +
                                         TALLY_VERSION_PATCH);
}
END_TEST

START_TEST(test_parse_size)
{
    size_t v = 0;
    ck_assert(tally_config_parse_size("0", &v) && v == 0);
    ck_assert(tally_config_parse_size("4096", &v) && v == 4096);
    ck_assert(tally_config_parse_size("256K", &v) && v == 256 * 1024);
    ck_assert(tally_config_parse_size("3m", &v) && v == 3u << 20);
    ck_assert(tally_config_parse_size("1G", &v) && v == 1u << 30);
    v = 77;
    ck_assert(!tally_config_parse_size("", &v));
    ck_assert(!tally_config_parse_size("-1", &v));
    ck_assert(!tally_config_parse_size(" 1", &v));
    ck_assert(!tally_config_parse_size("1 K", &v));
    ck_assert(!tally_config_parse_size("12Q", &v));
    ck_assert(!tally_config_parse_size("1KB", &v));
    ck_assert(!tally_config_parse_size("99999999999999999999", &v));
    ck_assert(!tally_config_parse_size("17179869184G", &v)); /* 2^34 G overflows */
    ck_assert_uint_eq(v, 77);
    /* The public parser is the same one. */
    ck_assert_int_eq(tally_size_parse("256k", &v), TALLY_SUCCESS);
    ck_assert_uint_eq(v, 256 * 1024);
    ck_assert_int_eq(tally_size_parse("1KB", &v), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_size_parse(NULL, &v), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_size_parse("1", NULL), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(v, 256 * 1024);
}
END_TEST

START_TEST(test_parse_unsigned)
{
    unsigned v = 5;
    ck_assert(tally_config_parse_unsigned("12", &v) && v == 12);
    ck_assert(!tally_config_parse_unsigned("4294967296", &v));
    ck_assert(!tally_config_parse_unsigned("+3", &v));
    ck_assert(!tally_config_parse_unsigned("3x", &v));
    ck_assert_uint_eq(v, 12);
}
END_TEST

static void clear_env(void)
{
    unsetenv("TALLY_ALGO");
    unsetenv("TALLY_SEGMENT_SIZE");
    unsetenv("TALLY_PIPELINE_DEPTH");
    unsetenv("TALLY_FALLBACK");
    unsetenv("TALLY_LOG_LEVEL");
    unsetenv("TALLY_STATS");
    unsetenv("TALLY_TRACE");
}

START_TEST(test_config_defaults_and_env)
{
    clear_env();
    tally_config_t cfg;
    char err[256];
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_SUCCESS);
    ck_assert_str_eq(cfg.algo, "auto");
    ck_assert_uint_eq(cfg.segment_size, 256 * 1024);
    ck_assert_uint_eq(cfg.pipeline_depth, 4);
    ck_assert_int_eq(cfg.fallback, TALLY_FALLBACK_WARN);
    ck_assert_int_eq(cfg.log_level, TALLY_LOG_WARN);
    uint64_t default_hash = tally_config_hash(&cfg);

    setenv("TALLY_ALGO", "ring", 1);
    setenv("TALLY_SEGMENT_SIZE", "8K", 1);
    setenv("TALLY_FALLBACK", "ERROR", 1);
    setenv("TALLY_LOG_LEVEL", "debug", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_SUCCESS);
    ck_assert_str_eq(cfg.algo, "ring");
    ck_assert_uint_eq(cfg.segment_size, 8192);
    ck_assert_int_eq(cfg.fallback, TALLY_FALLBACK_ERROR);
    ck_assert_int_eq(cfg.log_level, TALLY_LOG_DEBUG);
    ck_assert_uint_ne(tally_config_hash(&cfg), default_hash);

    /* The log level alone does not change the hash: ranks may differ there. */
    tally_config_t quiet = cfg;
    quiet.log_level = TALLY_LOG_NONE;
    ck_assert_uint_eq(tally_config_hash(&quiet), tally_config_hash(&cfg));
    clear_env();
}
END_TEST

/* TALLY_TRACE is a path, off when empty; TALLY_STATS and the trace only
 * record what runs, so ranks may differ there (not in the hash). */
START_TEST(test_config_trace_stats_log)
{
    clear_env();
    tally_config_t cfg;
    char err[256];
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_SUCCESS);
    ck_assert_str_eq(cfg.trace, "");
    ck_assert_uint_eq(cfg.stats, 0);
    const uint64_t plain = tally_config_hash(&cfg);
    setenv("TALLY_TRACE", "/tmp/run", 1);
    setenv("TALLY_STATS", "1", 1);
    setenv("TALLY_LOG_LEVEL", "TRACE", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_SUCCESS);
    ck_assert_str_eq(cfg.trace, "/tmp/run");
    ck_assert_uint_eq(cfg.stats, 1);
    ck_assert_int_eq(cfg.log_level, TALLY_LOG_TRACE);
    ck_assert_int_gt(TALLY_LOG_TRACE, TALLY_LOG_DEBUG);
    ck_assert_uint_eq(tally_config_hash(&cfg), plain);
    ck_assert_int_eq(tally_config_log_level_from_env(), TALLY_LOG_TRACE);
    clear_env();
}
END_TEST

/* Every on/off variable takes the same words; a size with a unit letter
 * too many says which spelling was meant; a misspelt name is found. */
START_TEST(test_config_spelling)
{
    clear_env();
    tally_config_t cfg;
    char err[512];
    const char *bools[] = {"TALLY_PRELOAD", "TALLY_MODEL", "TALLY_STATS", "TALLY_CALIBRATE",
                           "TALLY_PROGRESS_THREAD", "TALLY_CHECK"};
    const char *words[][2] = {{"0", "1"}, {"off", "on"}, {"NO", "Yes"}, {"false", "TRUE"}};
    for (size_t b = 0; b < sizeof bools / sizeof bools[0]; b++)
        for (size_t w = 0; w < 4; w++)
            for (int v = 0; v < 2; v++) {
                setenv(bools[b], words[w][v], 1);
                ck_assert_msg(tally_config_load(&cfg, err, sizeof err) == TALLY_SUCCESS,
                              "%s=%s: %s", bools[b], words[w][v], err);
                unsetenv(bools[b]);
            }
    setenv("TALLY_STATS", "yes", 1);
    setenv("TALLY_MODEL", "0", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_SUCCESS);
    ck_assert_uint_eq(cfg.stats, 1);
    ck_assert_int_eq(cfg.model, 0);
    setenv("TALLY_STATS", "maybe", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    ck_assert_msg(strstr(err, "0 or 1 (or off/on") != NULL, "%s", err);
    clear_env();
    setenv("TALLY_SEGMENT_SIZE", "12KB", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    ck_assert_msg(strstr(err, "did you mean 12K?") != NULL, "%s", err);
    setenv("TALLY_SEGMENT_SIZE", "1MiB", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    ck_assert_msg(strstr(err, "did you mean 1M?") != NULL, "%s", err);
    clear_env();
    ck_assert(!tally_config_unknown(err, sizeof err));
    setenv("TALLY_TEST_ANYTHING", "1", 1); /* the tests' own */
    setenv("TALLY_LIBRARY", "/x", 1);      /* the Python binding's */
    ck_assert(!tally_config_unknown(err, sizeof err));
    setenv("TALLY_ALGORITHM", "ring", 1);
    ck_assert(tally_config_unknown(err, sizeof err));
    ck_assert_msg(strstr(err, "TALLY_ALGORITHM is not a tally variable (did you mean TALLY_ALGO?)"),
                  "%s", err);
    unsetenv("TALLY_ALGORITHM");
    setenv("TALLY_SEGMENTSIZE", "1K", 1);
    ck_assert(tally_config_unknown(err, sizeof err));
    ck_assert_msg(strstr(err, "did you mean TALLY_SEGMENT_SIZE?"), "%s", err);
    unsetenv("TALLY_SEGMENTSIZE");
    unsetenv("TALLY_TEST_ANYTHING");
    unsetenv("TALLY_LIBRARY");
    clear_env();
}
END_TEST

START_TEST(test_config_bad_value_changes_nothing)
{
    clear_env();
    tally_config_t cfg, before;
    memset(&cfg, 0x3c, sizeof cfg);
    before = cfg;
    char err[256] = "";
    setenv("TALLY_PIPELINE_DEPTH", "65", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    ck_assert_mem_eq(&cfg, &before, sizeof cfg);
    ck_assert_ptr_nonnull(strstr(err, "TALLY_PIPELINE_DEPTH"));
    ck_assert_ptr_nonnull(strstr(err, "1 to 64"));
    setenv("TALLY_PIPELINE_DEPTH", "2", 1);
    setenv("TALLY_LOG_LEVEL", "loud", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "one of none error warn info debug"));
    setenv("TALLY_LOG_LEVEL", "info", 1);
    setenv("TALLY_SEGMENT_SIZE", "0", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    setenv("TALLY_SEGMENT_SIZE", "2G", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    setenv("TALLY_SEGMENT_SIZE", "1G", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_SUCCESS);
    setenv("TALLY_ALGO", "a_name_that_is_far_too_long_to_be_any_algorithm_tally_will_have_x", 1);
    ck_assert_int_eq(tally_config_load(&cfg, err, sizeof err), TALLY_ERR_INVALID_CONFIG);
    clear_env();
}
END_TEST

START_TEST(test_config_print_lists_every_variable)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(tally_config_print(f), TALLY_SUCCESS);
    fclose(f);
    const char *vars[] = {"TALLY_ALGO", "TALLY_SEGMENT_SIZE", "TALLY_PIPELINE_DEPTH",
                          "TALLY_FALLBACK", "TALLY_LOG_LEVEL", "TALLY_TRACE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        ck_assert_msg(strstr(text, vars[i]) != NULL, "%s missing", vars[i]);
    ck_assert_ptr_nonnull(strstr(text, "default: 256K"));
    /* TALLY_ALGO's doc lists every algorithm, from the registry, with its
     * summary, before the next variable. */
    const char *algo = strstr(text, "TALLY_ALGO\n"), *next = strstr(text, "TALLY_SEGMENT_SIZE\n");
    ck_assert(algo && next && algo < next);
    for (int i = 0; i < tally_algorithm_count(); i++) {
        char row[128];
        snprintf(row, sizeof row, "      %s ", tally_algorithm_name(i));
        const char *at = strstr(algo, row);
        ck_assert_msg(at && at < next, "%s is not listed under TALLY_ALGO", row);
    }
    free(text);
    ck_assert_int_eq(tally_config_print(NULL), TALLY_ERR_INVALID_ARGUMENT);
}
END_TEST

/* Every variable the table prints is documented in tally(7), so the code
 * and the manual cannot drift apart. */
START_TEST(test_config_get)
{
    clear_env();
    char value[16] = "untouched";
    ck_assert_int_eq(tally_config_get("TALLY_SEGMENT_SIZE", value, sizeof value), TALLY_SUCCESS);
    ck_assert_str_eq(value, "256K");
    setenv("TALLY_ALGO", "ring", 1);
    ck_assert_int_eq(tally_config_get("TALLY_ALGO", value, sizeof value), TALLY_SUCCESS);
    ck_assert_str_eq(value, "ring");
    setenv("TALLY_LOG_LEVEL", "none", 1);
    setenv("TALLY_ALGO", "Ring!", 1);
    ck_assert_int_eq(tally_config_get("TALLY_ALGO", value, sizeof value),
                     TALLY_ERR_INVALID_CONFIG);
    ck_assert_str_eq(value, "ring");
    ck_assert_int_eq(tally_config_get("TALLY_NOPE", value, sizeof value),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_config_get("TALLY_SEGMENT_SIZE", value, 3),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_config_get(NULL, value, sizeof value), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(value, "ring");
    clear_env();
}
END_TEST

START_TEST(test_every_variable_in_man_page)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tally_config_print(f);
    fclose(f);
    FILE *man = fopen(TALLY_SOURCE_DIR "/man/tally.7", "r");
    ck_assert_msg(man != NULL, "man/tally.7 not found");
    static char page[1 << 16];
    size_t n = fread(page, 1, sizeof page - 1, man);
    page[n] = '\0';
    fclose(man);
    int found = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "TALLY_", 6) != 0)
            continue;
        found++;
        ck_assert_msg(strstr(page, line) != NULL, "%s is not in man/tally.7", line);
    }
    ck_assert_int_ge(found, 5);
    free(text);
}
END_TEST

/* Every function the public header exports has a man page in section 3. */
START_TEST(test_every_function_has_man_page)
{
    FILE *h = fopen(TALLY_SOURCE_DIR "/include/tally.h", "r");
    ck_assert_ptr_nonnull(h);
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, h)) {
        if (strncmp(line, "TALLY_API ", 10) != 0)
            continue;
        /* The name is the identifier just before the '('. */
        char *paren = strchr(line, '(');
        ck_assert_ptr_nonnull(paren);
        *paren = '\0';
        char *name = strrchr(line, ' ');
        ck_assert_ptr_nonnull(name);
        name += *(name + 1) == '*' ? 2 : 1;
        char path[700];
        snprintf(path, sizeof path, "%s/man/%s.3", TALLY_SOURCE_DIR, name);
        FILE *page = fopen(path, "r");
        ck_assert_msg(page != NULL, "no man page %s", path);
        fclose(page);
        found++;
    }
    fclose(h);
    ck_assert_int_ge(found, 8);
}
END_TEST

START_TEST(test_blocks_cover_exactly)
{
    const size_t counts[] = {0, 1, 2, 3, 7, 8, 100, 99991, ((size_t)1 << 20) + 3,
                             (size_t)INT_MAX + 5};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (size_t p = 1; p <= 9; p++) {
            size_t n = counts[c], next = 0, biggest = 0, smallest = SIZE_MAX;
            for (size_t b = 0; b < p; b++) {
                ck_assert_uint_eq(tally_block_offset(n, p, b), next);
                size_t len = tally_block_count(n, p, b);
                next += len;
                biggest = len > biggest ? len : biggest;
                smallest = len < smallest ? len : smallest;
            }
            ck_assert_uint_eq(next, n);
            ck_assert_uint_eq(tally_block_offset(n, p, p), n);
            ck_assert_uint_le(biggest - smallest, 1);
        }
    }
    /* Larger blocks come first. */
    ck_assert_uint_eq(tally_block_count(5, 3, 0), 2);
    ck_assert_uint_eq(tally_block_count(5, 3, 1), 2);
    ck_assert_uint_eq(tally_block_count(5, 3, 2), 1);
}
END_TEST

/* Whether `word` occurs in text as a whole word (not inside hier_leader
 * when looking for hier). */
static bool has_word(const char *text, const char *word)
{
    const size_t len = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        const char before = p == text ? ' ' : p[-1], after = p[len];
        const bool in_before = (before >= 'a' && before <= 'z') || before == '_' ||
                               (before >= '0' && before <= '9');
        const bool in_after = (after >= 'a' && after <= 'z') || after == '_' ||
                              (after >= '0' && after <= '9');
        if (!in_before && !in_after)
            return true;
    }
    return false;
}

static char *read_page(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/man/%s", TALLY_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s not found", path);
    static char page[1 << 17];
    size_t n = fread(page, 1, sizeof page - 1, f);
    ck_assert_msg(n < sizeof page - 1, "%s is larger than the test's buffer", path);
    page[n] = '\0';
    fclose(f);
    return strdup(page);
}

/* Every registered algorithm has its own entry under ALGORITHMS in
 * tally(7) and is named in tally-bench(1) (-a all), so a new algorithm
 * cannot ship undocumented. */
START_TEST(test_every_algorithm_in_man_pages)
{
    char *tally7 = read_page("tally.7"), *bench1 = read_page("tally-bench.1");
    const char *algorithms = strstr(tally7, "\n.SH ALGORITHMS\n");
    ck_assert_ptr_nonnull(algorithms);
    const char *end = strstr(algorithms + 1, "\n.SH ");
    ck_assert(tally_algorithm_count() >= 7);
    for (int i = 0; i < tally_algorithm_count(); i++) {
        const char *name = tally_algorithm_name(i);
        char entry[128];
        snprintf(entry, sizeof entry, "\n.TP\n.B %s\n", name);
        const char *at = strstr(algorithms, entry);
        ck_assert_msg(at && (!end || at < end), "%s has no entry under ALGORITHMS in tally.7",
                      name);
        ck_assert_msg(has_word(bench1, name), "%s is not in tally-bench.1", name);
    }
    free(tally7);
    free(bench1);
}
END_TEST

/* The public introspection reads the registry and the dtype/op tables. */
START_TEST(test_introspection)
{
    int n = 0;
    while (tally_algo_registry[n])
        n++;
    ck_assert_int_eq(tally_algorithm_count(), n);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(tally_algorithm_name(i), tally_algo_registry[i]->name);
        ck_assert_str_eq(tally_algorithm_summary(i), tally_algo_registry[i]->summary);
        ck_assert_ptr_eq(tally_algo_find(tally_algorithm_name(i)), tally_algo_registry[i]);
    }
    ck_assert_ptr_null(tally_algorithm_name(n));
    ck_assert_ptr_null(tally_algorithm_name(-1));
    ck_assert_ptr_null(tally_algorithm_summary(n));
    ck_assert_ptr_null(tally_algorithm_summary(-1));

    ck_assert_int_eq(tally_dtype_count(), TALLY_DTYPE_COUNT);
    ck_assert_int_eq(tally_op_count(), TALLY_OP_COUNT);
    ck_assert_int_eq(tally_op_check(TALLY_SUM, TALLY_BFLOAT16), TALLY_SUCCESS);
    ck_assert_int_eq(tally_op_check(TALLY_AVG, TALLY_INT32), TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_int_eq(tally_op_check(TALLY_BXOR, TALLY_FLOAT64), TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_int_eq(tally_op_check(TALLY_BXOR, TALLY_UINT16), TALLY_SUCCESS);
    ck_assert_int_eq(tally_op_check(TALLY_SUM, (tally_dtype_t)TALLY_DTYPE_COUNT),
                     TALLY_ERR_INVALID_DTYPE);
    ck_assert_int_eq(tally_op_check((tally_op_t)-1, TALLY_INT8), TALLY_ERR_INVALID_OP);
    tally_dtype_t d = TALLY_INT8;
    tally_op_t o = TALLY_SUM;
    ck_assert_int_eq(tally_dtype_parse("float", &d), TALLY_ERR_INVALID_DTYPE);
    ck_assert_int_eq(tally_dtype_parse("Float32", &d), TALLY_ERR_INVALID_DTYPE);
    ck_assert_int_eq(tally_dtype_parse(NULL, &d), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_dtype_parse("int8", NULL), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(d, TALLY_INT8);
    ck_assert_int_eq(tally_op_parse("mean", &o), TALLY_ERR_INVALID_OP);
    ck_assert_int_eq(tally_op_parse(NULL, &o), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(o, TALLY_SUM);
}
END_TEST

/* The one hash is 64-bit FNV-1a (its published test vectors), and a chain
 * of calls hashes the concatenation. */
START_TEST(test_hash)
{
    ck_assert_uint_eq(tally_hash_fnv1a(TALLY_HASH_INIT, "", 0), 0xcbf29ce484222325ull);
    ck_assert_uint_eq(tally_hash_fnv1a(TALLY_HASH_INIT, "a", 1), 0xaf63dc4c8601ec8cull);
    ck_assert_uint_eq(tally_hash_fnv1a(TALLY_HASH_INIT, "foobar", 6), 0x85944171f73967e8ull);
    uint64_t h = tally_hash_fnv1a(TALLY_HASH_INIT, "foo", 3);
    ck_assert_uint_eq(tally_hash_fnv1a(h, "bar", 3), 0x85944171f73967e8ull);
}
END_TEST

START_TEST(test_registry)
{
    const char *names[] = {"ring", "recursive_doubling", "rabenseifner", "mpi"};
    for (size_t i = 0; i < 4; i++) {
        const tally_algo_t *a = tally_algo_find(names[i]);
        ck_assert_ptr_nonnull(a);
        ck_assert_str_eq(a->name, names[i]);
        ck_assert_ptr_nonnull(a->run);
        ck_assert_ptr_nonnull(a->summary);
    }
    ck_assert_ptr_null(tally_algo_find("auto"));
    ck_assert_ptr_null(tally_algo_find("Ring"));
    ck_assert_ptr_null(tally_algo_find(""));
}
END_TEST

START_TEST(test_restrictions)
{
    const tally_algo_t *ring = tally_algo_find("ring"), *mpi = tally_algo_find("mpi");
    const char *why = NULL;
    ck_assert(tally_algo_fits(ring, TALLY_FLOAT16, TALLY_AVG, TALLY_MEM_HOST, &why));
    ck_assert(!tally_algo_fits(ring, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_DEVICE, &why));
    ck_assert_str_eq(why, "it needs host memory");
    ck_assert(!tally_algo_fits(mpi, TALLY_BFLOAT16, TALLY_SUM, TALLY_MEM_HOST, &why));
    ck_assert_str_eq(why, "it does not support this dtype");
    ck_assert(!tally_algo_fits(mpi, TALLY_INT8, TALLY_SUM, TALLY_MEM_HOST, NULL));
    ck_assert(!tally_algo_fits(mpi, TALLY_FLOAT64, TALLY_MIN, TALLY_MEM_HOST, &why));
    ck_assert(tally_algo_fits(mpi, TALLY_INT64, TALLY_MIN, TALLY_MEM_HOST, NULL));
    ck_assert(tally_algo_fits(mpi, TALLY_FLOAT32, TALLY_AVG, TALLY_MEM_HOST, NULL));
    /* Open MPI 4.1 saturates 16-bit sums too. */
    ck_assert(!tally_algo_fits(mpi, TALLY_INT16, TALLY_SUM, TALLY_MEM_HOST, NULL));
    ck_assert(!tally_algo_fits(mpi, TALLY_UINT16, TALLY_BAND, TALLY_MEM_HOST, NULL));
    ck_assert(tally_algo_fits(mpi, TALLY_UINT64, TALLY_LXOR, TALLY_MEM_HOST, NULL));
}
END_TEST

START_TEST(test_dtype_table)
{
    /* The public values never change: new ones are appended. */
    static const struct {
        tally_dtype_t dtype;
        int value;
        const char *name;
        size_t size;
        bool is_float;
    } dtypes[] = {
        {TALLY_INT8, 0, "int8", 1, false},       {TALLY_UINT8, 1, "uint8", 1, false},
        {TALLY_INT32, 2, "int32", 4, false},     {TALLY_UINT32, 3, "uint32", 4, false},
        {TALLY_INT64, 4, "int64", 8, false},     {TALLY_UINT64, 5, "uint64", 8, false},
        {TALLY_FLOAT16, 6, "float16", 2, true},  {TALLY_BFLOAT16, 7, "bfloat16", 2, true},
        {TALLY_FLOAT32, 8, "float32", 4, true},  {TALLY_FLOAT64, 9, "float64", 8, true},
        {TALLY_INT16, 10, "int16", 2, false},    {TALLY_UINT16, 11, "uint16", 2, false},
    };
    ck_assert_uint_eq(sizeof dtypes / sizeof dtypes[0], TALLY_DTYPE_COUNT);
    for (unsigned d = 0; d < TALLY_DTYPE_COUNT; d++) {
        tally_dtype_t parsed;
        ck_assert_int_eq(dtypes[d].dtype, dtypes[d].value);
        ck_assert_uint_eq(tally_dtype_size(dtypes[d].dtype), dtypes[d].size);
        ck_assert_str_eq(tally_dtype_name(dtypes[d].dtype), dtypes[d].name);
        ck_assert_int_eq(tally_dtype_parse(dtypes[d].name, &parsed), TALLY_SUCCESS);
        ck_assert_int_eq(parsed, dtypes[d].dtype);
        ck_assert_int_eq(tally_dtype_is_float(dtypes[d].dtype), dtypes[d].is_float);
    }
    ck_assert(!tally_dtype_valid((tally_dtype_t)TALLY_DTYPE_COUNT));
    ck_assert(!tally_dtype_valid((tally_dtype_t)-1));
    ck_assert_uint_eq(tally_dtype_size((tally_dtype_t)-1), 0);

    static const struct {
        tally_op_t op;
        int value;
        const char *name;
        bool integer_only;
    } ops[] = {
        {TALLY_SUM, 0, "sum", false},   {TALLY_PROD, 1, "prod", false},
        {TALLY_MIN, 2, "min", false},   {TALLY_MAX, 3, "max", false},
        {TALLY_AVG, 4, "avg", false},   {TALLY_BAND, 5, "band", true},
        {TALLY_BOR, 6, "bor", true},    {TALLY_BXOR, 7, "bxor", true},
        {TALLY_LAND, 8, "land", true},  {TALLY_LOR, 9, "lor", true},
        {TALLY_LXOR, 10, "lxor", true},
    };
    ck_assert_uint_eq(sizeof ops / sizeof ops[0], TALLY_OP_COUNT);
    for (unsigned o = 0; o < TALLY_OP_COUNT; o++) {
        tally_op_t parsed;
        ck_assert_int_eq(ops[o].op, ops[o].value);
        ck_assert_str_eq(tally_op_name(ops[o].op), ops[o].name);
        ck_assert_int_eq(tally_op_parse(ops[o].name, &parsed), TALLY_SUCCESS);
        ck_assert_int_eq(parsed, ops[o].op);
        ck_assert_int_eq(tally_op_needs_integer(ops[o].op), ops[o].integer_only);
        for (unsigned d = 0; d < TALLY_DTYPE_COUNT; d++) {
            bool fl = dtypes[d].is_float;
            bool want = ops[o].op == TALLY_AVG ? fl : ops[o].integer_only ? !fl : true;
            ck_assert_msg(tally_op_defined_on(ops[o].op, dtypes[d].dtype) == want, "%s on %s",
                          ops[o].name, dtypes[d].name);
        }
    }
    ck_assert(!tally_op_valid((tally_op_t)TALLY_OP_COUNT));
    ck_assert(!tally_op_defined_on((tally_op_t)TALLY_OP_COUNT, TALLY_INT32));
    ck_assert(!tally_op_defined_on(TALLY_SUM, (tally_dtype_t)TALLY_DTYPE_COUNT));
    ck_assert_str_eq(tally_op_name((tally_op_t)-1), "?");
    tally_op_t op;
    ck_assert_int_eq(tally_op_parse("mean", &op), TALLY_ERR_INVALID_OP);
    /* The algorithms' "everything" masks cover the new values. */
    ck_assert(TALLY_ALL_DTYPES & TALLY_DTYPE_BIT(TALLY_UINT16));
    ck_assert(TALLY_ALL_OPS & TALLY_OP_BIT(TALLY_LXOR));
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_strerror_distinct);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_parse_size);
    tcase_add_test(tc, test_parse_unsigned);
    tcase_add_test(tc, test_config_defaults_and_env);
    tcase_add_test(tc, test_config_trace_stats_log);
    tcase_add_test(tc, test_config_bad_value_changes_nothing);
    tcase_add_test(tc, test_config_spelling);
    tcase_add_test(tc, test_config_print_lists_every_variable);
    tcase_add_test(tc, test_config_get);
    tcase_add_test(tc, test_every_variable_in_man_page);
    tcase_add_test(tc, test_every_function_has_man_page);
    tcase_add_test(tc, test_blocks_cover_exactly);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_introspection);
    tcase_add_test(tc, test_every_algorithm_in_man_pages);
    tcase_add_test(tc, test_hash);
    tcase_add_test(tc, test_restrictions);
    tcase_add_test(tc, test_dtype_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
