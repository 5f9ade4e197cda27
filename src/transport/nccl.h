/* nccl.h - NCCL communicators for the nccl algorithm, through the device
 * backend's nccl_* functions (mem/device.h): whether NCCL can serve a
 * communicator (decided once, at its creation) and its NCCL communicator,
 * made at the first call that needs it. */
#ifndef TALLY_TRANSPORT_NCCL_H
#define TALLY_TRANSPORT_NCCL_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "../mem/mem.h"
#include "../topo/shape.h"
#include "tally.h"

/* A communicator's NCCL state (in the communicator, zeroed at creation). */
typedef struct tally_nccl {
    void *handle;  /* the backend's NCCL communicator; NULL until made */
    bool failed;   /* it could not be made: never tried again */
    char why[256];
} tally_nccl_t;

/* Collective over mpi: true on every rank iff every rank has a device
 * backend with NCCL and a GPU that no other rank of its node uses (NCCL
 * cannot put two ranks on one GPU).  Otherwise why (len) says what is
 * missing, on the ranks where it is missing. */
bool tally_nccl_usable(const tally_device_t *dev, MPI_Comm mpi, const tally_shape_t *shape,
                       char *why, size_t len);

/* Collective over mpi: the NCCL communicator of the calling
 * communicator, made at the first call (rank 0's id sent over the MPI).
 * Every rank returns the same: TALLY_SUCCESS with *handle, or
 * TALLY_ERR_UNSUPPORTED where it could not be made on some rank (then on
 * every later call too), with *why. */
tally_status_t tally_nccl_get(tally_nccl_t *state, const tally_device_t *dev, MPI_Comm mpi,
                              int rank, int size, void **handle, const char **why);

/* Leaves the NCCL communicator, if one was made. */
void tally_nccl_free(tally_nccl_t *state, const tally_device_t *dev);

#endif
