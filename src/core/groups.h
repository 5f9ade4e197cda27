/* groups.h - the collective resources a communicator makes at creation for
 * the algorithms that work through shared memory: the node's shared window
 * (shm, hier, hier_leader) and, per kind of sharding, the groups across
 * nodes (hier, hier_leader).
 *
 * A message is cut into S shards; local rank l of a node of L ranks owns
 * the shards s with s mod L = l.  S is the same on every node, so a shard's
 * owners on the different nodes form a group with its own tally
 * communicator (one rank per node).  Per rank: S = the most ranks on any
 * node; leader: S = 1, the node leaders.
 *
 * Made at tally_comm_create, where every rank is anyway, and agreed: if
 * any rank cannot make its part, no rank keeps any, and the algorithms
 * that need them run the ring instead (reported once).
 *
 * groups.c and comm.c call each other: the one file-level cycle left, and
 * a real one, since a communicator's groups are communicators.  Creation
 * recurses one level only: a group holds one rank per node, so it makes no
 * window and no groups of its own. */
#ifndef TALLY_GROUPS_H
#define TALLY_GROUPS_H

#include <stdbool.h>
#include "../transport/shm.h"
#include "tally.h"

struct tally_comm;

typedef enum tally_shard_kind {
    TALLY_SHARDS_PER_RANK, /* S = max ranks per node (hier, shm) */
    TALLY_SHARDS_LEADER,   /* S = 1 (hier_leader) */
    TALLY_SHARDS_KINDS
} tally_shard_kind_t;

typedef struct tally_shard_groups {
    int shards;                /* S */
    struct tally_comm **cross; /* [S]: shard s's group; NULL where this rank is not in it */
} tally_shard_groups_t;

typedef struct tally_groups {
    tally_shm_t *shm;          /* NULL: not made (one rank alone) or unavailable */
    tally_shard_groups_t kind[TALLY_SHARDS_KINDS]; /* cross == NULL on one node */
    bool busy;                 /* a call is using the window */
    const char *unavailable;   /* why they could not be made; NULL when fine */
} tally_groups_t;

/* Collective over comm (its shape, configuration and MPI communicator
 * already set): makes whatever the shape can use.  A failure on any rank
 * leaves every rank with none and groups.unavailable saying why. */
void tally_groups_create(struct tally_comm *comm);
void tally_groups_destroy(struct tally_comm *comm);

/* The number of shards of `kind` on comm. */
int tally_groups_shards(const struct tally_comm *comm, tally_shard_kind_t kind);

#endif
