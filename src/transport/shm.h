/* shm.h - intra-node shared memory: one MPI-3 shared window per node of a
 * communicator, in which every rank owns a segment that all its node's
 * ranks can read and write with plain loads and stores.
 *
 * Each segment holds a small header (this rank's barrier counter, on its
 * own cache line) and two data sets of `chunk` bytes each, so that a
 * pipeline can fill one set while slower ranks still read the other. */
#ifndef TALLY_SHM_H
#define TALLY_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tally.h"

typedef struct tally_shm {
    MPI_Comm node;      /* this node's ranks, in communicator order */
    MPI_Win win;
    int local_rank, local_size;
    size_t chunk;       /* bytes of each data set */
    char **segment;     /* [local_size]: each rank's segment, mapped here */
    uint64_t epoch;     /* barriers this rank has entered */
    uint64_t rounds;    /* rounds run through the window, over all calls */
    bool yield;         /* ranks outnumber cores: give the CPU away while waiting */
} tally_shm_t;

/* Collective over comm: splits it by node and allocates the window (two
 * sets of `chunk` bytes per rank).  On failure nothing is left allocated;
 * *out is set only on success.  The caller agrees on the result across
 * the whole communicator. */
tally_status_t tally_shm_create(MPI_Comm comm, size_t chunk, bool yield, tally_shm_t **out);
void tally_shm_destroy(tally_shm_t *shm);

/* Bytes before a segment's data sets: its barrier counter, alone on its
 * cache line(s). */
#define TALLY_SHM_HEADER_BYTES 128

/* Data set `set` (0 or 1) of local rank `local`'s segment.  Inline: a fused
 * call of many small tensors asks for it once per tensor and peer. */
static inline char *tally_shm_data(const tally_shm_t *shm, int local, unsigned set)
{
    return shm->segment[local] + TALLY_SHM_HEADER_BYTES + (size_t)set * shm->chunk;
}

/* The data set for the next round: rounds alternate between the two sets
 * over all calls, not only within one, so a rank racing into the next call
 * never writes the set a slower rank still reads. */
static inline unsigned tally_shm_next_set(tally_shm_t *shm)
{
    return (unsigned)(shm->rounds++ & 1);
}

/* What a rank does for its messages to other nodes while it works or
 * waits on the node: MPI is polled on `mpi` (MPI_COMM_NULL: never), so
 * that its non-blocking messages move (a peer on another node may wait for
 * them while a local rank waits for this one); and advance(ctx), if set,
 * posts the next messages of a schedule whose earlier ones completed, so
 * that the wire does not idle while the rank waits for a local one.
 * advance must not block or fail the caller: it keeps its own status. */
typedef struct tally_shm_progress {
    MPI_Comm mpi;
    void (*advance)(void *ctx);
    void *ctx;
} tally_shm_progress_t;

/* Runs `progress` (NULL: nothing) once. */
void tally_shm_progress_run(const tally_shm_progress_t *progress);

/* Returns when every rank of the node has entered it as often as this one:
 * what a rank stored before entering is visible to every rank after.
 * While waiting it runs `progress` (NULL: nothing) now and then; without
 * the poll, a peer on another node could wait for a send that only moves
 * when this rank calls MPI, while this rank waits for a local rank that
 * waits for that peer.  `watch` (NULL: none): past its deadline the
 * barrier gives up (watch->expired) and every later one returns at once,
 * so the call ends and reports TALLY_ERR_TIMEOUT (its data then mean
 * nothing).  `background` (a call on the progress thread, call.h): the
 * wait sleeps soon instead of yielding the core again and again. */
struct tally_watch;
void tally_shm_barrier(tally_shm_t *shm, const tally_shm_progress_t *progress,
                       struct tally_watch *watch, bool background);


#endif
