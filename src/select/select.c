/* select.c - which algorithm runs.  The built-in rules are data: the first
 * row whose rank range and byte limit match, and whose algorithm can serve
 * the call, wins.  The rows are resolved once per communicator
 * (tally_plan_build), so a call compares sizes and restriction bits only.
 * The topology-driven selection replaces these rows later. */
#include "select.h"

#include <stdint.h>

#include "../core/comm.h"
#include "../core/log.h"

/* Measured with make bench (tally-bench -R 5, medians) on 1 node x 2..5
 * ranks: the MPI's own allreduce is hard to beat for a few words (nothing
 * sits on top of it); recursive doubling's single exchange wins up to
 * 64 KiB (256 KiB on 2 ranks, where it moves no more than a ring); the
 * pipelined ring wins beyond. */
static const tally_rule_t builtin_rules[] = {
    /* min ranks, max ranks, up to bytes, algorithm */
    {1, 0, 2048, "mpi"},
    {1, 2, (size_t)256 << 10, "recursive_doubling"},
    {1, 0, (size_t)64 << 10, "recursive_doubling"},
    {1, 0, SIZE_MAX, "ring"},
};

#define BUILTIN_RULES (sizeof builtin_rules / sizeof builtin_rules[0])

void tally_plan_build(tally_plan_t *plan, int ranks)
{
    plan->nrules = 0;
    for (size_t i = 0; i < BUILTIN_RULES && plan->nrules < TALLY_MAX_RULES; i++) {
        const tally_rule_t *rule = &builtin_rules[i];
        if (ranks < rule->min_ranks || (rule->max_ranks != 0 && ranks > rule->max_ranks))
            continue;
        const tally_algo_t *algo = tally_algo_find(rule->algo);
        if (algo)
            plan->rules[plan->nrules++] = (tally_plan_rule_t){rule->max_bytes, algo};
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
static tally_status_t forced_does_not_fit(struct tally_comm *comm, const char *why,
                                          tally_dtype_t dtype, tally_op_t op, bool quiet)
{
    const char *name = comm->forced->name;
    switch (comm->config.fallback) {
    case TALLY_FALLBACK_ERROR:
        if (quiet)
            return TALLY_ERR_UNSUPPORTED;
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "forced algorithm %s cannot serve %s %s: %s (TALLY_FALLBACK=error)", name,
                  tally_dtype_name(dtype), tally_op_name(op), why);
        return TALLY_ERR_UNSUPPORTED;
    case TALLY_FALLBACK_WARN:
        if (!quiet && !(comm->fallback_warned & registry_bit(comm->forced))) {
            comm->fallback_warned |= registry_bit(comm->forced);
            TALLY_LOG(comm, TALLY_LOG_WARN,
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

tally_status_t tally_select(struct tally_comm *comm, size_t bytes, tally_dtype_t dtype,
                            tally_op_t op, tally_memtype_t memtype, bool quiet,
                            const tally_algo_t **out)
{
    const char *why = NULL;
    if (comm->forced) {
        if (tally_algo_fits(comm->forced, dtype, op, memtype, &why)) {
            *out = comm->forced;
            return TALLY_SUCCESS;
        }
        TALLY_CHECK(forced_does_not_fit(comm, why, dtype, op, quiet));
    }
    for (size_t i = 0; i < comm->plan.nrules; i++) {
        const tally_plan_rule_t *rule = &comm->plan.rules[i];
        if (bytes <= rule->max_bytes && tally_algo_fits(rule->algo, dtype, op, memtype, NULL)) {
            *out = rule->algo;
            return TALLY_SUCCESS;
        }
    }
    /* No rule's algorithm fits: take any algorithm that does. */
    for (const tally_algo_t *const *a = tally_algo_registry; *a; a++) {
        if (tally_algo_fits(*a, dtype, op, memtype, &why)) {
            *out = *a;
            return TALLY_SUCCESS;
        }
    }
    if (!quiet)
        TALLY_LOG(comm, TALLY_LOG_ERROR, "no algorithm can serve %s %s on %s memory: %s",
              tally_dtype_name(dtype), tally_op_name(op), tally_memtype_name(memtype), why);
    return TALLY_ERR_UNSUPPORTED;
}
