/* pof2.c - folding a non-power-of-two communicator; see pof2.h. */
#include "pof2.h"

#include "../core/log.h"
#include "../transport/p2p.h"

int tally_pof2_real_rank(const tally_pof2_t *fold, int newrank)
{
    return newrank < fold->rem ? 2 * newrank + 1 : newrank + fold->rem;
}

int tally_pof2_below(int p)
{
    /* Constant time: the cost model asks for every rank of every step. */
    return p < 2 ? 1 : 1 << (31 - __builtin_clz((unsigned)p));
}

int tally_pof2_partner(int rank, int size, int mask)
{
    const tally_pof2_t f = {.pof2 = tally_pof2_below(size), .rem = size - tally_pof2_below(size)};
    int newrank = rank < 2 * f.rem ? (rank % 2 ? rank / 2 : -1) : rank - f.rem;
    if (newrank < 0 || (newrank ^ mask) >= f.pof2)
        return -1;
    return tally_pof2_real_rank(&f, newrank ^ mask);
}

int tally_pof2_fold_partner(int rank, int size, int unused)
{
    (void)unused;
    int rem = size - tally_pof2_below(size);
    return rank < 2 * rem && rank % 2 == 0 ? rank + 1 : -1;
}

int tally_pof2_unfold_partner(int rank, int size, int unused)
{
    (void)unused;
    int rem = size - tally_pof2_below(size);
    return rank < 2 * rem && rank % 2 == 1 ? rank - 1 : -1;
}

tally_status_t tally_pof2_fold(tally_call_t *call, tally_pof2_t *fold)
{
    const int p = call->size, r = call->rank;
    int pof2 = tally_pof2_below(p);
    tally_pof2_t f = {.pof2 = pof2, .rem = p - pof2, .data = call->sendbuf};
    if (r < 2 * f.rem) {
        if (r % 2 == 0) {
            /* Segmented like the partner's receive, which reduces as it goes. */
            tally_p2p_reduce_step_t step = {
                .sbuf = call->sendbuf, .scount = call->count, .dst = r + 1};
            TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
            f.newrank = -1;
        } else {
            tally_p2p_reduce_step_t step = {
                .local = call->sendbuf,
                .acc = call->recvbuf,
                .rcount = call->count,
                .src = r - 1,
                .incoming_first = 1, /* the lower rank's data first */
            };
            TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
            f.newrank = r / 2;
            f.data = call->recvbuf;
        }
    } else {
        f.newrank = r - f.rem;
    }
    *fold = f;
    return TALLY_SUCCESS;
}

tally_status_t tally_pof2_unfold(tally_call_t *call, const tally_pof2_t *fold)
{
    const int r = call->rank;
    const size_t bytes = call->count * call->elem_size;
    if (r >= 2 * fold->rem)
        return TALLY_SUCCESS;
    if (r % 2 == 0)
        return tally_p2p_deliver(call, NULL, 0, MPI_PROC_NULL, call->recvbuf, bytes, r + 1);
    return tally_p2p_deliver(call, call->recvbuf, bytes, r - 1, NULL, 0, MPI_PROC_NULL);
}
