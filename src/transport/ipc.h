/* ipc.h - device memory of the node's other ranks mapped into this
 * process (CUDA IPC, or the emulated backend's), for the ipc algorithm.
 * Each call exchanges the handles of every rank's two buffers; a peer's
 * allocation is opened once and kept, keyed by the peer and its handle.
 * An allocation at an address where the peer had another (a new handle
 * for the same base) closes the old mapping: it was freed. */
#ifndef TALLY_IPC_H
#define TALLY_IPC_H

#include <mpi.h>
#include <stddef.h>

#include "../mem/mem.h"
#include "tally.h"

typedef struct tally_ipc_cache tally_ipc_cache_t;

/* Where the peers' buffers of one call are mapped here: send[q] and
 * recv[q] for q != rank (the own entries are the caller's buffers). */
typedef struct tally_ipc_peers {
    const void **send;
    void **recv;
} tally_ipc_peers_t;

/* Collective over mpi (size ranks, all on one node): exchanges the
 * handles of sendbuf and recvbuf and maps every peer's into *peers (arrays
 * owned by the cache, valid until the next exchange).  Every rank returns
 * the same: TALLY_SUCCESS, or TALLY_ERR_UNSUPPORTED when some rank could
 * not export or map (*why says what failed here, or that a peer failed),
 * or an MPI error.  *cache is made on first use. */
tally_status_t tally_ipc_exchange(tally_ipc_cache_t **cache, const tally_device_t *dev,
                                  MPI_Comm mpi, int rank, int size, const void *sendbuf,
                                  void *recvbuf, tally_ipc_peers_t *peers, const char **why);

/* Closes every mapping and frees the cache (NULL: nothing). */
void tally_ipc_cache_free(tally_ipc_cache_t *cache, const tally_device_t *dev);

#endif
