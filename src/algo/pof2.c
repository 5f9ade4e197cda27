/* pof2.c - folding a non-power-of-two communicator; see pof2.h. */
#include "pof2.h"

#include "../core/log.h"
#include "../transport/p2p.h"

int tally_pof2_real_rank(const tally_pof2_t *fold, int newrank)
{
    return fold->participants[newrank];
}

int tally_pof2_below(int p)
{
    /* Constant time: the cost model asks for every rank of every step. */
    return p < 2 ? 1 : 1 << (31 - __builtin_clz((unsigned)p));
}

int tally_pof2_partner(const tally_shape_t *shape, int rank, int mask)
{
    const int newrank = shape->newrank_of[rank];
    if (newrank < 0 || (newrank ^ mask) >= tally_pof2_below(shape->size))
        return -1;
    return shape->participants[newrank ^ mask];
}

int tally_pof2_fold_partner(const tally_shape_t *shape, int rank, int unused)
{
    (void)unused;
    return shape->newrank_of[rank] < 0 ? shape->fold_peer[rank] : -1;
}

int tally_pof2_unfold_partner(const tally_shape_t *shape, int rank, int unused)
{
    (void)unused;
    return shape->newrank_of[rank] >= 0 ? shape->fold_peer[rank] : -1;
}

tally_status_t tally_pof2_fold(tally_call_t *call, tally_pof2_t *fold)
{
    const tally_shape_t *shape = call->shape;
    const int r = call->rank, peer = shape->fold_peer[r];
    tally_pof2_t f = {.pof2 = tally_pof2_below(call->size),
                      .newrank = shape->newrank_of[r],
                      .participants = shape->participants,
                      .data = call->sendbuf};
    if (peer >= 0 && f.newrank < 0) {
        /* Segmented like the partner's receive, which reduces as it goes. */
        tally_p2p_reduce_step_t step = {
            .sbuf = call->sendbuf, .scount = call->count, .dst = peer};
        TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
    } else if (peer >= 0) {
        tally_p2p_reduce_step_t step = {
            .local = call->sendbuf,
            .acc = call->recvbuf,
            .rcount = call->count,
            .src = peer,
            .incoming_first = peer < r, /* the lower rank's data first */
        };
        TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
        f.data = call->recvbuf;
    }
    *fold = f;
    return TALLY_SUCCESS;
}

tally_status_t tally_pof2_unfold(tally_call_t *call, const tally_pof2_t *fold)
{
    const int peer = call->shape->fold_peer[call->rank];
    const size_t bytes = call->count * call->elem_size;
    if (peer < 0)
        return TALLY_SUCCESS;
    if (fold->newrank < 0)
        return tally_p2p_deliver(call, NULL, 0, MPI_PROC_NULL, call->recvbuf, bytes, peer);
    return tally_p2p_deliver(call, call->recvbuf, bytes, peer, NULL, 0, MPI_PROC_NULL);
}
