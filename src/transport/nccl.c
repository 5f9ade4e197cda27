/* nccl.c - NCCL communicators for the nccl algorithm (see nccl.h). */
#include "nccl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each rank says of itself at creation. */
typedef struct nccl_record {
    int32_t ready; /* a backend with NCCL and a current device */
    int32_t node;
    char pci[32];  /* the current device's bus id */
} nccl_record_t;

bool tally_nccl_usable(const tally_device_t *dev, MPI_Comm mpi, const tally_shape_t *shape,
                       char *why, size_t len)
{
    nccl_record_t mine = {0};
    mine.node = shape->node;
    const char *missing = !dev->backend ? dev->why : dev->backend->nccl_missing(dev->ctx);
    if (!missing) {
        char name[128];
        const int current = dev->backend->current(dev->ctx);
        missing = current < 0 ? "no current device"
                              : dev->backend->describe(dev->ctx, current, name, sizeof name,
                                                       mine.pci, sizeof mine.pci);
    }
    mine.ready = missing == NULL;
    if (missing)
        snprintf(why, len, "%s", missing);
    /* One agreement first, so that runs without NCCL anywhere stop here. */
    nccl_record_t *all = mine.ready ? calloc((size_t)shape->size, sizeof *all) : NULL;
    int ok = all != NULL, everyone = 0;
    if (mine.ready && !all)
        snprintf(why, len, "out of memory");
    if (PMPI_Allreduce(&ok, &everyone, 1, MPI_INT, MPI_LAND, mpi) != MPI_SUCCESS || !everyone) {
        if (ok)
            snprintf(why, len, "a rank has no NCCL or no GPU");
        free(all);
        return false;
    }
    if (PMPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, mpi) !=
        MPI_SUCCESS)
        ok = 0;
    for (int a = 0; ok && a < shape->size; a++) {
        ok = all[a].ready;
        for (int b = 0; ok && b < a; b++)
            if (all[b].node == all[a].node && strcmp(all[b].pci, all[a].pci) == 0) {
                ok = 0;
                snprintf(why, len, "ranks %d and %d share the GPU %s", b, a, all[a].pci);
            }
    }
    free(all);
    if (PMPI_Allreduce(&ok, &everyone, 1, MPI_INT, MPI_LAND, mpi) != MPI_SUCCESS)
        return false;
    return everyone != 0;
}

tally_status_t tally_nccl_get(tally_nccl_t *s, const tally_device_t *dev, MPI_Comm mpi,
                              int rank, int size, void **handle, const char **why)
{
    if (s->handle) {
        *handle = s->handle;
        return TALLY_SUCCESS;
    }
    if (s->failed) { /* every rank failed together */
        *why = s->why;
        return TALLY_ERR_UNSUPPORTED;
    }
    /* Rank 0's id, with whether it has one: NCCL's join is collective and
     * blocking, so a failure must be known before anyone starts. */
    struct {
        int32_t ok;
        unsigned char id[TALLY_NCCL_ID_BYTES];
    } msg = {.ok = 1};
    const char *err = NULL;
    if (rank == 0) {
        err = dev->backend->nccl_id(dev->ctx, msg.id);
        msg.ok = err == NULL;
    }
    if (PMPI_Bcast(&msg, sizeof msg, MPI_BYTE, 0, mpi) != MPI_SUCCESS)
        return TALLY_ERR_MPI;
    int joined = 0;
    void *h = NULL;
    if (msg.ok) {
        err = dev->backend->nccl_join(dev->ctx, msg.id, size, rank, &h);
        joined = err == NULL;
    }
    int everyone = 0;
    if (PMPI_Allreduce(&joined, &everyone, 1, MPI_INT, MPI_LAND, mpi) != MPI_SUCCESS)
        return TALLY_ERR_MPI;
    if (!everyone) {
        if (h)
            dev->backend->nccl_leave(dev->ctx, h);
        s->failed = true;
        snprintf(s->why, sizeof s->why, "no NCCL communicator: %s",
                 err ? err : msg.ok ? "a peer could not join" : "rank 0 has no NCCL id");
        *why = s->why;
        return TALLY_ERR_UNSUPPORTED;
    }
    s->handle = h;
    *handle = h;
    return TALLY_SUCCESS;
}

void tally_nccl_free(tally_nccl_t *state, const tally_device_t *dev)
{
    if (state->handle)
        dev->backend->nccl_leave(dev->ctx, state->handle);
    state->handle = NULL;
}
