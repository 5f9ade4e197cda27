/* scratch.c - the scratch pool (see scratch.h). */
#include "scratch.h"

#include <stdlib.h>

#include "log.h"

bool tally_scratch_grow(tally_scratch_t *slot, size_t bytes)
{
    if (bytes <= slot->bytes)
        return true;
    /* Grow geometrically; the old contents need not survive. */
    size_t want = slot->bytes * 2 > bytes ? slot->bytes * 2 : bytes;
    void *p = NULL;
    if (posix_memalign(&p, 64, want) != 0)
        return false;
    free(slot->data);
    slot->data = p;
    slot->bytes = want;
    return true;
}

tally_scratch_t *tally_scratch_take(tally_scratch_pool_t *pool, size_t bytes)
{
    for (int i = 0; i < TALLY_SCRATCH_SLOTS; i++) {
        tally_scratch_t *slot = &pool->slot[i];
        if (!slot->in_use) {
            if (!tally_scratch_grow(slot, bytes))
                return NULL;
            slot->in_use = true;
            return slot;
        }
    }
    return NULL;
}

void tally_scratch_give(tally_scratch_t *slot)
{
    if (slot)
        slot->in_use = false;
}

void tally_scratch_pool_free(tally_scratch_pool_t *pool)
{
    for (int i = 0; i < TALLY_SCRATCH_SLOTS; i++)
        free(pool->slot[i].data);
}

void *tally_call_scratch(tally_call_t *call, size_t bytes)
{
    if (!call->scratch) {
        call->scratch = tally_scratch_take(call->pool, bytes);
        if (!call->scratch) {
            TALLY_LOG(call->comm, TALLY_LOG_ERROR,
                      "no scratch for %zu bytes (out of memory, or %d calls in flight)",
                      bytes, TALLY_SCRATCH_SLOTS);
            return NULL;
        }
    } else if (!tally_scratch_grow(call->scratch, bytes)) {
        return NULL;
    }
    return call->scratch->data;
}
