/* pof2.h - folding a non-power-of-two communicator onto a power of two, for
 * the recursive algorithms (as in MPICH and Open MPI).
 *
 * With pof2 the largest power of two <= p and rem = p - pof2, the ranks are
 * taken in the shape's fold_order (pairs that share a node first, so that
 * the fold and the unfold stay off the network where they can; see
 * shape.h), index i in that order.  Each even i < 2 rem sends its whole
 * vector to i + 1 and sits out; i + 1 reduces the pair and takes part as
 * new rank i / 2; i >= 2 rem is new rank i - rem.  At the end each odd
 * i < 2 rem sends the result back to i - 1.  Partners agree on the operand
 * order (the lower real rank first), so both compute the same bits. */
#ifndef TALLY_POF2_H
#define TALLY_POF2_H

#include "algo.h"

typedef struct tally_pof2 {
    int pof2;    /* participants after folding */
    int rem;     /* folded pairs */
    int newrank; /* this rank's index among participants, -1 if it sits out */
    const int *order; /* the shape's fold_order */
    const char *data; /* where this rank's current contribution lives */
} tally_pof2_t;

/* For the cost model (tally_partner_fn): the partner of real rank `rank`
 * when participants exchange at distance `mask`, or -1 for a rank that
 * sits out; and the rank that `rank` sends to in the fold and in the
 * unfold (one way: -1 for the receiving end). */
int tally_pof2_partner(const struct tally_shape *shape, int rank, int mask);
int tally_pof2_fold_partner(const struct tally_shape *shape, int rank, int unused);
int tally_pof2_unfold_partner(const struct tally_shape *shape, int rank, int unused);
/* The largest power of two <= p. */
int tally_pof2_below(int p);

/* The real rank of participant `newrank`. */
int tally_pof2_real_rank(const tally_pof2_t *fold, int newrank);

/* Folds: ranks that sit out send their data; their partners reduce it into
 * recvbuf.  Sets fold->data to sendbuf or recvbuf. */
tally_status_t tally_pof2_fold(tally_call_t *call, tally_pof2_t *fold);

/* Unfolds: the partners send the finished recvbuf to the ranks that sat out. */
tally_status_t tally_pof2_unfold(tally_call_t *call, const tally_pof2_t *fold);

#endif
