/* ipc.c - the peers' device buffers, mapped and cached (see ipc.h). */
#include "ipc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What each rank tells the others about one buffer. */
typedef struct ipc_buffer {
    tally_ipc_handle_t handle;
    uint64_t base;   /* the allocation's address in its owner (reuse detection) */
    uint64_t offset; /* the buffer's offset in it */
} ipc_buffer_t;

typedef struct ipc_record {
    ipc_buffer_t send, recv;
    int32_t ok; /* both exported */
} ipc_record_t;

typedef struct ipc_entry {
    int peer;
    uint64_t base; /* in the peer */
    tally_ipc_handle_t handle;
    void *mapped;  /* here */
    uint64_t used; /* the call that last used it */
} ipc_entry_t;

struct tally_ipc_cache {
    int size;
    ipc_record_t *records; /* size */
    const void **send;     /* size */
    void **recv;           /* size */
    ipc_entry_t *entries;
    size_t n, cap;
    uint64_t calls;
};

static tally_ipc_cache_t *cache_make(int size)
{
    tally_ipc_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->size = size;
    c->cap = 4 * (size_t)size < 64 ? 64 : 4 * (size_t)size;
    c->records = calloc((size_t)size, sizeof *c->records);
    c->send = calloc((size_t)size, sizeof *c->send);
    c->recv = calloc((size_t)size, sizeof *c->recv);
    c->entries = calloc(c->cap, sizeof *c->entries);
    if (!c->records || !c->send || !c->recv || !c->entries) {
        free(c->entries);
        free(c->recv);
        free(c->send);
        free(c->records);
        free(c);
        return NULL;
    }
    return c;
}

void tally_ipc_cache_free(tally_ipc_cache_t *c, const tally_device_t *dev)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        dev->backend->ipc_close(dev->ctx, c->entries[i].mapped);
    free(c->entries);
    free(c->recv);
    free(c->send);
    free(c->records);
    free(c);
}

static void drop(tally_ipc_cache_t *c, const tally_device_t *dev, size_t i)
{
    dev->backend->ipc_close(dev->ctx, c->entries[i].mapped);
    c->entries[i] = c->entries[--c->n];
}

/* The peer's buffer b mapped here, opening its allocation if needed; NULL
 * with *why set on failure. */
static void *map(tally_ipc_cache_t *c, const tally_device_t *dev, int peer,
                 const ipc_buffer_t *b, const char **why)
{
    for (size_t i = 0; i < c->n; i++) {
        ipc_entry_t *e = &c->entries[i];
        if (e->peer != peer || e->base != b->base)
            continue;
        if (memcmp(&e->handle, &b->handle, sizeof b->handle) == 0) {
            e->used = c->calls;
            return (char *)e->mapped + b->offset;
        }
        drop(c, dev, i); /* the peer freed it and allocated anew there */
        break;
    }
    if (c->n == c->cap) { /* evict the least recently used, never this call's */
        size_t oldest = c->n;
        for (size_t i = 0; i < c->n; i++)
            if (c->entries[i].used != c->calls &&
                (oldest == c->n || c->entries[i].used < c->entries[oldest].used))
                oldest = i;
        if (oldest == c->n) {
            *why = "too many peer allocations in one call";
            return NULL;
        }
        drop(c, dev, oldest);
    }
    void *mapped = NULL;
    const char *err = dev->backend->ipc_open(dev->ctx, &b->handle, &mapped);
    if (err) {
        *why = err;
        return NULL;
    }
    c->entries[c->n++] = (ipc_entry_t){peer, b->base, b->handle, mapped, c->calls};
    return (char *)mapped + b->offset;
}

static bool export(const tally_device_t *dev, const void *ptr, ipc_buffer_t *b,
                   const char **why)
{
    size_t offset = 0;
    const char *err = dev->backend->ipc_export(dev->ctx, ptr, &b->handle, &offset);
    if (err) {
        *why = err;
        return false;
    }
    b->offset = offset;
    b->base = (uint64_t)((uintptr_t)ptr - offset);
    return true;
}

tally_status_t tally_ipc_exchange(tally_ipc_cache_t **cache, const tally_device_t *dev,
                                  MPI_Comm mpi, int rank, int size, const void *sendbuf,
                                  void *recvbuf, tally_ipc_peers_t *peers, const char **why)
{
    *why = NULL;
    if (!*cache) { /* every rank makes its cache at the same call: agree on it */
        tally_ipc_cache_t *made = cache_make(size);
        int ok = made != NULL, all = 0;
        if (PMPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, mpi) != MPI_SUCCESS || !all) {
            tally_ipc_cache_free(made, dev);
            *why = ok ? "a peer is out of memory" : "out of memory";
            return TALLY_ERR_UNSUPPORTED;
        }
        *cache = made;
    }
    tally_ipc_cache_t *c = *cache;
    ipc_record_t mine = {0};
    mine.ok = export(dev, sendbuf, &mine.send, why) && export(dev, recvbuf, &mine.recv, why);
    ipc_record_t *records = c->records;
    if (PMPI_Allgather(&mine, sizeof mine, MPI_BYTE, records, sizeof mine, MPI_BYTE, mpi) !=
        MPI_SUCCESS)
        return TALLY_ERR_MPI;
    c->calls++;
    int ok = mine.ok;
    for (int q = 0; q < size && ok; q++) {
        if (q == rank)
            continue;
        if (!records[q].ok) {
            ok = 0; /* said by that rank */
            break;
        }
        c->send[q] = map(c, dev, q, &records[q].send, why);
        c->recv[q] = c->send[q] ? map(c, dev, q, &records[q].recv, why) : NULL;
        ok = c->send[q] && c->recv[q];
    }
    int all = 0;
    if (PMPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, mpi) != MPI_SUCCESS)
        return TALLY_ERR_MPI;
    if (!all) {
        if (!*why)
            *why = "a peer could not share or map its buffers";
        return TALLY_ERR_UNSUPPORTED;
    }
    c->send[rank] = sendbuf;
    c->recv[rank] = recvbuf;
    *peers = (tally_ipc_peers_t){c->send, c->recv};
    return TALLY_SUCCESS;
}
