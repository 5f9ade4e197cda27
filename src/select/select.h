/* select.h - which algorithm runs: a forced one if it fits, else the first
 * matching row of the built-in rule table. */
#ifndef TALLY_SELECT_H
#define TALLY_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include "../algo/algo.h"
#include "tally.h"

struct tally_comm;

typedef struct tally_rule {
    int min_ranks;        /* inclusive */
    int max_ranks;        /* inclusive; 0 means no limit */
    size_t max_bytes;     /* rows match bytes <= max_bytes; SIZE_MAX: any */
    const char *algo;     /* by name */
} tally_rule_t;

#define TALLY_MAX_RULES 16

/* A rule resolved for one communicator: the rank range already matched and
 * the name already looked up, so a call only compares bytes. */
typedef struct tally_plan_rule {
    size_t max_bytes;
    const tally_algo_t *algo;
} tally_plan_rule_t;

typedef struct tally_plan {
    tally_plan_rule_t rules[TALLY_MAX_RULES];
    size_t nrules;
} tally_plan_t;

/* Resolves the built-in rules for a communicator of `ranks` ranks. */
void tally_plan_build(tally_plan_t *plan, int ranks);

/* Chooses the algorithm for a call.  A forced algorithm that does not fit
 * follows comm->config.fallback: error (TALLY_ERR_UNSUPPORTED), or tally's
 * own choice with a warning once, or quietly. */
/* `quiet` answers the question without logging or remembering a warning
 * (tally_comm_get_algorithm). */
tally_status_t tally_select(struct tally_comm *comm, size_t bytes,
                            tally_dtype_t dtype, tally_op_t op,
                            tally_memtype_t memtype, bool quiet,
                            const tally_algo_t **out);

#endif
