/* groups.c - the node window and the groups across nodes, made at
 * communicator creation (see groups.h).
 *
 * Two agreements keep every rank in step: after the window (so that no
 * rank goes on to the splits while another has given up), and after the
 * groups.  Between them every rank takes part in every split and every
 * member in its group's creation, carrying its own failure along instead
 * of leaving, so a rank that failed never leaves others waiting in a
 * split or a creation it skipped. */
#include "groups.h"

#include <stdlib.h>

#include "comm.h"
#include "log.h"

int tally_groups_shards(const tally_comm_t *comm, tally_shard_kind_t kind)
{
    return kind == TALLY_SHARDS_LEADER ? 1 : comm->shape.max_per_node;
}

static void free_kind(tally_shard_groups_t *g)
{
    for (int s = 0; g->cross && s < g->shards; s++)
        tally_comm_destroy(g->cross[s]);
    free(g->cross);
    *g = (tally_shard_groups_t){0, NULL};
}

void tally_groups_destroy(tally_comm_t *comm)
{
    tally_groups_t *g = &comm->groups;
    for (int k = TALLY_SHARDS_KINDS - 1; k >= 0; k--)
        free_kind(&g->kind[k]);
    tally_shm_destroy(g->shm);
    g->shm = NULL;
}

/* TALLY_DEBUG_FAIL_SETUP (tests only): this rank's last set-up step fails
 * as if out of memory. */
static tally_status_t injected(const tally_comm_t *comm, const char *stage)
{
    if (comm->config.fail_setup_rank != comm->rank || comm->nested)
        return TALLY_SUCCESS;
    TALLY_LOG(comm, TALLY_LOG_WARN, "TALLY_DEBUG_FAIL_SETUP=%d: failing this rank's %s",
              comm->rank, stage);
    return TALLY_ERR_NO_MEMORY;
}

/* The groups of one kind: for each shard, the owning rank of every node.
 * Every rank walks the shards in the same order, so a rank in several
 * groups (on a node with fewer ranks) never waits for a group whose
 * members wait for it.  Returns this rank's status; the caller agrees. */
static tally_status_t make_kind(tally_comm_t *comm, tally_shard_kind_t kind,
                                tally_status_t st)
{
    tally_shard_groups_t *g = &comm->groups.kind[kind];
    const int S = tally_groups_shards(comm, kind);
    const int L = comm->shape.local_size, l = comm->shape.local_rank;
    g->shards = S;
    g->cross = calloc((size_t)S, sizeof *g->cross);
    if (!g->cross && st == TALLY_SUCCESS)
        st = TALLY_ERR_NO_MEMORY;
    for (int s = 0; s < S; s++) {
        const bool member = s % L == l;
        MPI_Comm group = MPI_COMM_NULL;
        int rc = PMPI_Comm_split(comm->mpi, member ? 0 : MPI_UNDEFINED, comm->shape.node,
                                 &group);
        if (rc != MPI_SUCCESS) {
            /* No communicator to carry the failure on: the agreement below
             * still reaches everyone, but this group's other members may
             * already wait in its creation (MPI errors here are fatal in
             * practice). */
            tally_log_mpi_error(comm, rc, "PMPI_Comm_split", __FILE__, __LINE__);
            st = TALLY_ERR_MPI;
            continue;
        }
        if (!member)
            continue;
        tally_comm_t *made = NULL;
        tally_status_t made_st = tally_comm_create_nested(group, comm, st, &made);
        PMPI_Comm_free(&group);
        if (made_st == TALLY_SUCCESS && g->cross)
            g->cross[s] = made;
        else if (made_st == TALLY_SUCCESS)
            tally_comm_destroy(made);
        else if (st == TALLY_SUCCESS)
            st = made_st;
    }
    return st;
}

/* `why` also names the reason in TALLY_STATS for the calls that run the
 * ring instead. */
static void give_up(tally_comm_t *comm, tally_status_t local, tally_status_t all,
                    const char *why)
{
    tally_groups_destroy(comm);
    comm->groups.unavailable = why;
    TALLY_LOG(comm, TALLY_LOG_WARN,
              "%s (%s); shm, hier and hier_leader run the point-to-point ring on this "
              "communicator",
              why, local != TALLY_SUCCESS ? tally_strerror(local) : tally_strerror(all));
}

void tally_groups_create(tally_comm_t *comm)
{
    const tally_shape_t *shape = &comm->shape;
    comm->groups = (tally_groups_t){0};
    const bool window = shape->max_per_node > 1;
    const bool across = shape->nodes > 1 && window;
    if (!window)
        return;

    tally_status_t st = tally_shm_create(comm->mpi, comm->config.shm_chunk,
                                         shape->oversubscription > 1.0, &comm->groups.shm);
    /* Injected after the collective steps, which every rank must take. */
    if (st == TALLY_SUCCESS && !across)
        st = injected(comm, "shared window");
    tally_status_t all = tally_comm_agree(comm->mpi, st, 0, "shared windows", "");
    if (all != TALLY_SUCCESS) {
        give_up(comm, st, all, "no shared window could be made at creation");
        return;
    }
    if (!across)
        return;

    st = injected(comm, "groups across nodes");
    for (int k = 0; k < TALLY_SHARDS_KINDS; k++)
        st = make_kind(comm, (tally_shard_kind_t)k, st);
    all = tally_comm_agree(comm->mpi, st, 0, "groups across nodes", "");
    if (all != TALLY_SUCCESS)
        give_up(comm, st, all, "no groups across nodes could be made at creation");
}
