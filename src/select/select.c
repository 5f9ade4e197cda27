/* select.c - the rule table and the choice per call (see select.h).
 *
 * The rows are data, keyed by algorithm name; they are resolved once per
 * communicator (tally_plan_build), so a call compares byte ranges and
 * restriction bits only, and then not even that once its answer is in the
 * plan's cache. */
#include "select.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/log.h"

_Static_assert(TALLY_RULE_NAME_MAX == TALLY_ALGO_NAME_MAX, "one name limit");

/* Used when TALLY_MODEL=off, and behind the model's rows for calls no row
 * can serve.  Measured with tally-bench -R 5 on 1 node x 2..5 ranks: the
 * MPI's own allreduce is hard to beat for a few words; recursive doubling's
 * single exchange wins up to 64 KiB (256 KiB on 2 ranks, where it moves no
 * more than a ring); the pipelined ring wins beyond.  With shared memory
 * (measured the same way): shm beats all of them on one node from 512 B
 * (2 ranks) and more so when ranks share cores; across nodes hier moves a
 * node's data once, hier_leader is for small messages. */
static const tally_rule_t builtin_rules[] = {
    /* ranks       nodes        bytes               segment  algorithm */
    {1, INT_MAX, 2, INT_MAX, 0, (size_t)16 << 10, 0, "hier_leader", TALLY_RULE_BUILTIN, 0},
    {1, INT_MAX, 2, INT_MAX, 0, SIZE_MAX, 0, "hier", TALLY_RULE_BUILTIN, 0},
    {1, INT_MAX, 1, INT_MAX, 0, 2048, 0, "mpi", TALLY_RULE_BUILTIN, 0},
    {1, INT_MAX, 1, 1, 2049, SIZE_MAX, 0, "shm", TALLY_RULE_BUILTIN, 0},
    {1, 2, 1, INT_MAX, 0, (size_t)256 << 10, 0, "recursive_doubling", TALLY_RULE_BUILTIN, 0},
    {1, INT_MAX, 1, INT_MAX, 0, (size_t)64 << 10, 0, "recursive_doubling", TALLY_RULE_BUILTIN, 0},
    {1, INT_MAX, 1, INT_MAX, 0, SIZE_MAX, 0, "ring", TALLY_RULE_BUILTIN, 0},
};
#define BUILTIN_RULES (sizeof builtin_rules / sizeof builtin_rules[0])

/* The model's rows: one candidate size per power of two up to 2^40, ranges
 * meeting at the geometric midpoints; two sets of at most 41 rows. */
#define MODEL_POINTS 41
#define MODEL_ROWS (2 * MODEL_POINTS)

const char *tally_rule_source_name(tally_rule_source_t source)
{
    switch (source) {
    case TALLY_RULE_FILE: return "file";
    case TALLY_RULE_MODEL: return "model";
    case TALLY_RULE_BUILTIN: return "built-in";
    }
    return "?";
}

static bool unrestricted(const tally_algo_t *algo)
{
    const tally_algo_restrictions_t *r = &algo->restrictions;
    return r->dtypes == TALLY_ALL_DTYPES && r->ops == TALLY_ALL_OPS &&
           !(r->flags & TALLY_ALGO_NO_FLOAT_MINMAX);
}

const tally_algo_t *tally_select_cheapest(const tally_cost_t *cost,
                                          bool (*accept)(const tally_algo_t *algo,
                                                         const void *ctx),
                                          const void *ctx, double *seconds)
{
    const tally_algo_t *best = NULL;
    double best_t = INFINITY;
    for (const tally_algo_t *const *a = tally_algo_registry; *a; a++) {
        /* The model prices host memory; device buffers take their
         * algorithms in registry order (nccl, ipc, staged). */
        if (!(*a)->predict || ((*a)->restrictions.flags & TALLY_ALGO_DEVICE_ONLY) ||
            !tally_algo_fits_shape(*a, cost->shape, NULL) || (accept && !accept(*a, ctx)))
            continue;
        double t = (*a)->predict(cost);
        if (t < best_t) {
            best_t = t;
            best = *a;
        }
    }
    if (seconds)
        *seconds = best_t;
    return best;
}

static double cheapest_seconds(const tally_cost_t *cost)
{
    double t;
    tally_select_cheapest(cost, NULL, NULL, &t);
    return t;
}

tally_cost_t tally_select_cost(const tally_model_t *model, const tally_shape_t *shape,
                               size_t bytes)
{
    tally_cost_t cost = tally_cost_make(model, shape, bytes);
    cost.cheapest = cheapest_seconds;
    return cost;
}

static bool accept_unrestricted(const tally_algo_t *algo, const void *ctx)
{
    (void)ctx;
    return unrestricted(algo);
}

/* Appends rows for the points where `use[k]`, merging neighbours with the
 * same winner; ranges meet at the geometric midpoint of two sizes. */
static size_t emit_rows(const tally_algo_t *const *winner, const bool *use,
                        tally_plan_rule_t *rows, size_t n, size_t max)
{
    for (int k = 0; k < MODEL_POINTS && n < max; k++) {
        if (!use[k] || !winner[k])
            continue;
        size_t lo = k == 0 ? 0 : (size_t)((double)((size_t)1 << k) / M_SQRT2) + 1;
        int last = k;
        while (last + 1 < MODEL_POINTS && use[last + 1] && winner[last + 1] == winner[k])
            last++;
        size_t hi = last + 1 == MODEL_POINTS
                        ? SIZE_MAX
                        : (size_t)((double)((size_t)1 << (last + 1)) / M_SQRT2);
        rows[n++] = (tally_plan_rule_t){lo, hi, winner[k], 0, TALLY_RULE_MODEL, 0};
        k = last;
    }
    return n;
}

size_t tally_model_rules(const tally_shape_t *shape, const tally_model_t *model,
                         tally_plan_rule_t *rows, size_t max)
{
    const tally_algo_t *any[MODEL_POINTS], *plain[MODEL_POINTS];
    bool all[MODEL_POINTS], restricted[MODEL_POINTS];
    for (int k = 0; k < MODEL_POINTS; k++) {
        tally_cost_t cost = tally_select_cost(model, shape, (size_t)1 << k);
        any[k] = tally_select_cheapest(&cost, NULL, NULL, NULL);
        plain[k] = tally_select_cheapest(&cost, accept_unrestricted, NULL, NULL);
        all[k] = true;
        restricted[k] = any[k] && !unrestricted(any[k]);
    }
    /* Behind a restricted winner (mpi cannot serve float16, say), the
     * cheapest algorithm that serves everything. */
    size_t n = emit_rows(any, all, rows, 0, max);
    return emit_rows(plain, restricted, rows, n, max);
}

/* Reports problems in the tuning file from rank 0 only. */
typedef struct report_ctx {
    const char *path;
    int rank;
} report_ctx_t;

static void report_line(void *ctx, unsigned line, const char *message)
{
    const report_ctx_t *rc = ctx;
    if (rc->rank == 0)
        TALLY_LOG(NULL, TALLY_LOG_WARN, "%s:%u: %s; line ignored", rc->path, line, message);
}

static bool row_matches(const tally_rule_t *row, const tally_shape_t *shape)
{
    return shape->size >= row->min_ranks && shape->size <= row->max_ranks &&
           shape->nodes >= row->min_nodes && shape->nodes <= row->max_nodes;
}

/* Resolves `row` into rows[*n] if it applies to this shape and names an
 * algorithm tally has; an unknown name disables the row with a warning. */
static void add_row(const tally_rule_t *row, const tally_shape_t *shape, const char *path,
                    int rank, tally_plan_rule_t *rows, size_t *n)
{
    const tally_algo_t *algo = tally_algo_find(row->algo);
    if (!algo) {
        if (rank == 0)
            TALLY_LOG(NULL, TALLY_LOG_WARN,
                      "%s:%u: no algorithm named \"%s\" in this tally; row disabled", path,
                      row->line, row->algo);
        return;
    }
    if (row_matches(row, shape) && tally_algo_fits_shape(algo, shape, NULL))
        rows[(*n)++] = (tally_plan_rule_t){row->min_bytes, row->max_bytes, algo,
                                           row->segment, row->source, row->line};
}

static uint64_t hash_rules(const tally_plan_rule_t *rows, size_t n)
{
    uint64_t h = TALLY_HASH_INIT;
    for (size_t i = 0; i < n; i++) {
        uint64_t fields[4] = {rows[i].min_bytes, rows[i].max_bytes, rows[i].segment,
                              (uint64_t)rows[i].source};
        h = tally_hash_fnv1a(h, fields, sizeof fields);
        h = tally_hash_fnv1a(h, rows[i].algo->name, strlen(rows[i].algo->name) + 1);
    }
    return h;
}

tally_status_t tally_plan_build(tally_plan_t *plan, const tally_config_t *cfg,
                                const tally_shape_t *shape, const tally_model_t *model,
                                int rank)
{
    tally_rule_t *file_rows = NULL;
    size_t nfile = 0;
    if (cfg->tuning_file[0] != '\0') {
        file_rows = malloc(TALLY_TUNING_MAX_RULES * sizeof *file_rows);
        if (!file_rows)
            return TALLY_ERR_NO_MEMORY;
        report_ctx_t ctx = {cfg->tuning_file, rank};
        char err[TALLY_PATH_MAX + 128];
        if (!tally_tuning_load(cfg->tuning_file, file_rows, TALLY_TUNING_MAX_RULES, &nfile,
                               report_line, &ctx, err, sizeof err)) {
            TALLY_LOG(NULL, TALLY_LOG_ERROR, "TALLY_TUNING_FILE: %s", err);
            free(file_rows);
            return TALLY_ERR_INVALID_CONFIG;
        }
    }
    tally_plan_rule_t *rows = malloc((nfile + MODEL_ROWS + BUILTIN_RULES) * sizeof *rows);
    if (!rows) {
        free(file_rows);
        return TALLY_ERR_NO_MEMORY;
    }
    size_t n = 0;
    for (size_t i = 0; i < nfile; i++)
        add_row(&file_rows[i], shape, cfg->tuning_file, rank, rows, &n);
    free(file_rows);
    if (cfg->model)
        n += tally_model_rules(shape, model, rows + n, MODEL_ROWS);
    for (size_t i = 0; i < BUILTIN_RULES; i++)
        add_row(&builtin_rules[i], shape, "built-in rules", rank, rows, &n);

    tally_plan_t built = {.rules = rows, .nrules = n, .hash = hash_rules(rows, n)};
    *plan = built;
    return TALLY_SUCCESS;
}

void tally_plan_free(tally_plan_t *plan)
{
    free(plan->rules);
    plan->rules = NULL;
    plan->nrules = 0;
}

static void write_bytes(FILE *stream, size_t lo, size_t hi)
{
    char buf[64];
    if (hi == SIZE_MAX)
        snprintf(buf, sizeof buf, "%zu-", lo);
    else
        snprintf(buf, sizeof buf, "%zu-%zu", lo, hi);
    fprintf(stream, "%-26s", buf);
}

void tally_plan_write(const tally_plan_t *plan, const tally_config_t *cfg, FILE *stream)
{
    fprintf(stream, "rules (first match wins; a row whose algorithm cannot serve a call is "
                    "passed over):\n");
    fprintf(stream, "  %-26s %-20s %-10s %s\n", "bytes", "algorithm", "segment", "source");
    for (size_t i = 0; i < plan->nrules; i++) {
        const tally_plan_rule_t *r = &plan->rules[i];
        fprintf(stream, "  ");
        write_bytes(stream, r->min_bytes, r->max_bytes);
        char seg[32];
        if (r->segment)
            snprintf(seg, sizeof seg, "%zu", r->segment);
        else
            snprintf(seg, sizeof seg, "default");
        fprintf(stream, " %-20s %-10s %s", r->algo->name, seg,
                tally_rule_source_name(r->source));
        if (r->source == TALLY_RULE_FILE)
            fprintf(stream, " %s:%u", cfg->tuning_file, r->line);
        fputc('\n', stream);
    }
}

static unsigned registry_bit(const tally_algo_t *algo)
{
    unsigned i = 0;
    while (tally_algo_registry[i] != algo)
        i++;
    return 1u << i;
}

/* The forced algorithm cannot serve this call: apply the fallback policy.
 * Returns TALLY_SUCCESS when tally's own choice should run instead. */
static tally_status_t forced_does_not_fit(tally_selector_t *sel, const char *why,
                                          tally_dtype_t dtype, tally_op_t op, bool quiet)
{
    const char *name = sel->forced->name;
    switch (sel->config->fallback) {
    case TALLY_FALLBACK_ERROR:
        if (quiet)
            return TALLY_ERR_UNSUPPORTED;
        TALLY_LOG(sel->log, TALLY_LOG_ERROR,
                  "forced algorithm %s cannot serve %s %s: %s (TALLY_FALLBACK=error)", name,
                  tally_dtype_name(dtype), tally_op_name(op), why);
        return TALLY_ERR_UNSUPPORTED;
    case TALLY_FALLBACK_WARN:
        if (!quiet && !(sel->fallback_warned & registry_bit(sel->forced))) {
            sel->fallback_warned |= registry_bit(sel->forced);
            TALLY_LOG(sel->log, TALLY_LOG_WARN,
                      "forced algorithm %s cannot serve %s %s: %s; using tally's own "
                      "choice (warned once per communicator)",
                      name, tally_dtype_name(dtype), tally_op_name(op), why);
        }
        return TALLY_SUCCESS;
    case TALLY_FALLBACK_SILENT:
        return TALLY_SUCCESS;
    }
    return TALLY_SUCCESS;
}

static size_t cache_slot(size_t bytes, tally_dtype_t dtype, tally_op_t op,
                         tally_memtype_t memtype)
{
    uint64_t key = (uint64_t)bytes * 0x9E3779B97F4A7C15ull ^
                   ((uint64_t)dtype << 16 | (uint64_t)op << 8 | (uint64_t)memtype);
    key ^= key >> 29;
    return (size_t)(key % TALLY_PLAN_CACHE_SLOTS);
}

/* tally's own choice from the rows, uncached. */
static tally_status_t choose(const tally_selector_t *sel, size_t bytes, tally_dtype_t dtype,
                             tally_op_t op, tally_memtype_t memtype, bool quiet,
                             tally_choice_t *out)
{
    const tally_plan_t *plan = &sel->plan;
    for (size_t i = 0; i < plan->nrules; i++) {
        const tally_plan_rule_t *rule = &plan->rules[i];
        if (bytes >= rule->min_bytes && bytes <= rule->max_bytes &&
            tally_algo_fits(rule->algo, dtype, op, memtype, NULL)) {
            *out = (tally_choice_t){rule->algo,
                                    rule->segment ? rule->segment : sel->config->segment_size,
                                    rule};
            return TALLY_SUCCESS;
        }
    }
    /* No row's algorithm fits: take any algorithm that does. */
    const char *why = NULL;
    for (const tally_algo_t *const *a = tally_algo_registry; *a; a++) {
        if (tally_algo_fits_shape(*a, sel->shape, NULL) &&
            tally_algo_fits(*a, dtype, op, memtype, &why)) {
            *out = (tally_choice_t){*a, sel->config->segment_size, NULL};
            return TALLY_SUCCESS;
        }
    }
    if (!quiet)
        TALLY_LOG(sel->log, TALLY_LOG_ERROR, "no algorithm can serve %s %s on %s memory: %s",
                  tally_dtype_name(dtype), tally_op_name(op), tally_memtype_name(memtype),
                  why);
    return TALLY_ERR_UNSUPPORTED;
}

tally_status_t tally_select(tally_selector_t *sel, size_t bytes, tally_dtype_t dtype,
                            tally_op_t op, tally_memtype_t memtype, bool quiet,
                            tally_choice_t *out)
{
    if (sel->forced) {
        const char *why = NULL;
        if (tally_algo_fits_shape(sel->forced, sel->shape, &why) &&
            tally_algo_fits(sel->forced, dtype, op, memtype, &why)) {
            *out = (tally_choice_t){sel->forced, sel->config->segment_size, NULL};
            return TALLY_SUCCESS;
        }
        TALLY_CHECK(forced_does_not_fit(sel, why, dtype, op, quiet));
    }
    tally_plan_cache_slot_t *slot =
        &sel->plan.cache[cache_slot(bytes, dtype, op, memtype)];
    if (slot->valid && slot->bytes == bytes && slot->dtype == dtype && slot->op == op &&
        slot->memtype == memtype) {
        *out = slot->choice;
        return TALLY_SUCCESS;
    }
    tally_choice_t choice;
    TALLY_CHECK(choose(sel, bytes, dtype, op, memtype, quiet, &choice));
    *slot = (tally_plan_cache_slot_t){true, bytes, dtype, op, memtype, choice};
    *out = choice;
    return TALLY_SUCCESS;
}
