/* stage.c - a communicator's pinned bounce buffers and copy streams, kept
 * between calls of the staged algorithm (algo/staged.c): pinning memory
 * costs milliseconds, so it is done once and grown only when a call needs
 * larger chunks, and agreed by every rank when it is. */
#include "mem.h"

#include <stdlib.h>

void tally_stage_free(tally_device_t *dev)
{
    tally_stage_t *s = dev->stage;
    if (!s)
        return;
    const tally_device_backend_t *b = dev->backend;
    if (s->whole)
        b->free(dev->ctx, s->whole);
    for (int i = 1; i >= 0; i--) {
        if (s->up_done[i])
            b->event_destroy(dev->ctx, s->up_done[i]);
        if (s->down_done[i])
            b->event_destroy(dev->ctx, s->down_done[i]);
        if (s->host[i])
            b->free(dev->ctx, s->host[i]);
    }
    /* down may wait on up's events: down goes first. */
    if (s->down)
        b->stream_destroy(dev->ctx, s->down);
    if (s->up)
        b->stream_destroy(dev->ctx, s->up);
    free(s);
    dev->stage = NULL;
}

/* Streams and events, made once. */
static const char *stage_queues(const tally_device_t *dev, tally_stage_t *s)
{
    const tally_device_backend_t *b = dev->backend;
    const char *err = b->stream_create(dev->ctx, &s->up);
    if (!err)
        err = b->stream_create(dev->ctx, &s->down);
    for (int i = 0; i < 2 && !err; i++) {
        err = b->event_create(dev->ctx, &s->down_done[i]);
        if (!err)
            err = b->event_create(dev->ctx, &s->up_done[i]);
    }
    return err;
}

/* dev->stage with its streams and events, made on first use. */
static tally_stage_t *stage_made(tally_device_t *dev, const char **why)
{
    if (dev->stage)
        return dev->stage;
    dev->stage = calloc(1, sizeof *dev->stage);
    if (!dev->stage) {
        *why = "out of host memory";
        return NULL;
    }
    const char *err = stage_queues(dev, dev->stage);
    if (err) {
        tally_stage_free(dev);
        *why = err;
        return NULL;
    }
    return dev->stage;
}

/* After a rank made or grew its stage, which every rank of `mpi` does on
 * the same calls (the sizes follow the call's count and TALLY_STAGE_CHUNK,
 * the same everywhere), the ranks agree that all of them have it: a rank
 * that failed alone would leave the others waiting in the call.  Where one
 * failed, every rank drops its stage, so that all try again together. */
static bool agreed(tally_device_t *dev, MPI_Comm mpi, bool ok, const char **why)
{
    int mine = ok, all = 0;
    if (PMPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, mpi) != MPI_SUCCESS && ok)
        *why = "the ranks could not agree on their pinned buffers";
    else if (!all && ok)
        *why = "another rank could not make its pinned buffers";
    if (!all)
        tally_stage_free(dev);
    return all;
}

tally_stage_t *tally_stage_get(tally_device_t *dev, MPI_Comm mpi, size_t bytes,
                               const char **why)
{
    if (dev->stage && dev->stage->bytes >= bytes)
        return dev->stage;
    const tally_device_backend_t *b = dev->backend;
    tally_stage_t *s = stage_made(dev, why);
    bool ok = s != NULL;
    if (s) {
        /* Grow: the old buffers are idle (every call waits for its copies). */
        for (int i = 0; i < 2; i++) {
            if (s->host[i])
                b->free(dev->ctx, s->host[i]);
            s->host[i] = NULL;
        }
        s->bytes = 0;
        for (int i = 0; i < 2 && ok; i++) {
            const char *err = b->alloc(dev->ctx, TALLY_MEM_PINNED, bytes, &s->host[i]);
            if (err) {
                *why = err;
                ok = false;
            }
        }
        if (ok)
            s->bytes = bytes;
    }
    return agreed(dev, mpi, ok, why) ? dev->stage : NULL;
}

void *tally_stage_whole(tally_device_t *dev, MPI_Comm mpi, size_t bytes, const char **why)
{
    if (dev->stage && dev->stage->whole_bytes >= bytes)
        return dev->stage->whole;
    tally_stage_t *s = stage_made(dev, why);
    bool ok = s != NULL;
    if (s) {
        if (s->whole)
            dev->backend->free(dev->ctx, s->whole);
        s->whole = NULL;
        s->whole_bytes = 0;
        const char *err = dev->backend->alloc(dev->ctx, TALLY_MEM_PINNED, bytes, &s->whole);
        if (err) {
            *why = err;
            ok = false;
        } else {
            s->whole_bytes = bytes;
        }
    }
    return agreed(dev, mpi, ok, why) ? dev->stage->whole : NULL;
}
