/* stage.c - a communicator's pinned bounce buffers and copy streams, kept
 * between calls of the staged algorithm (algo/staged.c): pinning memory
 * costs milliseconds, so it is done once and grown only when a call needs
 * larger chunks. */
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

tally_stage_t *tally_stage_get(tally_device_t *dev, size_t bytes, const char **why)
{
    const tally_device_backend_t *b = dev->backend;
    tally_stage_t *s = stage_made(dev, why);
    if (!s || s->bytes >= bytes)
        return s;
    /* Grow: the old buffers are idle (every call waits for its copies). */
    for (int i = 0; i < 2; i++) {
        if (s->host[i])
            b->free(dev->ctx, s->host[i]);
        s->host[i] = NULL;
    }
    s->bytes = 0;
    for (int i = 0; i < 2; i++) {
        const char *err = b->alloc(dev->ctx, TALLY_MEM_PINNED, bytes, &s->host[i]);
        if (err) {
            *why = err;
            return NULL;
        }
    }
    s->bytes = bytes;
    return s;
}

void *tally_stage_whole(tally_device_t *dev, size_t bytes, const char **why)
{
    tally_stage_t *s = stage_made(dev, why);
    if (!s || s->whole_bytes >= bytes)
        return s ? s->whole : NULL;
    if (s->whole)
        dev->backend->free(dev->ctx, s->whole);
    s->whole = NULL;
    s->whole_bytes = 0;
    const char *err = dev->backend->alloc(dev->ctx, TALLY_MEM_PINNED, bytes, &s->whole);
    if (err) {
        *why = err;
        return NULL;
    }
    s->whole_bytes = bytes;
    return s->whole;
}
