/* explain.c - tally explaining itself: the predicted time of an algorithm,
 * why a call runs what it runs, the communicator's shape, model and rule
 * table, and what hwloc sees.  Nothing here is collective. */
#include <stdint.h>
#include <string.h>

#include "../core/comm.h"
#include "../core/log.h"
#include "../topo/topo.h"
#include "select.h"

/* Whether algo can serve this call on comm: its shape, dtype, op, host memory. */
typedef struct call_kind {
    const tally_comm_t *comm;
    tally_dtype_t dtype;
    tally_op_t op;
} call_kind_t;

static bool serves(const tally_algo_t *algo, const tally_comm_t *comm, tally_dtype_t dtype,
                   tally_op_t op, const char **why)
{
    return tally_algo_fits_shape(algo, &comm->shape, why) &&
           tally_algo_fits(algo, dtype, op, TALLY_MEM_HOST, why);
}

static bool serves_kind(const tally_algo_t *algo, const void *ctx)
{
    const call_kind_t *k = ctx;
    return serves(algo, k->comm, k->dtype, k->op, NULL);
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
    if (!serves(algo, comm, dtype, op, NULL))
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

tally_status_t tally_comm_explain(tally_comm_t *comm, size_t count, tally_dtype_t dtype,
                                  tally_op_t op, FILE *stream)
{
    if (!stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    TALLY_CHECK(tally_check_arguments("tally_comm_explain", comm, count, dtype, op));
    const size_t bytes = count * tally_dtype_size(dtype);
    tally_choice_t choice;
    tally_status_t st = tally_select(&comm->sel, bytes, dtype, op, TALLY_MEM_HOST, true, &choice);

    fprintf(stream, "%zu bytes (%zu x %s, %s) on %d rank%s, %d node%s:\n", bytes, count,
            tally_dtype_name(dtype), tally_op_name(op), comm->size, comm->size == 1 ? "" : "s",
            comm->shape.nodes, comm->shape.nodes == 1 ? "" : "s");
    if (st != TALLY_SUCCESS) {
        /* Only a forced algorithm under TALLY_FALLBACK=error, or no algorithm
         * at all, gets here: say so, then show the candidates anyway. */
        if (comm->sel.forced)
            fprintf(stream, "  fails: forced %s cannot serve it and TALLY_FALLBACK=error\n",
                    comm->sel.forced->name);
        else
            fprintf(stream, "  fails: no algorithm can serve it\n");
        choice = (tally_choice_t){NULL, 0, NULL};
    } else {
        fprintf(stream, "  runs %s: ", choice.algo->name);
        if (comm->sel.forced == choice.algo)
            fprintf(stream, "forced (TALLY_ALGO or tally_comm_set_algorithm)");
        else if (choice.rule)
            write_rule(choice.rule, &comm->config, stream);
        else
            fprintf(stream, "no row's algorithm can serve the call; the first that can");
        if (choice.rule && choice.rule->segment)
            fprintf(stream, ", segment %zu bytes from the row", choice.segment_size);
        fputc('\n', stream);
        if (comm->sel.forced && comm->sel.forced != choice.algo)
            fprintf(stream, "  (forced %s cannot serve it; TALLY_FALLBACK applies)\n",
                    comm->sel.forced->name);
    }
    /* Rows that matched the size but whose algorithm cannot serve the call. */
    for (size_t i = 0; choice.rule && &comm->sel.plan.rules[i] != choice.rule; i++) {
        const tally_plan_rule_t *r = &comm->sel.plan.rules[i];
        const char *why = NULL;
        if (bytes >= r->min_bytes && bytes <= r->max_bytes &&
            !tally_algo_fits(r->algo, dtype, op, TALLY_MEM_HOST, &why)) {
            fprintf(stream, "  passed over %s (", r->algo->name);
            write_rule(r, &comm->config, stream);
            fprintf(stream, "): %s\n", why);
        }
    }

    tally_cost_t cost = tally_select_cost(&comm->model, &comm->shape, bytes);
    const call_kind_t kind = {comm, dtype, op};
    double best = 0.0;
    const tally_algo_t *cheapest = tally_select_cheapest(&cost, serves_kind, &kind, &best);
    fprintf(stream, "  predicted by the cost model (%s%s):\n",
            comm->model.calibrated ? "calibrated" : "built-in constants",
            cost.in_cache ? ", working set in cache" : "");
    for (const tally_algo_t *const *a = tally_algo_registry; *a; a++) {
        const char *why = NULL;
        fprintf(stream, "    %-20s ", (*a)->name);
        if (!serves(*a, comm, dtype, op, &why)) {
            fprintf(stream, "%12s  cannot serve it: %s\n", "-", why);
            continue;
        }
        double t = (*a)->predict(&cost);
        fprintf(stream, "%9.2f us  %5.2fx%s%s\n", t * 1e6, best > 0 ? t / best : 1.0,
                *a == cheapest ? "  cheapest" : "", *a == choice.algo ? "  <- runs" : "");
    }
    return TALLY_SUCCESS;
}

tally_status_t tally_comm_print(tally_comm_t *comm, FILE *stream)
{
    if (!comm)
        return TALLY_ERR_NULL_COMM;
    if (!stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    tally_shape_write(&comm->shape, stream);
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
