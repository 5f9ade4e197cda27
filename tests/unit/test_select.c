/* test_select.c - the communicator shape, the cost model's rows and the
 * rule table: ranges at their edges, the precedence of the sources
 * (TALLY_ALGO > tuning file > model > built-in), rows that cannot serve a
 * call, unknown names, a missing file, and the per-communicator cache.  No
 * MPI communication: the shape comes from hand-made allgather entries. */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algo/pof2.h"
#include "core/comm.h"
#include "select/select.h"
#include "topo/model.h"
#include "topo/shape.h"

/* Entries for `size` ranks where rank r lives on node node_of[r], a node
 * of `pus` PUs. */
static tally_shape_t shape_on(int size, const int *node_of, int rank, int pus)
{
    tally_shape_entry_t e[64];
    for (int r = 0; r < size; r++) {
        int leader = r;
        for (int q = 0; q < r; q++)
            if (node_of[q] == node_of[r]) {
                leader = q;
                break;
            }
        e[r] = (tally_shape_entry_t){leader, -1, pus, 0};
    }
    tally_shape_t s;
    ck_assert_int_eq(tally_shape_derive(size, rank, e, &s), TALLY_SUCCESS);
    return s;
}

static tally_shape_t shape_of(int size, const int *node_of, int rank)
{
    return shape_on(size, node_of, rank, 2);
}

START_TEST(test_shape_placements)
{
    const int by_node[6] = {0, 0, 0, 1, 1, 1};
    tally_shape_t s = shape_of(6, by_node, 4);
    ck_assert_int_eq(s.nodes, 2);
    ck_assert_int_eq(s.min_per_node, 3);
    ck_assert_int_eq(s.max_per_node, 3);
    ck_assert_int_eq(s.placement, TALLY_PLACEMENT_CONSECUTIVE);
    ck_assert_int_eq(s.node, 1);
    ck_assert_int_eq(s.local_rank, 1);
    ck_assert_int_eq(s.local_size, 3);
    ck_assert(s.oversubscription > 1.49 && s.oversubscription < 1.51); /* 3 ranks, 2 PUs */
    ck_assert_int_eq(s.max_per_package, 0);                              /* unbound */
    tally_shape_free(&s);

    const int rr[6] = {0, 1, 2, 0, 1, 2};
    s = shape_of(6, rr, 5);
    ck_assert_int_eq(s.nodes, 3);
    ck_assert_int_eq(s.placement, TALLY_PLACEMENT_ROUND_ROBIN);
    ck_assert_int_eq(s.node, 2);
    ck_assert_int_eq(s.local_rank, 1);
    tally_shape_free(&s);

    const int uneven[3] = {0, 0, 1};
    s = shape_of(3, uneven, 0);
    ck_assert_int_eq(s.min_per_node, 1);
    ck_assert_int_eq(s.max_per_node, 2);
    ck_assert_int_eq(s.placement, TALLY_PLACEMENT_CONSECUTIVE);
    tally_shape_free(&s);

    const int scattered[4] = {0, 1, 1, 0};
    s = shape_of(4, scattered, 0);
    ck_assert_int_eq(s.placement, TALLY_PLACEMENT_SCATTERED);
    tally_shape_free(&s);

    const int one[1] = {0};
    s = shape_of(1, one, 0);
    ck_assert_int_eq(s.placement, TALLY_PLACEMENT_ONE_NODE);
    ck_assert(s.oversubscription == 1.0);
    tally_shape_free(&s);
}
END_TEST

START_TEST(test_shape_packages_and_bad_entries)
{
    /* 4 ranks, one node, bound 3 to package 0 and 1 to package 1. */
    tally_shape_entry_t e[4] = {{0, 0, 8, 512}, {0, 0, 8, 1024}, {0, 1, 8, 0}, {0, 0, 8, 2048}};
    tally_shape_t s;
    ck_assert_int_eq(tally_shape_derive(4, 2, e, &s), TALLY_SUCCESS);
    ck_assert_int_eq(s.max_per_package, 3);
    ck_assert_uint_eq(s.min_cache_bytes, 512 << 10); /* the smallest known */
    ck_assert(tally_shape_same_package(&s, 0, 1));
    ck_assert(!tally_shape_same_package(&s, 0, 2));
    ck_assert(s.oversubscription == 1.0);
    tally_shape_free(&s);

    s.size = -7; /* must stay untouched on failure */
    tally_shape_entry_t bad_leader[2] = {{1, -1, 0, 0}, {1, -1, 0, 0}}; /* leader after rank 0 */
    ck_assert_int_eq(tally_shape_derive(2, 0, bad_leader, &s), TALLY_ERR_INVALID_ARGUMENT);
    tally_shape_entry_t not_a_leader[2] = {{0, -1, 0, 0}, {5, -1, 0, 0}};
    ck_assert_int_eq(tally_shape_derive(2, 0, not_a_leader, &s), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_shape_derive(2, 2, e, &s), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(s.size, -7);
}
END_TEST

/* The model's rows cover every byte count once, in order. */
static void check_model_rows(const tally_shape_t *shape)
{
    tally_model_t model;
    tally_model_defaults(&model, NULL);
    tally_plan_rule_t rows[128];
    size_t n = tally_model_rules(shape, &model, rows, 128);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(rows[0].min_bytes, 0);
    size_t i = 1;
    for (; i < n && rows[i].min_bytes != 0; i++) {
        ck_assert_uint_eq(rows[i].min_bytes, rows[i - 1].max_bytes + 1);
        ck_assert_ptr_ne(rows[i].algo, rows[i - 1].algo); /* neighbours merged */
    }
    ck_assert_uint_eq(rows[i - 1].max_bytes, SIZE_MAX);
    for (size_t k = 0; k < n; k++) {
        ck_assert_int_eq(rows[k].source, TALLY_RULE_MODEL);
        ck_assert_uint_le(rows[k].min_bytes, rows[k].max_bytes);
    }
    /* The best predicted at a point, among the host algorithms that fit
     * the shape, is the row's algorithm there. */
    size_t probe[] = {8, 1 << 20, (size_t)64 << 20};
    for (size_t p = 0; p < 3; p++) {
        tally_cost_t cost = tally_select_cost(&model, shape, probe[p]);
        const tally_plan_rule_t *row = NULL;
        for (size_t k = 0; k < n && !row; k++)
            if (probe[p] >= rows[k].min_bytes && probe[p] <= rows[k].max_bytes)
                row = &rows[k];
        ck_assert_ptr_nonnull(row);
        double chosen = row->algo->predict(&cost);
        for (const tally_algo_t *const *a = tally_algo_registry; *a; a++)
            if (tally_algo_fits_shape(*a, shape, NULL) &&
                !((*a)->restrictions.flags & TALLY_ALGO_DEVICE_ONLY))
                ck_assert(chosen <= (*a)->predict(&cost));
    }
}

START_TEST(test_model_rows)
{
    const int one[8] = {0};
    const int two[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    const int rr[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    for (int size = 1; size <= 8; size++) {
        tally_shape_t s = shape_of(size, one, 0);
        check_model_rows(&s);
        tally_shape_free(&s);
    }
    tally_shape_t s = shape_of(8, two, 0);
    check_model_rows(&s);
    tally_shape_free(&s);
    s = shape_of(8, rr, 0);
    check_model_rows(&s);
    tally_shape_free(&s);
}
END_TEST

START_TEST(test_model_network_contention)
{
    /* The ring runs node by node whatever the placement: round robin
     * costs what blocks by node cost, each node's link crossed once each
     * way; recursive doubling, which pairs ranks by number, crosses the
     * network in different steps but as often. */
    const int blocks[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    const int rr[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    tally_model_t model;
    tally_model_defaults(&model, NULL);
    tally_shape_t a = shape_on(8, blocks, 0, 64), b = shape_on(8, rr, 0, 64);
    tally_cost_t ca = tally_select_cost(&model, &a, (size_t)64 << 20);
    tally_cost_t cb = tally_select_cost(&model, &b, (size_t)64 << 20);
    const tally_algo_t *ring = tally_algo_find("ring");
    ck_assert_double_eq_tol(ring->predict(&cb), ring->predict(&ca), 1e-12);
    /* And the network dominates: more than an intra-node-only shape. */
    const int one[8] = {0};
    tally_shape_t c = shape_on(8, one, 0, 64);
    tally_cost_t cc = tally_select_cost(&model, &c, (size_t)64 << 20);
    ck_assert(ring->predict(&ca) > ring->predict(&cc));
    tally_shape_free(&a);
    tally_shape_free(&b);
    tally_shape_free(&c);
}
END_TEST

/* Ranks 0 and 1 send to ranks 2 and 3, nothing comes back. */
static int fan_in(const tally_shape_t *shape, int rank, int unused)
{
    (void)shape;
    (void)unused;
    return rank < 2 ? rank + 2 : -1;
}

START_TEST(test_model_flows_per_direction)
{
    tally_model_t model;
    tally_model_defaults(&model, NULL);
    const double bytes = 4 << 20;
    const tally_link_cost_t *net = &model.link[TALLY_LEVEL_NETWORK];
    const double flow = net->alpha + model.rendezvous, per_flow = bytes * net->beta;
    /* Nodes 0 and 1 send one flow each into node 2: its link carries two. */
    const int into_one[4] = {0, 1, 2, 2};
    tally_shape_t s = shape_on(4, into_one, 0, 64);
    tally_cost_t c = tally_select_cost(&model, &s, (size_t)bytes);
    ck_assert_double_eq_tol(tally_cost_step(&c, fan_in, 0, bytes), flow + 2 * per_flow, 1e-12);
    tally_shape_free(&s);
    /* 2 x 2 by slot, places 0 2 1 3, distance 1: two pairwise exchanges
     * through the link. */
    const int blocks[4] = {0, 0, 1, 1};
    s = shape_on(4, blocks, 0, 64);
    c = tally_select_cost(&model, &s, (size_t)bytes);
    ck_assert_double_eq_tol(tally_cost_step(&c, tally_pof2_partner, 1, bytes),
                            flow + 2 * per_flow, 1e-12);
    ck_assert_double_eq_tol(tally_cost_step(&c, fan_in, 0, bytes), flow + 2 * per_flow, 1e-12);
    /* Where both ways at once reach half the one-way rate, the pairwise
     * exchange takes twice as long and the one-way steps do not. */
    model.duplex = 0.5;
    ck_assert_double_eq_tol(tally_cost_step(&c, tally_pof2_partner, 1, bytes),
                            flow + 4 * per_flow, 1e-12);
    ck_assert_double_eq_tol(tally_cost_step(&c, fan_in, 0, bytes), flow + 2 * per_flow, 1e-12);
    tally_shape_free(&s);
}
END_TEST

/* The folded pairs (`peers`: each rank's other rank, or -1) and the
 * participants' places of `size` ranks on nodes node_of. */
static void check_pof2(int size, const int *node_of, const int *peers, const int *places)
{
    tally_shape_t s = shape_of(size, node_of, 0);
    int pof2 = 1;
    while (pof2 * 2 <= size)
        pof2 *= 2;
    for (int r = 0; r < size; r++) {
        ck_assert_int_eq(s.fold_peer[r], peers[r]);
        /* The lower rank of a pair sits out. */
        ck_assert_int_eq(s.newrank_of[r] < 0, peers[r] > r);
    }
    for (int k = 0; k < pof2; k++) {
        ck_assert_int_eq(s.participants[k], places[k]);
        ck_assert_int_eq(s.newrank_of[places[k]], k);
    }
    tally_shape_free(&s);
}

START_TEST(test_ring_runs_node_by_node)
{
    /* 2, 1, 2 by node: nodes numbered by first rank, ranks in order. */
    const int uneven[5] = {0, 1, 2, 0, 2}, want[5] = {0, 3, 1, 2, 4};
    tally_shape_t s = shape_of(5, uneven, 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(s.ring_order[i], want[i]);
        ck_assert_int_eq(s.ring_position[want[i]], i);
    }
    tally_shape_free(&s);
    const int slot[6] = {0, 0, 1, 1, 2, 2};
    s = shape_of(6, slot, 0);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(s.ring_order[i], i);
    tally_shape_free(&s);
}
END_TEST

START_TEST(test_fold_pairs_share_a_node)
{
    /* Blocks by node: pairs (0, 1) (2, 3); the others, node by node, take
     * bit-reversed places. */
    const int slot[6] = {0, 0, 1, 1, 2, 2}, slot_peers[6] = {1, 0, 3, 2, -1, -1};
    const int slot_places[4] = {1, 4, 3, 5};
    check_pof2(6, slot, slot_peers, slot_places);
    const int one[7] = {0}, one_peers[7] = {1, 0, 3, 2, 5, 4, -1}, one_places[4] = {1, 5, 3, 6};
    check_pof2(7, one, one_peers, one_places);
    /* One rank per node: the first two pair across nodes. */
    const int apart[3] = {0, 1, 2}, apart_peers[3] = {1, 0, -1}, apart_places[2] = {1, 2};
    check_pof2(3, apart, apart_peers, apart_places);
    /* 3 x 2 by node: the pairs are (0, 3) and (1, 4), on their nodes. */
    const int by_node[6] = {0, 1, 2, 0, 1, 2}, by_node_peers[6] = {3, 4, -1, 0, 1, -1};
    const int by_node_places[4] = {3, 2, 4, 5};
    check_pof2(6, by_node, by_node_peers, by_node_places);
    /* 1, 2, 2 by slot: rank 0 is alone, (1, 2) folds. */
    const int uneven[5] = {0, 1, 1, 2, 2}, uneven_peers[5] = {-1, 2, 1, -1, -1};
    const int uneven_places[4] = {0, 3, 2, 4};
    check_pof2(5, uneven, uneven_peers, uneven_places);
    /* Too few pairs on a node: the next unpaired ranks pair across nodes. */
    const int lonely[6] = {0, 1, 2, 3, 4, 0}, lonely_peers[6] = {5, 2, 1, -1, -1, 0};
    const int lonely_places[4] = {5, 3, 2, 4};
    check_pof2(6, lonely, lonely_peers, lonely_places);

    /* By node, the fold and the unfold stay on the node: cheaper than one
     * flow across nodes. */
    tally_model_t model;
    tally_model_defaults(&model, NULL);
    tally_shape_t s = shape_on(6, by_node, 0, 64);
    const double bytes = 4 << 20;
    tally_cost_t c = tally_select_cost(&model, &s, (size_t)bytes);
    const tally_link_cost_t *net = &model.link[TALLY_LEVEL_NETWORK];
    ck_assert(tally_cost_step(&c, tally_pof2_fold_partner, 0, bytes) < bytes * net->beta);
    ck_assert(tally_cost_deliver(&c, tally_pof2_unfold_partner, 0, bytes) < bytes * net->beta);
    ck_assert_int_eq(tally_pof2_fold_partner(&s, 0, 0), 3);
    ck_assert_int_eq(tally_pof2_fold_partner(&s, 3, 0), -1);
    ck_assert_int_eq(tally_pof2_unfold_partner(&s, 4, 0), 1);
    ck_assert_int_eq(tally_pof2_unfold_partner(&s, 1, 0), -1);
    /* Places 3 2 4 5: at distance 1, 3 <-> 2 and 4 <-> 5; at 2, 3 <-> 4. */
    ck_assert_int_eq(tally_pof2_partner(&s, 3, 1), 2);
    ck_assert_int_eq(tally_pof2_partner(&s, 4, 1), 5);
    ck_assert_int_eq(tally_pof2_partner(&s, 3, 2), 4);
    ck_assert_int_eq(tally_pof2_partner(&s, 0, 1), -1);
    tally_shape_free(&s);

    /* 2 x 2 by slot, places 0 2 1 3: Rabenseifner's first halving (distance
     * 2, half the vector) stays on the nodes. */
    const int blocks[4] = {0, 0, 1, 1};
    s = shape_on(4, blocks, 0, 64);
    c = tally_select_cost(&model, &s, (size_t)bytes);
    ck_assert_int_eq(tally_pof2_partner(&s, 0, 2), 1);
    ck_assert(tally_cost_step(&c, tally_pof2_partner, 2, bytes / 2) < bytes / 2 * net->beta);
    tally_shape_free(&s);
}
END_TEST

/* A communicator object without MPI, enough for tally_select. */
typedef struct fake {
    struct tally_comm comm;
    char path[64];
} fake_t;

static void clear_env(void)
{
    const char *vars[] = {"TALLY_ALGO",        "TALLY_SEGMENT_SIZE", "TALLY_FALLBACK",
                          "TALLY_LOG_LEVEL",   "TALLY_TUNING_FILE",  "TALLY_MODEL",
                          "TALLY_CALIBRATE",   "TALLY_SHM_CHUNK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("TALLY_LOG_LEVEL", "none", 1);
}

/* Writes `text` to a temporary file and points TALLY_TUNING_FILE at it. */
static void tuning_file(fake_t *f, const char *text)
{
    strcpy(f->path, "/tmp/tally-test-select-XXXXXX");
    int fd = mkstemp(f->path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("TALLY_TUNING_FILE", f->path, 1);
}

static tally_status_t fake_make(fake_t *f, int size, int nodes)
{
    memset(&f->comm, 0, sizeof f->comm);
    char err[256];
    ck_assert_int_eq(tally_config_load(&f->comm.config, err, sizeof err), TALLY_SUCCESS);
    if (strcmp(f->comm.config.algo, "auto") != 0)
        f->comm.sel.forced = tally_algo_find(f->comm.config.algo);
    int node_of[64];
    for (int r = 0; r < size; r++)
        node_of[r] = r * nodes / size;
    f->comm.size = size;
    f->comm.shape = shape_of(size, node_of, 0);
    tally_model_defaults(&f->comm.model, NULL);
    f->comm.sel.shape = &f->comm.shape;
    f->comm.sel.config = &f->comm.config;
    return tally_plan_build(&f->comm.sel.plan, &f->comm.config, &f->comm.shape, &f->comm.model, 0);
}

static void fake_free(fake_t *f)
{
    tally_plan_free(&f->comm.sel.plan);
    tally_shape_free(&f->comm.shape);
    if (f->path[0])
        unlink(f->path);
}

static const char *chosen(fake_t *f, size_t bytes, tally_dtype_t dtype, tally_op_t op)
{
    tally_choice_t c;
    ck_assert_int_eq(tally_select(&f->comm.sel, bytes, dtype, op, TALLY_MEM_HOST, true, &c),
                     TALLY_SUCCESS);
    return c.algo->name;
}

START_TEST(test_file_rows_edges_and_precedence)
{
    clear_env();
    fake_t f = {0};
    tuning_file(&f, "# ranks nodes bytes algorithm segment\n"
                    "4 1 100-199 rabenseifner 4K\n"
                    "4 1 200 ring\n"
                    "4 2 0-* mpi\n"            /* other node count: not this comm */
                    "3 1 0-* mpi\n"            /* other size */
                    "2-8 1 1000-2000 no_such_algorithm\n"
                    "4 1 1000-2000 ring\n"
                    "4 1 1500-3000 rabenseifner\n"); /* overlaps: the first wins */
    ck_assert_int_eq(fake_make(&f, 4, 1), TALLY_SUCCESS);
    ck_assert_str_eq(chosen(&f, 100, TALLY_FLOAT32, TALLY_SUM), "rabenseifner");
    ck_assert_str_eq(chosen(&f, 199, TALLY_FLOAT32, TALLY_SUM), "rabenseifner");
    ck_assert_str_eq(chosen(&f, 200, TALLY_FLOAT32, TALLY_SUM), "ring");
    ck_assert_str_eq(chosen(&f, 1000, TALLY_FLOAT32, TALLY_SUM), "ring");
    ck_assert_str_eq(chosen(&f, 2000, TALLY_FLOAT32, TALLY_SUM), "ring");
    ck_assert_str_eq(chosen(&f, 2001, TALLY_FLOAT32, TALLY_SUM), "rabenseifner");
    ck_assert_str_eq(chosen(&f, 3000, TALLY_FLOAT32, TALLY_SUM), "rabenseifner");
    /* The row's segment size is used; elsewhere TALLY_SEGMENT_SIZE. */
    tally_choice_t c;
    ck_assert_int_eq(tally_select(&f.comm.sel, 150, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true, &c),
                     TALLY_SUCCESS);
    ck_assert_uint_eq(c.segment_size, 4096);
    ck_assert_int_eq(c.rule->source, TALLY_RULE_FILE);
    ck_assert_uint_eq(c.rule->line, 2);
    ck_assert_int_eq(tally_select(&f.comm.sel, 200, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true, &c),
                     TALLY_SUCCESS);
    ck_assert_uint_eq(c.segment_size, 256 * 1024);
    /* Outside the file's rows, the model's row decides. */
    ck_assert_int_eq(tally_select(&f.comm.sel, 99, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true, &c),
                     TALLY_SUCCESS);
    ck_assert_int_eq(c.rule->source, TALLY_RULE_MODEL);
    ck_assert_int_eq(tally_select(&f.comm.sel, 201, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true, &c),
                     TALLY_SUCCESS);
    ck_assert_int_eq(c.rule->source, TALLY_RULE_MODEL);
    /* Rows for other shapes and the unknown name are not in the plan. */
    for (size_t i = 0; i < f.comm.sel.plan.nrules; i++)
        ck_assert(f.comm.sel.plan.rules[i].source != TALLY_RULE_FILE ||
                  strcmp(f.comm.sel.plan.rules[i].algo->name, "mpi") != 0);
    uint64_t hash = f.comm.sel.plan.hash;
    fake_free(&f);

    /* TALLY_MODEL=off: the built-in rows come right after the file's. */
    setenv("TALLY_MODEL", "off", 1);
    tuning_file(&f, "4 1 100-199 rabenseifner 4K\n");
    ck_assert_int_eq(fake_make(&f, 4, 1), TALLY_SUCCESS);
    ck_assert_uint_ne(f.comm.sel.plan.hash, hash);
    ck_assert_int_eq(tally_select(&f.comm.sel, 99, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true, &c),
                     TALLY_SUCCESS);
    ck_assert_int_eq(c.rule->source, TALLY_RULE_BUILTIN);
    ck_assert_str_eq(c.algo->name, "mpi");
    ck_assert_str_eq(chosen(&f, 2048, TALLY_FLOAT32, TALLY_SUM), "mpi");
    ck_assert_str_eq(chosen(&f, 2049, TALLY_FLOAT32, TALLY_SUM), "shm"); /* one node */
    fake_free(&f);
    /* Two nodes of two ranks: the hierarchical rows; one rank per node: flat. */
    unsetenv("TALLY_TUNING_FILE");
    f.path[0] = '\0';
    ck_assert_int_eq(fake_make(&f, 4, 2), TALLY_SUCCESS);
    ck_assert_str_eq(chosen(&f, 16384, TALLY_FLOAT32, TALLY_SUM), "hier_leader");
    ck_assert_str_eq(chosen(&f, 16385, TALLY_FLOAT32, TALLY_SUM), "hier");
    fake_free(&f);
    ck_assert_int_eq(fake_make(&f, 4, 4), TALLY_SUCCESS);
    ck_assert_str_eq(chosen(&f, 2049, TALLY_FLOAT32, TALLY_SUM), "recursive_doubling");
    ck_assert_str_eq(chosen(&f, 65536, TALLY_FLOAT32, TALLY_SUM), "recursive_doubling");
    ck_assert_str_eq(chosen(&f, 65537, TALLY_FLOAT32, TALLY_SUM), "ring");
    fake_free(&f);

    /* TALLY_ALGO beats the file. */
    setenv("TALLY_ALGO", "ring", 1);
    tuning_file(&f, "4 1 0-* rabenseifner\n");
    ck_assert_int_eq(fake_make(&f, 4, 1), TALLY_SUCCESS);
    ck_assert_str_eq(chosen(&f, 150, TALLY_FLOAT32, TALLY_SUM), "ring");
    ck_assert_str_eq(chosen(&f, 1 << 20, TALLY_FLOAT32, TALLY_SUM), "ring");
    fake_free(&f);
}
END_TEST

START_TEST(test_rows_that_cannot_serve)
{
    clear_env();
    fake_t f = {0};
    /* mpi cannot serve float16 or float MIN: the next matching row does. */
    tuning_file(&f, "* * 0-1M mpi\n* * 0-1M rabenseifner\n");
    ck_assert_int_eq(fake_make(&f, 4, 1), TALLY_SUCCESS);
    ck_assert_str_eq(chosen(&f, 4096, TALLY_FLOAT32, TALLY_SUM), "mpi");
    ck_assert_str_eq(chosen(&f, 4096, TALLY_FLOAT16, TALLY_SUM), "rabenseifner");
    ck_assert_str_eq(chosen(&f, 4096, TALLY_FLOAT64, TALLY_MIN), "rabenseifner");
    ck_assert_str_eq(chosen(&f, 4096, TALLY_INT64, TALLY_MIN), "mpi");
    /* The cache answers per (bytes, dtype, op): asking again agrees. */
    ck_assert_str_eq(chosen(&f, 4096, TALLY_FLOAT16, TALLY_SUM), "rabenseifner");
    ck_assert_str_eq(chosen(&f, 4096, TALLY_FLOAT32, TALLY_SUM), "mpi");
    /* Device memory: no host-only row fits; on one node without NCCL, ipc
     * serves it. */
    tally_choice_t c;
    ck_assert_int_eq(tally_select(&f.comm.sel, 4096, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_DEVICE, true, &c),
                     TALLY_SUCCESS);
    ck_assert_str_eq(c.algo->name, "ipc");
    fake_free(&f);

    /* Forced mpi on float16: the fallback policy decides. */
    unsetenv("TALLY_TUNING_FILE");
    f.path[0] = '\0';
    setenv("TALLY_ALGO", "mpi", 1);
    setenv("TALLY_FALLBACK", "error", 1);
    ck_assert_int_eq(fake_make(&f, 4, 1), TALLY_SUCCESS);
    ck_assert_int_eq(tally_select(&f.comm.sel, 64, TALLY_FLOAT16, TALLY_SUM, TALLY_MEM_HOST, true, &c),
                     TALLY_ERR_UNSUPPORTED);
    fake_free(&f);
    setenv("TALLY_FALLBACK", "silent", 1);
    ck_assert_int_eq(fake_make(&f, 4, 1), TALLY_SUCCESS);
    ck_assert_int_eq(tally_select(&f.comm.sel, 64, TALLY_FLOAT16, TALLY_SUM, TALLY_MEM_HOST, true, &c),
                     TALLY_SUCCESS);
    ck_assert_str_ne(c.algo->name, "mpi");
    ck_assert_ptr_nonnull(c.rule); /* tally's own row */
    fake_free(&f);
}
END_TEST

START_TEST(test_missing_and_empty_files)
{
    clear_env();
    fake_t f = {0};
    ck_assert_int_eq(fake_make(&f, 2, 1), TALLY_SUCCESS);
    strcpy(f.comm.config.tuning_file, "/nonexistent/tally.tune");
    tally_plan_t untouched = {.nrules = 12345};
    ck_assert_int_eq(tally_plan_build(&untouched, &f.comm.config, &f.comm.shape, &f.comm.model, 0),
                     TALLY_ERR_INVALID_CONFIG);
    ck_assert_uint_eq(untouched.nrules, 12345);
    fake_free(&f);

    /* An empty file and no file give the same table. */
    tuning_file(&f, "");
    ck_assert_int_eq(fake_make(&f, 2, 1), TALLY_SUCCESS);
    uint64_t empty = f.comm.sel.plan.hash;
    fake_free(&f);
    unsetenv("TALLY_TUNING_FILE");
    f.path[0] = '\0';
    ck_assert_int_eq(fake_make(&f, 2, 1), TALLY_SUCCESS);
    ck_assert_uint_eq(f.comm.sel.plan.hash, empty);
    fake_free(&f);
}
END_TEST

/* shm fits one node only; hier and hier_leader need several nodes and a
 * node with two ranks or more; rows, model rows and forced choices obey. */
START_TEST(test_shape_restrictions)
{
    const tally_algo_t *shm = tally_algo_find("shm"), *hier = tally_algo_find("hier"),
                       *leader = tally_algo_find("hier_leader"), *ring = tally_algo_find("ring");
    ck_assert(shm && hier && leader && ring);
    const int one[4] = {0, 0, 0, 0}, two[4] = {0, 0, 1, 1}, singles[4] = {0, 1, 2, 3},
              uneven[3] = {0, 0, 1};
    tally_shape_t s1 = shape_of(4, one, 0), s2 = shape_of(4, two, 0),
                  s4 = shape_of(4, singles, 0), s3 = shape_of(3, uneven, 2);
    const char *why = NULL;
    ck_assert(tally_algo_fits_shape(shm, &s1, NULL));
    ck_assert(!tally_algo_fits_shape(shm, &s2, &why));
    ck_assert_ptr_nonnull(strstr(why, "one node"));
    ck_assert(!tally_algo_fits_shape(hier, &s1, NULL));
    ck_assert(!tally_algo_fits_shape(leader, &s1, NULL));
    ck_assert(tally_algo_fits_shape(hier, &s2, NULL));
    ck_assert(tally_algo_fits_shape(leader, &s3, NULL));
    why = NULL;
    ck_assert(!tally_algo_fits_shape(hier, &s4, &why)); /* one rank per node */
    ck_assert_ptr_nonnull(strstr(why, "two ranks"));
    ck_assert(tally_algo_fits_shape(ring, &s4, NULL));

    /* The model's rows never name an algorithm that does not fit; on two
     * nodes of two ranks a hierarchical one wins the large sizes, on one
     * node shm does. */
    tally_model_t model;
    tally_model_defaults(&model, NULL);
    const tally_shape_t *shapes[] = {&s1, &s2, &s3, &s4};
    for (size_t i = 0; i < 4; i++) {
        tally_plan_rule_t rows[128];
        size_t n = tally_model_rules(shapes[i], &model, rows, 128);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(tally_algo_fits_shape(rows[k].algo, shapes[i], NULL),
                          "model row %zu names %s, which does not fit", k, rows[k].algo->name);
    }
    tally_cost_t c1 = tally_select_cost(&model, &s1, (size_t)64 << 20);
    tally_cost_t c2 = tally_select_cost(&model, &s2, (size_t)64 << 20);
    ck_assert(shm->predict(&c1) < ring->predict(&c1));
    ck_assert(hier->predict(&c2) < ring->predict(&c2));
    tally_shape_free(&s1);
    tally_shape_free(&s2);
    tally_shape_free(&s3);
    tally_shape_free(&s4);

    /* A file row for hier on one node is dropped (the next row serves), and
     * a forced shm on two nodes falls back by TALLY_FALLBACK. */
    clear_env();
    fake_t f = {0};
    tuning_file(&f, "4 * 0-* hier\n"
                    "4 * 0-* rabenseifner\n");
    ck_assert_int_eq(fake_make(&f, 4, 1), TALLY_SUCCESS);
    ck_assert_str_eq(chosen(&f, 1 << 20, TALLY_FLOAT32, TALLY_SUM), "rabenseifner");
    fake_free(&f);
    clear_env();
    setenv("TALLY_ALGO", "shm", 1);
    setenv("TALLY_FALLBACK", "error", 1);
    fake_t g = {0};
    ck_assert_int_eq(fake_make(&g, 4, 2), TALLY_SUCCESS);
    tally_choice_t choice;
    ck_assert_int_eq(tally_select(&g.comm.sel, 4096, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true,
                                  &choice),
                     TALLY_ERR_UNSUPPORTED);
    g.comm.config.fallback = TALLY_FALLBACK_SILENT;
    ck_assert_int_eq(tally_select(&g.comm.sel, 4096, TALLY_FLOAT32, TALLY_SUM, TALLY_MEM_HOST, true,
                                  &choice),
                     TALLY_SUCCESS);
    ck_assert(choice.algo != shm);
    fake_free(&g);
    clear_env();
}
END_TEST

static Suite *select_suite(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("select");
    tcase_add_test(tc, test_shape_placements);
    tcase_add_test(tc, test_shape_packages_and_bad_entries);
    tcase_add_test(tc, test_model_rows);
    tcase_add_test(tc, test_model_flows_per_direction);
    tcase_add_test(tc, test_fold_pairs_share_a_node);
    tcase_add_test(tc, test_ring_runs_node_by_node);
    tcase_add_test(tc, test_model_network_contention);
    tcase_add_test(tc, test_file_rows_edges_and_precedence);
    tcase_add_test(tc, test_rows_that_cannot_serve);
    tcase_add_test(tc, test_missing_and_empty_files);
    tcase_add_test(tc, test_shape_restrictions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(select_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
