/* select.h - which algorithm runs: a forced one if it fits, else the first
 * matching row of the built-in rule table. */
#ifndef TALLY_SELECT_H
#define TALLY_SELECT_H

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

/* Chooses the algorithm for a call.  A forced algorithm that does not fit
 * follows comm->config.fallback: error (TALLY_ERR_UNSUPPORTED), or tally's
 * own choice with a warning once, or quietly. */
tally_status_t tally_select(struct tally_comm *comm, size_t bytes,
                            tally_dtype_t dtype, tally_op_t op,
                            tally_memtype_t memtype, const tally_algo_t **out);

#endif
