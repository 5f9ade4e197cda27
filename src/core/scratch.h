/* scratch.h - scratch space for calls: a communicator keeps a small pool,
 * a call takes one slot at its first need and gives it back when it ends,
 * so two calls in flight never share scratch. */
#ifndef TALLY_SCRATCH_H
#define TALLY_SCRATCH_H

#include <stdbool.h>
#include <stddef.h>
#include "call.h"

#define TALLY_SCRATCH_SLOTS 4

typedef struct tally_scratch {
    void *data;
    size_t bytes;
    bool in_use;
} tally_scratch_t;

typedef struct tally_scratch_pool {
    tally_scratch_t slot[TALLY_SCRATCH_SLOTS];
} tally_scratch_pool_t;

/* A free slot of at least `bytes`, marked in use, or NULL. */
tally_scratch_t *tally_scratch_take(tally_scratch_pool_t *pool, size_t bytes);
/* Grows a taken slot to at least `bytes` (contents need not survive). */
bool tally_scratch_grow(tally_scratch_t *slot, size_t bytes);
void tally_scratch_give(tally_scratch_t *slot);
void tally_scratch_pool_free(tally_scratch_pool_t *pool);

/* At least `bytes` of scratch owned by this call until it ends (valid
 * until the next tally_call_scratch of the same call), or NULL. */
void *tally_call_scratch(tally_call_t *call, size_t bytes);

#endif
