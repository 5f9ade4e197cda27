/* pof2.h - folding a non-power-of-two communicator onto a power of two, for
 * the recursive algorithms (as in MPICH and Open MPI).
 *
 * With pof2 the largest power of two <= p and rem = p - pof2, each even rank
 * r < 2 rem sends its whole vector to r + 1 and sits out; r + 1 reduces the
 * pair and takes part as new rank r / 2; ranks r >= 2 rem are new rank
 * r - rem.  At the end each odd r < 2 rem sends the result back to r - 1.
 * New ranks keep the order of real ranks, so "lower rank first" operand
 * order survives the folding. */
#ifndef TALLY_POF2_H
#define TALLY_POF2_H

#include "algo.h"

typedef struct tally_pof2 {
    int pof2;    /* participants after folding */
    int rem;     /* folded pairs */
    int newrank; /* this rank's index among participants, -1 if it sits out */
    const char *data; /* where this rank's current contribution lives */
} tally_pof2_t;

/* For the cost model (tally_partner_fn): the partner of real rank `rank`
 * of `size` when participants exchange at distance `mask`, or -1 for a
 * rank that sits out; and the rank that `rank` sends to in the fold and
 * in the unfold (one way: -1 for the receiving end). */
int tally_pof2_partner(int rank, int size, int mask);
int tally_pof2_fold_partner(int rank, int size, int unused);
int tally_pof2_unfold_partner(int rank, int size, int unused);
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
