/* shm.c - the node's shared window and the barrier over it (see shm.h).
 *
 * The barrier is a counter per rank, each on its own cache line: entering
 * the k-th barrier stores k into one's own counter (release) and waits
 * until every counter of the node reads at least k (acquire).  No rank ever
 * writes another's counter, so there are no atomic read-modify-writes, and
 * the counters only grow, so a rank already in barrier k + 1 still releases
 * one waiting in barrier k.  Waiting spins briefly, then yields the CPU:
 * ranks may share cores (oversubscribed, or emulated hosts on one machine);
 * a wait that lasts (a stuck peer) sleeps, longer and longer, so that it
 * does not burn a core, and with TALLY_TIMEOUT gives up at the deadline.
 * A background call's wait sleeps right after the spinning (backoff.h). */
#include "shm.h"

#include <sched.h>
#include <stdlib.h>

#include "../core/call.h"
#include "../core/log.h"
#include "../core/trace.h"
#include "backoff.h"
#include "p2p.h"

#define SPINS_BEFORE_YIELD 4000
#define SPINS_PER_POLL 256
#define SPINS_BEFORE_SLEEP (SPINS_BEFORE_YIELD + 20000)
#define BACKGROUND_SPINS 1000 /* a background call's, before it sleeps */

static volatile uint64_t *counter_of(const tally_shm_t *shm, int local)
{
    return (volatile uint64_t *)shm->segment[local];
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void tally_shm_progress_run(const tally_shm_progress_t *progress)
{
    if (!progress)
        return;
    tally_p2p_poll(progress->mpi);
    if (progress->advance)
        progress->advance(progress->ctx);
}

void tally_shm_barrier(tally_shm_t *shm, const tally_shm_progress_t *progress,
                       struct tally_watch *watch, bool background)
{
    if (watch && watch->expired)
        return; /* the call is over: let it unwind */
    const uint64_t k = ++shm->epoch;
    __atomic_store_n(counter_of(shm, shm->local_rank), k, __ATOMIC_RELEASE);
    const unsigned sleep_after = background ? BACKGROUND_SPINS : SPINS_BEFORE_SLEEP;
    for (int q = 0; q < shm->local_size; q++) {
        unsigned spins = 0;
        tally_backoff_t backoff = tally_backoff_start(background);
        while (__atomic_load_n(counter_of(shm, q), __ATOMIC_ACQUIRE) < k) {
            ++spins;
            /* Progress after every sleep too: a sleeping rank must not
             * leave its messages to other nodes unposted. */
            if (spins % SPINS_PER_POLL == 0 || shm->yield || spins > sleep_after)
                tally_shm_progress_run(progress);
            if (spins > sleep_after) {
                if (watch && tally_trace_now() > watch->deadline) {
                    watch->expired = true;
                    watch->waiting = "the node's shared-memory barrier";
                    watch->peer = q;
                    watch->local_peer = true;
                    return;
                }
                tally_backoff_sleep(&backoff);
            } else if (shm->yield || spins > SPINS_BEFORE_YIELD) {
                sched_yield();
            } else {
                cpu_relax();
            }
        }
    }
}

tally_status_t tally_shm_create(MPI_Comm comm, size_t chunk, bool yield, tally_shm_t **out)
{
    int rank;
    MPI_Comm node;
    TALLY_MPI_CHECK(NULL, PMPI_Comm_rank(comm, &rank));
    TALLY_MPI_CHECK(NULL, PMPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                                               &node));
    tally_status_t st = TALLY_SUCCESS;
    int local_size = 0;
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Comm_size(node, &local_size), st, fail_node);
    tally_shm_t *shm = calloc(1, sizeof *shm);
    char **segment = calloc((size_t)local_size, sizeof *segment);
    /* The node agrees on the allocations before the window's collective
     * allocation, which a rank that failed alone would leave the others
     * waiting in. */
    int ok = shm && segment, all_ok = 0;
    int rc = PMPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, node);
    if (rc != MPI_SUCCESS || !all_ok) {
        if (rc != MPI_SUCCESS)
            tally_log_mpi_error(NULL, rc, "PMPI_Allreduce", __FILE__, __LINE__);
        free(segment);
        free(shm);
        st = rc != MPI_SUCCESS ? TALLY_ERR_MPI : TALLY_ERR_NO_MEMORY;
        goto fail_node;
    }
    *shm = (tally_shm_t){.node = node, .win = MPI_WIN_NULL, .local_size = local_size,
                         .chunk = chunk, .segment = segment, .yield = yield};
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Comm_rank(node, &shm->local_rank), st, fail_segments);
    /* Each segment on its own pages, placed by its owner's first touch. */
    MPI_Info info;
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Info_create(&info), st, fail_segments);
    PMPI_Info_set(info, "alloc_shared_noncontig", "true");
    char *mine = NULL;
    rc = PMPI_Win_allocate_shared((MPI_Aint)(TALLY_SHM_HEADER_BYTES + 2 * chunk), 1, info,
                                  shm->node, &mine, &shm->win);
    PMPI_Info_free(&info);
    if (rc != MPI_SUCCESS) {
        tally_log_mpi_error(NULL, rc, "PMPI_Win_allocate_shared", __FILE__, __LINE__);
        st = TALLY_ERR_MPI;
        goto fail_segments;
    }
    for (int q = 0; q < shm->local_size; q++) {
        MPI_Aint size;
        int disp;
        TALLY_MPI_CHECK_GOTO(NULL, PMPI_Win_shared_query(shm->win, q, &size, &disp,
                                                         &shm->segment[q]),
                             st, fail_win);
    }
    /* A passive-target epoch for the window's whole life: loads and stores
     * are then legal MPI accesses; the barrier orders them. */
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Win_lock_all(MPI_MODE_NOCHECK, shm->win), st, fail_win);
    __atomic_store_n(counter_of(shm, shm->local_rank), 0, __ATOMIC_RELEASE);
    /* No rank may read a counter before its owner has zeroed it. */
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Barrier(shm->node), st, fail_lock);
    *out = shm;
    return TALLY_SUCCESS;

fail_lock:
    PMPI_Win_unlock_all(shm->win);
fail_win:
    PMPI_Win_free(&shm->win);
fail_segments:
    free(shm->segment);
    free(shm);
fail_node:
    PMPI_Comm_free(&node);
    return st;
}

void tally_shm_destroy(tally_shm_t *shm)
{
    if (!shm)
        return;
    PMPI_Win_unlock_all(shm->win);
    PMPI_Win_free(&shm->win);
    free(shm->segment);
    PMPI_Comm_free(&shm->node);
    free(shm);
}
