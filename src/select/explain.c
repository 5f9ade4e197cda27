/* explain.c - tally explaining itself: the predicted time of an algorithm,
 * why a call runs what it runs, the communicator's shape, model and rule
 * table, and what hwloc sees; the same for a cluster we do not have (a
 * what-if spec, whatif.h).  Nothing here is collective. */
#include <stdint.h>
#include <string.h>

#include "../core/comm.h"
#include "../algo/compressed.h"
#include "../core/log.h"
#include "../topo/topo.h"
#include "select.h"
#include "whatif.h"

/* Whether algo can serve this call on a communicator of `shape`: its
 * shape, dtype, op, host memory. */
typedef struct call_kind {
    const tally_shape_t *shape;
    tally_dtype_t dtype;
    tally_op_t op;
} call_kind_t;

static bool serves(const tally_algo_t *algo, const tally_shape_t *shape, tally_dtype_t dtype,
                   tally_op_t op, const char **why)
{
    return tally_algo_fits_shape(algo, shape, why) &&
           tally_algo_fits(algo, dtype, op, TALLY_MEM_HOST, why);
}

static bool serves_kind(const tally_algo_t *algo, const void *ctx)
{
    const call_kind_t *k = ctx;
    return serves(algo, k->shape, k->dtype, k->op, NULL);
}

tally_status_t tally_comm_predict(tally_comm_t *comm, const char *algorithm, size_t count,
                                  tally_dtype_t dtype, tally_op_t op, double *seconds)
{
    if (!algorithm || !seconds)
        return TALLY_ERR_INVALID_ARGUMENT;
    TALLY_CHECK(tally_check_arguments("tally_comm_predict", comm, count, dtype, op));
    const tally_algo_t *algo = tally_algo_find(algorithm);
    if (!algo)
        return TALLY_ERR_UNKNOWN_ALGORITHM;
    tally_comm_drain(comm); /* the selection's state is the running calls' too */
    if (!serves(algo, &comm->shape, dtype, op, NULL))
        return TALLY_ERR_UNSUPPORTED;
    tally_cost_t cost = tally_select_cost(&comm->model, &comm->shape,
                                          count * tally_dtype_size(dtype));
    *seconds = algo->predict(&cost);
    return TALLY_SUCCESS;
}

static void write_rule(const tally_plan_rule_t *rule, const tally_config_t *cfg, FILE *stream)
{
    fprintf(stream, "%s row, bytes %zu-", tally_rule_source_name(rule->source),
            rule->min_bytes);
    if (rule->max_bytes != SIZE_MAX)
        fprintf(stream, "%zu", rule->max_bytes);
    if (rule->source == TALLY_RULE_FILE)
        fprintf(stream, " (%s:%u)", cfg->tuning_file, rule->line);
}

/* The link a candidate's busbw is measured against: the network's on
 * several nodes, else the one between two ranks of a package. */
static double link_rate(const tally_model_t *model, const tally_shape_t *shape)
{
    tally_level_t level = shape->nodes > 1 ? TALLY_LEVEL_NETWORK : TALLY_LEVEL_PACKAGE;
    return 1.0 / model->link[level].beta;
}

/* What tally_allreduce_compressed would take with each codec (default
 * parameters for the parameterised ones), against the cheapest exact
 * algorithm: floating SUM and AVG across nodes only. */
static void write_compression(const tally_cost_t *cost, tally_dtype_t dtype, tally_op_t op,
                              double best, FILE *stream)
{
    static const char *const specs[] = {"fp16", "bf16", "int8", "sign", "topk:0.01",
                                        "powersgd:4"};
    const bool floating = dtype == TALLY_FLOAT16 || dtype == TALLY_BFLOAT16 ||
                          dtype == TALLY_FLOAT32 || dtype == TALLY_FLOAT64;
    if (!floating || (op != TALLY_SUM && op != TALLY_AVG))
        return;
    if (cost->shape->nodes < 2) {
        fprintf(stream, "  compressed (tally_allreduce_compressed): nothing is compressed on "
                        "one node\n");
        return;
    }
    fprintf(stream, "  compressed (tally_allreduce_compressed), exact within nodes; codec "
                    "rates from the codec table:\n");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        tally_codec_spec_t spec;
        if (tally_codec_spec_parse(specs[i], &spec, NULL, 0) != TALLY_SUCCESS)
            continue;
        double t = tally_compressed_predict(cost, &spec, tally_dtype_size(dtype));
        if (t < 0)
            continue;
        fprintf(stream, "    %-20s %12.2f us  %6.2fx  %s\n", specs[i], t * 1e6,
                best > 0 ? t / best : 1.0,
                t < best ? "faster than the exact allreduce" : "slower than the exact allreduce");
    }
}

/* The explanation of tally_comm_explain and tally_model_explain: what
 * selection on `sel` (its plan, forced algorithm, shape and configuration)
 * chooses for the call and why, and every candidate's predicted time by
 * `model` with its busbw.  Arguments already checked. */
static void write_explanation(tally_selector_t *sel, const tally_model_t *model, size_t count,
                              tally_dtype_t dtype, tally_op_t op, FILE *stream)
{
    const tally_shape_t *shape = sel->shape;
    const tally_config_t *config = sel->config;
    const size_t bytes = count * tally_dtype_size(dtype);
    tally_choice_t choice;
    tally_status_t st = tally_select(sel, bytes, dtype, op, TALLY_MEM_HOST, true, &choice);

    fprintf(stream, "%zu bytes (%zu x %s, %s) on %d rank%s, %d node%s:\n", bytes, count,
            tally_dtype_name(dtype), tally_op_name(op), shape->size,
            shape->size == 1 ? "" : "s", shape->nodes, shape->nodes == 1 ? "" : "s");
    if (st != TALLY_SUCCESS) {
        /* Only a forced algorithm under TALLY_FALLBACK=error, or no algorithm
         * at all, gets here: say so, then show the candidates anyway. */
        if (sel->forced)
            fprintf(stream, "  fails: forced %s cannot serve it and TALLY_FALLBACK=error\n",
                    sel->forced->name);
        else
            fprintf(stream, "  fails: no algorithm can serve it\n");
        choice = (tally_choice_t){NULL, 0, NULL};
    } else {
        fprintf(stream, "  runs %s: ", choice.algo->name);
        if (sel->forced == choice.algo)
            fprintf(stream, "forced (TALLY_ALGO or tally_comm_set_algorithm)");
        else if (choice.rule)
            write_rule(choice.rule, config, stream);
        else
            fprintf(stream, "no row's algorithm can serve the call; the first that can");
        if (choice.rule && choice.rule->segment)
            fprintf(stream, ", segment %zu bytes from the row", choice.segment_size);
        fputc('\n', stream);
        if (sel->forced && sel->forced != choice.algo)
            fprintf(stream, "  (forced %s cannot serve it; TALLY_FALLBACK applies)\n",
                    sel->forced->name);
    }
    /* Rows that matched the size but whose algorithm cannot serve the call. */
    for (size_t i = 0; choice.rule && &sel->plan.rules[i] != choice.rule; i++) {
        const tally_plan_rule_t *r = &sel->plan.rules[i];
        const char *why = NULL;
        if (bytes >= r->min_bytes && bytes <= r->max_bytes &&
            !tally_algo_fits(r->algo, dtype, op, TALLY_MEM_HOST, &why)) {
            fprintf(stream, "  passed over %s (", r->algo->name);
            write_rule(r, config, stream);
            fprintf(stream, "): %s\n", why);
        }
    }

    tally_cost_t cost = tally_select_cost(model, shape, bytes);
    const call_kind_t kind = {shape, dtype, op};
    double best = 0.0;
    const tally_algo_t *cheapest = tally_select_cheapest(&cost, serves_kind, &kind, &best);
    const double link = link_rate(model, shape);
    const int p = shape->size;
    char rate[32];
    fprintf(stream, "  predicted by the cost model (%s%s);\n",
            model->calibrated ? "calibrated"
            : model->what_if  ? "what-if figures"
                              : "built-in constants",
            cost.in_cache ? ", working set in cache" : "");
    fprintf(stream, "  busbw = bytes / time x 2(p-1)/p, and its share of the %s %s:\n",
            tally_model_format_rate(rate, sizeof rate, link),
            shape->nodes > 1 ? "network link of a node" : "link between two ranks of a package");
    for (const tally_algo_t *const *a = tally_algo_registry; *a; a++) {
        const char *why = NULL;
        if ((*a)->restrictions.flags & TALLY_ALGO_DEVICE_ONLY)
            continue; /* host calls are explained: device buffers never reach these */
        fprintf(stream, "    %-20s ", (*a)->name);
        if (!serves(*a, shape, dtype, op, &why)) {
            fprintf(stream, "%15s  cannot serve it: %s\n", "-", why);
            continue;
        }
        double t = (*a)->predict(&cost);
        fprintf(stream, "%12.2f us  %6.2fx", t * 1e6, best > 0 ? t / best : 1.0);
        if (p > 1 && t > 0 && bytes > 0) {
            double busbw = (double)bytes / t * 2.0 * (p - 1) / p;
            fprintf(stream, "  %12s %4.0f%%", tally_model_format_rate(rate, sizeof rate, busbw),
                    100.0 * busbw / link);
        } else {
            fprintf(stream, "  %12s %5s", "-", "-");
        }
        fprintf(stream, "%s%s\n", *a == cheapest ? "  cheapest" : "",
                *a == choice.algo ? "  <- runs" : "");
    }
    write_compression(&cost, dtype, op, best, stream);
}

tally_status_t tally_comm_explain(tally_comm_t *comm, size_t count, tally_dtype_t dtype,
                                  tally_op_t op, FILE *stream)
{
    if (!stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    TALLY_CHECK(tally_check_arguments("tally_comm_explain", comm, count, dtype, op));
    tally_comm_drain(comm);
    write_explanation(&comm->sel, &comm->model, count, dtype, op, stream);
    return TALLY_SUCCESS;
}

/* Builds the what-if cluster of `spec`, logging what is wrong with it. */
static tally_status_t whatif_build(const char *fn, const char *spec, tally_whatif_t *w)
{
    char err[512];
    tally_status_t st = tally_whatif_build(spec, w, err, sizeof err);
    if (st == TALLY_ERR_INVALID_ARGUMENT)
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "%s: %s", fn, err);
    return st;
}

tally_status_t tally_model_explain(const char *spec, size_t count, tally_dtype_t dtype,
                                   tally_op_t op, FILE *stream)
{
    if (!spec || !stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    TALLY_CHECK(tally_op_check(op, dtype));
    if (count > (size_t)PTRDIFF_MAX / tally_dtype_size(dtype))
        return TALLY_ERR_COUNT_TOO_LARGE; /* as tally_allreduce */
    tally_whatif_t w;
    TALLY_CHECK(whatif_build("tally_model_explain", spec, &w));
    write_explanation(&w.sel, &w.model, count, dtype, op, stream);
    tally_whatif_free(&w);
    return TALLY_SUCCESS;
}

tally_status_t tally_model_print(const char *spec, FILE *stream)
{
    if (!spec || !stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    tally_whatif_t w;
    TALLY_CHECK(whatif_build("tally_model_print", spec, &w));
    tally_shape_write(&w.shape, stream);
    tally_model_write(&w.model, stream);
    tally_plan_write(&w.sel.plan, &w.config, stream);
    tally_whatif_free(&w);
    return TALLY_SUCCESS;
}

/* What the selection runs for float32 SUM on device buffers of a few sizes. */
static void write_device_choice(tally_comm_t *comm, FILE *stream)
{
    static const struct { size_t bytes; const char *label; } sizes[] = {
        {4096, "4 KiB"}, {1 << 20, "1 MiB"}, {64 << 20, "64 MiB"}};
    fprintf(stream, "device buffers run (float32 sum):");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        tally_choice_t choice;
        const bool ok = tally_select(&comm->sel, sizes[i].bytes, TALLY_FLOAT32, TALLY_SUM,
                                     TALLY_MEM_DEVICE, true, &choice) == TALLY_SUCCESS;
        fprintf(stream, "%s %s %s", i ? "," : "", sizes[i].label, ok ? choice.algo->name : "none");
    }
    fprintf(stream, "\n");
    if (comm->shape.nccl)
        fprintf(stream, "NCCL: serves device buffers (every rank has a GPU of its own)%s%s\n",
                comm->nccl.failed ? "; its communicator failed: " : "",
                comm->nccl.failed ? comm->nccl.why : "");
    else
        fprintf(stream, "NCCL: not used: %s\n", comm->nccl.why);
}

tally_status_t tally_comm_print(tally_comm_t *comm, FILE *stream)
{
    if (!comm)
        return TALLY_ERR_NULL_COMM;
    if (!stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    tally_comm_drain(comm);
    tally_shape_write(&comm->shape, stream);
    tally_device_write(&comm->device, "", stream);
    if (comm->device.backend)
        write_device_choice(comm, stream);
    tally_model_write(&comm->model, stream);
    if (comm->sel.forced)
        fprintf(stream, "forced algorithm: %s (rules below apply only where it cannot serve "
                        "a call)\n", comm->sel.forced->name);
    tally_plan_write(&comm->sel.plan, &comm->config, stream);
    return TALLY_SUCCESS;
}

tally_status_t tally_topology_print(FILE *stream)
{
    if (!stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    tally_topo_write(tally_topo_get(), stream);
    return TALLY_SUCCESS;
}
