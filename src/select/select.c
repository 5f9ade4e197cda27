/* select.c - which algorithm runs.  The built-in rules are data: the first
 * row whose rank range and byte limit match, and whose algorithm can serve
 * the call, wins.  The topology-driven selection replaces these rows later;
 * the numbers come from tally-bench on a 2-core machine (README). */
#include "select.h"

#include <stdint.h>

#include "../core/comm.h"
#include "../core/log.h"

static const tally_rule_t builtin_rules[] = {
    /* min ranks, max ranks, up to bytes, algorithm */
    {1, 0, 8192, "recursive_doubling"},
    {1, 0, SIZE_MAX, "ring"},
};

#define BUILTIN_RULES (sizeof builtin_rules / sizeof builtin_rules[0])

static bool rule_matches(const tally_rule_t *rule, int ranks, size_t bytes)
{
    return ranks >= rule->min_ranks && (rule->max_ranks == 0 || ranks <= rule->max_ranks) &&
           bytes <= rule->max_bytes;
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
                                          tally_dtype_t dtype, tally_op_t op)
{
    const char *name = comm->forced->name;
    switch (comm->config.fallback) {
    case TALLY_FALLBACK_ERROR:
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "forced algorithm %s cannot serve %s %s: %s (TALLY_FALLBACK=error)", name,
                  tally_dtype_name(dtype), tally_op_name(op), why);
        return TALLY_ERR_UNSUPPORTED;
    case TALLY_FALLBACK_WARN:
        if (!(comm->fallback_warned & registry_bit(comm->forced))) {
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
                            tally_op_t op, tally_memtype_t memtype,
                            const tally_algo_t **out)
{
    const char *why = NULL;
    if (comm->forced) {
        if (tally_algo_fits(comm->forced, dtype, op, memtype, &why)) {
            *out = comm->forced;
            return TALLY_SUCCESS;
        }
        TALLY_CHECK(forced_does_not_fit(comm, why, dtype, op));
    }
    for (size_t i = 0; i < BUILTIN_RULES; i++) {
        const tally_rule_t *rule = &builtin_rules[i];
        if (!rule_matches(rule, comm->size, bytes))
            continue;
        const tally_algo_t *algo = tally_algo_find(rule->algo);
        if (algo && tally_algo_fits(algo, dtype, op, memtype, NULL)) {
            *out = algo;
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
    TALLY_LOG(comm, TALLY_LOG_ERROR, "no algorithm can serve %s %s on %s memory: %s",
              tally_dtype_name(dtype), tally_op_name(op), tally_memtype_name(memtype), why);
    return TALLY_ERR_UNSUPPORTED;
}
