/* pof2.h - folding a non-power-of-two communicator onto a power of two, for
 * the recursive algorithms (as in MPICH and Open MPI).
 *
 * With pof2 the largest power of two <= p, p - pof2 pairs of ranks fold
 * first: one rank of each pair sends its whole vector to the other and
 * sits out, the other reduces the pair and takes part.  The pof2
 * participants run the algorithm in their places (newrank 0 .. pof2-1), and
 * at the end each receiving rank sends the result back.  The pairs and the
 * places come from the shape (tally_shape_derive): pairs on one node first,
 * and places that make ranks near each other partners in the first steps.
 * Partners agree on the operand order (the lower real rank first), so both
 * compute the same bits. */
#ifndef TALLY_POF2_H
#define TALLY_POF2_H

#include "algo.h"

typedef struct tally_pof2 {
    int pof2;    /* participants after folding */
    int newrank; /* this rank's place among the participants, -1 if it sits out */
    const int *participants; /* the shape's: the rank at each place */
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
