/* test_whatif.c - clusters we do not have (tally_model_explain,
 * tally_model_print, select/whatif.h): specs that parse, with uneven nodes
 * and both placements, into the shape and model they say; specs that do
 * not, with TALLY_ERR_INVALID_ARGUMENT, a message naming the wrong part and
 * nothing written; and predictions that could be wrong: the ring's busbw
 * against the link on 32 x 1, hier ahead of the ring on 4 x 2 by node,
 * twice the bandwidth for half the time, and an explanation that names
 * what selection chooses.  No MPI. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo/algo.h"
#include "select/select.h"
#include "select/whatif.h"
#include "tally.h"

#define MiB ((size_t)1 << 20)

static tally_whatif_t *build(const char *spec)
{
    static tally_whatif_t w;
    char err[512] = "";
    tally_status_t st = tally_whatif_build(spec, &w, err, sizeof err);
    ck_assert_msg(st == TALLY_SUCCESS, "%s: %s (%s)", spec, tally_strerror(st), err);
    return &w;
}

/* What tally_model_explain writes for a float32 sum of `bytes`. */
static char *explain(const char *spec, size_t bytes)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tally_status_t st = tally_model_explain(spec, bytes / 4, TALLY_FLOAT32, TALLY_SUM, f);
    fclose(f);
    ck_assert_msg(st == TALLY_SUCCESS, "%s: %s", spec, tally_strerror(st));
    return text;
}

static double predict(const tally_whatif_t *w, const char *name, size_t bytes)
{
    const tally_algo_t *algo = tally_algo_find(name);
    ck_assert_ptr_nonnull(algo);
    ck_assert(tally_algo_fits_shape(algo, &w->shape, NULL));
    tally_cost_t cost = tally_select_cost(&w->model, &w->shape, bytes);
    return algo->predict(&cost);
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fabs(b);
}

START_TEST(test_shapes)
{
    tally_whatif_t *w = build("nodes=4,ppn=2");
    ck_assert_int_eq(w->shape.size, 8);
    ck_assert_int_eq(w->shape.nodes, 4);
    ck_assert_int_eq(w->shape.min_per_node, 2);
    ck_assert_int_eq(w->shape.max_per_node, 2);
    ck_assert_int_eq(w->shape.placement, TALLY_PLACEMENT_CONSECUTIVE);
    ck_assert(w->shape.oversubscription == 1.0);
    ck_assert_ptr_eq(w->sel.shape, &w->shape);
    ck_assert_ptr_null(w->sel.forced);
    ck_assert_uint_ge(w->sel.plan.nrules, 2);
    tally_whatif_free(w);

    w = build("nodes=4,ppn=2,placement=node");
    ck_assert_int_eq(w->shape.placement, TALLY_PLACEMENT_ROUND_ROBIN);
    for (int r = 0; r < 8; r++)
        ck_assert_int_eq(w->shape.node_of[r], r % 4);
    tally_whatif_free(w);

    /* Uneven nodes, one count per node; blanks around items are fine. */
    const int slot[5] = {0, 0, 1, 2, 2}, rr[5] = {0, 1, 2, 0, 2};
    w = build(" ppn=2, 1,2 ,placement=slot");
    ck_assert_int_eq(w->shape.size, 5);
    ck_assert_int_eq(w->shape.nodes, 3);
    ck_assert_int_eq(w->shape.min_per_node, 1);
    ck_assert_int_eq(w->shape.max_per_node, 2);
    ck_assert_int_eq(w->shape.placement, TALLY_PLACEMENT_CONSECUTIVE);
    for (int r = 0; r < 5; r++)
        ck_assert_int_eq(w->shape.node_of[r], slot[r]);
    tally_whatif_free(w);
    /* By node: round-robin over the nodes that still have a free slot. */
    w = build("nodes=3,ppn=2,1,2,placement=node");
    for (int r = 0; r < 5; r++)
        ck_assert_int_eq(w->shape.node_of[r], rr[r]);
    ck_assert_int_eq(w->shape.placement, TALLY_PLACEMENT_SCATTERED);
    tally_whatif_free(w);

    /* Cores make a node oversubscribed; packages split a node's ranks. */
    w = build("nodes=2,ppn=8,cores=4,packages=2,cache=2M");
    ck_assert(w->shape.oversubscription == 2.0);
    ck_assert_int_eq(w->shape.min_node_pus, 4);
    ck_assert_int_eq(w->shape.max_per_package, 4);
    ck_assert_uint_eq(w->shape.min_cache_bytes, 2 * MiB);
    ck_assert_uint_eq(w->model.cache_bytes, 2 * MiB);
    ck_assert(tally_shape_same_package(&w->shape, 0, 3));
    ck_assert(!tally_shape_same_package(&w->shape, 3, 4));
    tally_whatif_free(w);
}
END_TEST

START_TEST(test_figures)
{
    tally_model_t defaults;
    tally_model_defaults(&defaults, NULL);
    tally_whatif_t *w = build("nodes=2,ppn=1");
    ck_assert(w->model.what_if);
    ck_assert(near(w->model.link[TALLY_LEVEL_NETWORK].beta,
                   defaults.link[TALLY_LEVEL_NETWORK].beta));
    ck_assert(near(w->model.gamma, defaults.gamma));
    ck_assert_uint_eq(w->model.shm_chunk, 256 << 10);
    tally_whatif_free(w);

    w = build("nodes=2,ppn=4,latency=2us,bandwidth=100gbit,node_latency=300ns,"
              "node_bandwidth=20GB/s,copy=15GB/s,reduce=10GiB/s,barrier=0.5us,chunk=1M");
    const tally_model_t *m = &w->model;
    ck_assert(near(m->link[TALLY_LEVEL_NETWORK].alpha, 2e-6));
    ck_assert(near(m->link[TALLY_LEVEL_NETWORK].beta, 1.0 / 12.5e9));
    ck_assert(near(m->link[TALLY_LEVEL_PACKAGE].alpha, 300e-9));
    ck_assert(near(m->link[TALLY_LEVEL_NODE].alpha, 300e-9));
    ck_assert(near(m->link[TALLY_LEVEL_PACKAGE].beta, 1.0 / 20e9));
    ck_assert(near(m->link[TALLY_LEVEL_NODE].beta, 1.0 / 20e9));
    ck_assert(near(m->copy, 1.0 / 15e9));
    ck_assert(near(m->gamma, 1.0 / (10.0 * 1073741824.0)));
    ck_assert(near(m->shm_sync, 0.5e-6));
    ck_assert_uint_eq(m->shm_chunk, MiB);
    ck_assert_uint_eq(w->config.shm_chunk, MiB);
    ck_assert(near(m->duplex, 1.0));
    tally_whatif_free(w);

    /* duplex slows the pairwise exchanges of recursive doubling, not the
     * one-way ring. */
    const size_t bytes = (size_t)4 << 20;
    w = build("nodes=4,ppn=1,bandwidth=1gbit");
    const double rd_whole = predict(w, "recursive_doubling", bytes);
    const double ring_whole = predict(w, "ring", bytes);
    tally_whatif_free(w);
    const char *shares[] = {"0.5", "50%"};
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++) {
        char spec[96];
        snprintf(spec, sizeof spec, "nodes=4,ppn=1,bandwidth=1gbit,duplex=%s", shares[i]);
        w = build(spec);
        ck_assert_msg(near(w->model.duplex, 0.5), "%s", spec);
        ck_assert(predict(w, "recursive_doubling", bytes) > 1.9 * rd_whole);
        ck_assert(near(predict(w, "ring", bytes), ring_whole));
        tally_whatif_free(w);
    }

    /* The same rate in other units; times in every unit. */
    const char *rates[] = {"12.5GB/s", "100Gbit", "100000mbit", "1e5Mbit/s", "12500MB/s"};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        char spec[96];
        snprintf(spec, sizeof spec, "nodes=2,ppn=1,bandwidth=%s", rates[i]);
        w = build(spec);
        ck_assert_msg(near(w->model.link[TALLY_LEVEL_NETWORK].beta, 1.0 / 12.5e9), "%s", spec);
        tally_whatif_free(w);
    }
    const char *times[] = {"0.000002s", "0.002ms", "2us", "2000ns"};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char spec[96];
        snprintf(spec, sizeof spec, "nodes=2,ppn=1,latency=%s", times[i]);
        w = build(spec);
        ck_assert_msg(near(w->model.link[TALLY_LEVEL_NETWORK].alpha, 2e-6), "%s", spec);
        tally_whatif_free(w);
    }
    /* The environment does not change a what-if. */
    setenv("TALLY_MODEL", "off", 1);
    setenv("TALLY_ALGO", "ring", 1);
    setenv("TALLY_SHM_CHUNK", "64K", 1);
    w = build("nodes=2,ppn=2");
    ck_assert_int_eq(w->config.model, 1);
    ck_assert_ptr_null(w->sel.forced);
    ck_assert_uint_eq(w->config.shm_chunk, 256 << 10);
    ck_assert_int_eq(w->sel.plan.rules[0].source, TALLY_RULE_MODEL);
    tally_whatif_free(w);
}
END_TEST

START_TEST(test_bad_specs)
{
    setenv("TALLY_LOG_LEVEL", "none", 1);
    static const struct {
        const char *spec, *names;
    } bad[] = {
        {"", "empty"},
        {"   ", "empty"},
        {"nodes=4", "ppn= is missing"},
        {"ppn=8", "nodes= is missing"},
        {"nodes=3,ppn=2,1", "nodes=3 but ppn= lists 2 nodes"},
        {"nodes=0,ppn=2", "\"nodes=0\""},
        {"nodes=4,ppn=-2", "\"ppn=-2\""},
        {"nodes=4,ppn=2x", "\"ppn=2x\""},
        {"nodes=4,ppn=2,1,x", "\"x\""},
        {"nodes=4,ppn=2,foo=1", "no key \"foo\""},
        {"nodes=4,ppn=2,nodes=4", "nodes= is given twice"},
        {"nodes=4,ppn=2,,latency=1us", "empty item"},
        {"nodes=4,ppn=2,", "empty item"},
        {"nodes=4,latency=1us,2,ppn=2", "\"2\" is not key=value"},
        {"nodes=4,ppn=2,placement=cyclic", "\"placement=cyclic\""},
        {"nodes=4,ppn=2,bandwidth=100", "\"bandwidth=100\""},
        {"nodes=4,ppn=2,bandwidth=100Gb/s", "\"bandwidth=100Gb/s\""},
        {"nodes=4,ppn=2,bandwidth=100gbyte", "\"bandwidth=100gbyte\""},
        {"nodes=4,ppn=2,bandwidth=0gbit", "\"bandwidth=0gbit\""},
        {"nodes=4,ppn=2,bandwidth=0x10gbit", "\"bandwidth=0x10gbit\""},
        {"nodes=4,ppn=2,bandwidth=inf", "\"bandwidth=inf\""},
        {"nodes=4,ppn=2,latency=5", "\"latency=5\""},
        {"nodes=4,ppn=2,latency=-1us", "\"latency=-1us\""},
        {"nodes=4,ppn=2,latency=1 us", "\"latency=1 us\""},
        {"nodes=4,ppn=2,copy=", "\"copy=\""},
        {"nodes=4,ppn=2,chunk=1K", "\"chunk=1K\""},
        {"nodes=4,ppn=2,cache=100", "\"cache=100\""},
        {"nodes=4,ppn=2,cores=0", "\"cores=0\""},
        {"nodes=4,ppn=2,duplex=0", "\"duplex=0\""},
        {"nodes=4,ppn=2,duplex=1.5", "\"duplex=1.5\""},
        {"nodes=4,ppn=2,duplex=90", "\"duplex=90\""},
        {"nodes=4,ppn=2,duplex=0x0.8", "\"duplex=0x0.8\""},
        {"nodes=4,ppn=2,duplex=half", "\"duplex=half\""},
        {"nodes=65536,ppn=2", "131072 ranks"},
        {"=4,ppn=2", "no key \"\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tally_whatif_t w;
        w.shape.size = -7; /* untouched on failure */
        char err[512] = "";
        ck_assert_int_eq(tally_whatif_build(bad[i].spec, &w, err, sizeof err),
                         TALLY_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(w.shape.size, -7);
        ck_assert_msg(strstr(err, bad[i].names) != NULL, "\"%s\": \"%s\" does not name %s",
                      bad[i].spec, err, bad[i].names);
        ck_assert_msg(strncmp(err, "what-if spec: ", 14) == 0, "%s", err);

        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        ck_assert_int_eq(tally_model_explain(bad[i].spec, 1024, TALLY_FLOAT32, TALLY_SUM, f),
                         TALLY_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(tally_model_print(bad[i].spec, f), TALLY_ERR_INVALID_ARGUMENT);
        fclose(f);
        ck_assert_msg(len == 0, "\"%s\" wrote \"%s\"", bad[i].spec, text);
        free(text);
    }
    /* Other arguments, checked before the spec; nothing written. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *good = "nodes=2,ppn=2";
    ck_assert_int_eq(tally_model_explain(NULL, 4, TALLY_FLOAT32, TALLY_SUM, f),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_model_explain(good, 4, TALLY_FLOAT32, TALLY_SUM, NULL),
                     TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_model_explain(good, 4, (tally_dtype_t)99, TALLY_SUM, f),
                     TALLY_ERR_INVALID_DTYPE);
    ck_assert_int_eq(tally_model_explain(good, 4, TALLY_FLOAT32, (tally_op_t)99, f),
                     TALLY_ERR_INVALID_OP);
    ck_assert_int_eq(tally_model_explain(good, 4, TALLY_INT32, TALLY_AVG, f),
                     TALLY_ERR_OP_DTYPE_MISMATCH);
    ck_assert_int_eq(tally_model_explain(good, SIZE_MAX / 2, TALLY_FLOAT32, TALLY_SUM, f),
                     TALLY_ERR_COUNT_TOO_LARGE);
    ck_assert_int_eq(tally_model_print(NULL, f), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_model_print(good, NULL), TALLY_ERR_INVALID_ARGUMENT);
    fclose(f);
    ck_assert_uint_eq(len, 0);
    free(text);
}
END_TEST

/* The line of `name` among the candidates in an explanation. */
static const char *candidate_line(const char *text, const char *name, char *line, size_t len)
{
    char key[64];
    snprintf(key, sizeof key, "\n    %-20s ", name);
    const char *at = strstr(text, key);
    ck_assert_msg(at != NULL, "no line for %s in:\n%s", name, text);
    at++;
    size_t n = strcspn(at, "\n");
    snprintf(line, len, "%.*s", (int)n, at);
    return line;
}

/* 32 nodes of one rank (Patarasuk and Yuan's ring measurements): at a
 * large size the ring moves 2(p-1)/p of the vector through each link,
 * so its busbw approaches the link rate and cannot pass it. */
START_TEST(test_ring_busbw_against_link)
{
    const char *specs[] = {"nodes=32,ppn=1,bandwidth=1gbit,latency=50us",
                           "nodes=32,ppn=1,bandwidth=100mbit,latency=100us",
                           "nodes=32,ppn=1"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        tally_whatif_t *w = build(specs[i]);
        const size_t bytes = 256 * MiB;
        double t = predict(w, "ring", bytes);
        double busbw = (double)bytes / t * 2.0 * 31 / 32;
        double link = 1.0 / w->model.link[TALLY_LEVEL_NETWORK].beta;
        ck_assert_msg(busbw > 0.5 * link && busbw < link, "%s: busbw %g of link %g", specs[i],
                      busbw, link);
        /* The explanation shows the same share. */
        char *text = explain(specs[i], bytes), line[256], pct[16];
        snprintf(pct, sizeof pct, " %4.0f%%", 100.0 * busbw / link);
        candidate_line(text, "ring", line, sizeof line);
        ck_assert_msg(strstr(line, pct) != NULL, "%s: \"%s\" lacks%s", specs[i], line, pct);
        ck_assert_msg(strstr(text, "share of the") != NULL, "%s", text);
        free(text);
        tally_whatif_free(w);
    }
}
END_TEST

/* 4 nodes x 2 ranks, round-robin: every ring hop crosses the network and
 * two ranks of a node share its link, while hier sends each node's data
 * across once. */
START_TEST(test_hier_ahead_of_ring)
{
    const char *spec = "nodes=4,ppn=2,placement=node";
    tally_whatif_t *w = build(spec);
    const size_t bytes = 64 * MiB;
    tally_choice_t choice;
    ck_assert_int_eq(tally_select(&w->sel, bytes, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true,
                                  &choice),
                     TALLY_SUCCESS);
    ck_assert_str_eq(choice.algo->name, "hier");
    double hier = predict(w, "hier", bytes), ring = predict(w, "ring", bytes);
    ck_assert_msg(hier < ring, "hier %g, ring %g", hier, ring);
    char *text = explain(spec, bytes), line[256];
    ck_assert_msg(strstr(text, "runs hier: model row") != NULL, "%s", text);
    ck_assert_msg(strstr(candidate_line(text, "hier", line, sizeof line), "<- runs"), "%s", line);
    free(text);
    tally_whatif_free(w);
}
END_TEST

/* Where the network bounds the ring, twice the bandwidth halves its time. */
START_TEST(test_bandwidth_halves_time)
{
    const size_t bytes = 256 * MiB;
    tally_whatif_t *w = build("nodes=32,ppn=1,bandwidth=1gbit");
    double slow = predict(w, "ring", bytes);
    tally_whatif_free(w);
    w = build("nodes=32,ppn=1,bandwidth=2gbit");
    double fast = predict(w, "ring", bytes);
    tally_whatif_free(w);
    ck_assert_msg(slow / fast > 1.8 && slow / fast < 2.2, "1 gbit %g s, 2 gbit %g s", slow,
                  fast);
}
END_TEST

/* The explanation names what selection on the same plan chooses, on
 * shapes with and without hier, uneven nodes and one node. */
START_TEST(test_explanation_names_the_choice)
{
    const char *specs[] = {"nodes=1,ppn=8",
                           "nodes=32,ppn=1,bandwidth=1gbit",
                           "nodes=128,ppn=8,bandwidth=100gbit,latency=2us",
                           "ppn=4,2,3,placement=node,bandwidth=25gbit",
                           "nodes=2,ppn=4,cores=2"};
    const size_t sizes[] = {8, 4096, 64 << 10, MiB, 256 * MiB};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            tally_whatif_t *w = build(specs[i]);
            tally_choice_t choice;
            ck_assert_int_eq(tally_select(&w->sel, sizes[k], TALLY_FLOAT32, TALLY_SUM,
                                          TALLY_MEM_HOST, true, &choice),
                             TALLY_SUCCESS);
            char *text = explain(specs[i], sizes[k]), runs[96], heading[96], line[256];
            snprintf(runs, sizeof runs, "\n  runs %s: ", choice.algo->name);
            snprintf(heading, sizeof heading, "%zu bytes (%zu x float32, sum) on %d rank%s, ",
                     sizes[k], sizes[k] / 4, w->shape.size, w->shape.size == 1 ? "" : "s");
            ck_assert_msg(strncmp(text, heading, strlen(heading)) == 0, "%s", text);
            ck_assert_msg(strstr(text, runs) != NULL, "%s %zu: not \"%s\":\n%s", specs[i],
                          sizes[k], runs + 1, text);
            candidate_line(text, choice.algo->name, line, sizeof line);
            ck_assert_msg(strstr(line, "<- runs") != NULL, "%s", line);
            ck_assert_msg(strstr(text, "what-if figures") != NULL, "%s", text);
            free(text);
            tally_whatif_free(w);
        }
    }
}
END_TEST

START_TEST(test_print)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(tally_model_print("ppn=8,8,8,4,bandwidth=100mbit", f), TALLY_SUCCESS);
    fclose(f);
    const char *want[] = {
        "communicator: 28 ranks on 4 nodes, 4-8 ranks per node (uneven), placement consecutive "
        "(by node)\n",
        "ranks per node: 8 (x3), 4\n",
        "cost model (the what-if spec's figures, built-in constants for the rest):\n",
        "  across nodes  alpha    10.00 us   beta  12.50 MB/s\n",
        "rules (first match wins",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "no \"%s\" in:\n%s", want[i], text);
    free(text);

    f = open_memstream(&text, &len);
    ck_assert_int_eq(tally_model_print("ppn=2,2,1,1,2,placement=node", f), TALLY_SUCCESS);
    fclose(f);
    ck_assert_msg(strstr(text, "placement scattered\nranks per node: 2, 2, 1, 1, 2\n"), "%s",
                  text);
    free(text);
}
END_TEST

static Suite *whatif_suite(void)
{
    Suite *s = suite_create("whatif");
    TCase *tc = tcase_create("whatif");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_figures);
    tcase_add_test(tc, test_bad_specs);
    tcase_add_test(tc, test_ring_busbw_against_link);
    tcase_add_test(tc, test_hier_ahead_of_ring);
    tcase_add_test(tc, test_bandwidth_halves_time);
    tcase_add_test(tc, test_explanation_names_the_choice);
    tcase_add_test(tc, test_print);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(whatif_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
