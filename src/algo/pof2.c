/* pof2.c - folding a non-power-of-two communicator; see pof2.h. */
#include "pof2.h"

#include "../core/log.h"
#include "../transport/p2p.h"

int tally_pof2_real_rank(const tally_pof2_t *fold, int newrank)
{
    return fold->order[newrank < fold->rem ? 2 * newrank + 1 : newrank + fold->rem];
}

int tally_pof2_below(int p)
{
    /* Constant time: the cost model asks for every rank of every step. */
    return p < 2 ? 1 : 1 << (31 - __builtin_clz((unsigned)p));
}

static tally_pof2_t layout(const tally_shape_t *shape)
{
    const int p = shape->size, pof2 = tally_pof2_below(p);
    return (tally_pof2_t){.pof2 = pof2, .rem = p - pof2, .order = shape->fold_order};
}

int tally_pof2_partner(const tally_shape_t *shape, int rank, int mask)
{
    const tally_pof2_t f = layout(shape);
    const int i = shape->fold_position[rank];
    int newrank = i < 2 * f.rem ? (i % 2 ? i / 2 : -1) : i - f.rem;
    if (newrank < 0 || (newrank ^ mask) >= f.pof2)
        return -1;
    return tally_pof2_real_rank(&f, newrank ^ mask);
}

int tally_pof2_fold_partner(const tally_shape_t *shape, int rank, int unused)
{
    (void)unused;
    const tally_pof2_t f = layout(shape);
    const int i = shape->fold_position[rank];
    return i < 2 * f.rem && i % 2 == 0 ? f.order[i + 1] : -1;
}

int tally_pof2_unfold_partner(const tally_shape_t *shape, int rank, int unused)
{
    (void)unused;
    const tally_pof2_t f = layout(shape);
    const int i = shape->fold_position[rank];
    return i < 2 * f.rem && i % 2 == 1 ? f.order[i - 1] : -1;
}

tally_status_t tally_pof2_fold(tally_call_t *call, tally_pof2_t *fold)
{
    tally_pof2_t f = layout(call->shape);
    const int r = call->rank, i = call->shape->fold_position[r];
    f.data = call->sendbuf;
    if (i < 2 * f.rem) {
        if (i % 2 == 0) {
            /* Segmented like the partner's receive, which reduces as it goes. */
            tally_p2p_reduce_step_t step = {
                .sbuf = call->sendbuf, .scount = call->count, .dst = f.order[i + 1]};
            TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
            f.newrank = -1;
        } else {
            const int sender = f.order[i - 1];
            tally_p2p_reduce_step_t step = {
                .local = call->sendbuf,
                .acc = call->recvbuf,
                .rcount = call->count,
                .src = sender,
                .incoming_first = sender < r, /* the lower rank's data first */
            };
            TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
            f.newrank = i / 2;
            f.data = call->recvbuf;
        }
    } else {
        f.newrank = i - f.rem;
    }
    *fold = f;
    return TALLY_SUCCESS;
}

tally_status_t tally_pof2_unfold(tally_call_t *call, const tally_pof2_t *fold)
{
    const int i = call->shape->fold_position[call->rank];
    const size_t bytes = call->count * call->elem_size;
    if (i >= 2 * fold->rem)
        return TALLY_SUCCESS;
    if (i % 2 == 0)
        return tally_p2p_deliver(call, NULL, 0, MPI_PROC_NULL, call->recvbuf, bytes,
                                 fold->order[i + 1]);
    return tally_p2p_deliver(call, call->recvbuf, bytes, fold->order[i - 1], NULL, 0,
                             MPI_PROC_NULL);
}
