/* select.h - which algorithm runs.  A communicator's plan is the rule
 * table resolved for its size and node count, from four sources, highest
 * first: TALLY_ALGO (forced), TALLY_TUNING_FILE rows, rows generated from
 * the cost model, built-in rows.  The first row whose byte range matches
 * and whose algorithm can serve the call wins; the answer is cached per
 * (bytes, dtype, op, memory type). */
#ifndef TALLY_SELECT_H
#define TALLY_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../algo/algo.h"
#include "../core/config.h"
#include "../topo/model.h"
#include "../topo/shape.h"
#include "tally.h"
#include "tuning.h"

struct tally_comm;
/* A row resolved for one communicator: ranks and nodes already matched,
 * the name already looked up. */
typedef struct tally_plan_rule {
    size_t min_bytes, max_bytes; /* inclusive */
    const tally_algo_t *algo;
    size_t segment;              /* 0: TALLY_SEGMENT_SIZE */
    tally_rule_source_t source;
    unsigned line;               /* TALLY_RULE_FILE: line in the file */
} tally_plan_rule_t;

typedef struct tally_choice {
    const tally_algo_t *algo;
    size_t segment_size;           /* resolved */
    const tally_plan_rule_t *rule; /* NULL: forced, or no row could serve */
} tally_choice_t;

#define TALLY_PLAN_CACHE_SLOTS 64

typedef struct tally_plan_cache_slot {
    bool valid;
    size_t bytes;
    tally_dtype_t dtype;
    tally_op_t op;
    tally_memtype_t memtype;
    tally_choice_t choice;
} tally_plan_cache_slot_t;

typedef struct tally_plan {
    tally_plan_rule_t *rules;
    size_t nrules;
    uint64_t hash; /* of the rows, equal on ranks with equal tables */
    tally_plan_cache_slot_t cache[TALLY_PLAN_CACHE_SLOTS];
} tally_plan_t;

/* Resolves the rows for a communicator of this shape.  `rank` only decides
 * who reports problems in the tuning file (rank 0).  Fails with
 * TALLY_ERR_INVALID_CONFIG when the tuning file cannot be read, or
 * TALLY_ERR_NO_MEMORY; *plan is set only on success. */
tally_status_t tally_plan_build(tally_plan_t *plan, const tally_config_t *cfg,
                                const tally_shape_t *shape, const tally_model_t *model,
                                int rank);
void tally_plan_free(tally_plan_t *plan);

/* The model's own rows for this shape (what TALLY_MODEL=on contributes):
 * the cheapest predicted algorithm per byte range, then the cheapest among
 * algorithms without dtype or op restrictions.  Returns the row count. */
size_t tally_model_rules(const tally_shape_t *shape, const tally_model_t *model,
                         tally_plan_rule_t *rows, size_t max);

/* A cost for the model's predictions whose `cheapest` answers through
 * tally_select_cheapest (hier prices its step across nodes with it). */
tally_cost_t tally_select_cost(const tally_model_t *model, const tally_shape_t *shape,
                               size_t bytes);

/* The one "cheapest algorithm" function, for selection, explanations and
 * groups: the host algorithm with the least predicted time for `cost`
 * among those that fit its shape and that `accept` takes (NULL: all); on an
 * exact tie (ring and Rabenseifner on 2 ranks) the earlier registry entry.
 * *seconds (if not NULL) gets its time, INFINITY when none fits. */
const tally_algo_t *tally_select_cheapest(const tally_cost_t *cost,
                                          bool (*accept)(const tally_algo_t *algo,
                                                         const void *ctx),
                                          const void *ctx, double *seconds);

/* The rows as a table, for tally-info. */
void tally_plan_write(const tally_plan_t *plan, const tally_config_t *cfg, FILE *stream);

const char *tally_rule_source_name(tally_rule_source_t source);

/* What selection reads and remembers for one communicator: its plan, the
 * forced algorithm, and pointers to the communicator's shape and
 * configuration (and the communicator itself, only to log through). */
typedef struct tally_selector {
    tally_plan_t plan;
    const tally_algo_t *forced; /* TALLY_ALGO or tally_comm_set_algorithm; NULL: auto */
    unsigned fallback_warned;   /* a bit per registry index, to warn once */
    const tally_shape_t *shape;
    const tally_config_t *config;
    const struct tally_comm *log;
} tally_selector_t;

/* Chooses the algorithm for a call.  A forced algorithm that does not fit
 * follows config->fallback: error (TALLY_ERR_UNSUPPORTED), or tally's
 * own choice with a warning once, or quietly.  `quiet` answers without
 * logging or remembering a warning (tally_comm_get_algorithm). */
tally_status_t tally_select(tally_selector_t *sel, size_t bytes, tally_dtype_t dtype,
                            tally_op_t op, tally_memtype_t memtype, bool quiet,
                            tally_choice_t *out);

#endif
