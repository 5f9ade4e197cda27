/* recursive_doubling.c - recursive-doubling allreduce: log2(p) rounds in
 * which partners at distance 1, 2, 4, ... exchange their whole vectors and
 * both reduce them.
 *
 * Both partners reduce the same two operands in the same order (the lower
 * rank's first), so they compute the same bits; a non-power-of-two p is
 * folded first (pof2.h).
 *
 * Cost: log2(pof2) (alpha + n beta + n gamma), pof2 the largest power of
 * two <= p, plus 2 (alpha + n beta) + n gamma when p is not a power of two: latency-optimal, so the choice
 * for small vectors; it moves the whole vector every round.
 * Restrictions: host memory; any p, any count.
 *
 * Example, p = 5 on one node: rank 0 folds into rank 1, and ranks 1, 2,
 * 3, 4 take places 0, 2, 1, 3 (bit-reversed, pof2.h).
 *
 *   step     rank 0    rank 1     rank 2     rank 3     rank 4
 *   fold     -> 1      x01        x2         x3         x4
 *   mask 1             x01+x3     x2+x4      x01+x3     x2+x4     (1<->3, 2<->4)
 *   mask 2             X          X          X          X         (1<->2, 3<->4)
 *   unfold   X         -> 0
 */
#include "algo.h"

#include "../core/log.h"
#include "../transport/p2p.h"
#include "pof2.h"

static tally_status_t recursive_doubling_run(tally_call_t *call)
{
    const int r = call->rank;
    if (call->size == 1) {
        tally_call_copy_input(call);
        tally_call_finish(call, call->recvbuf, call->count);
        return TALLY_SUCCESS;
    }
    tally_pof2_t fold;
    TALLY_CHECK(tally_pof2_fold(call, &fold));
    if (fold.newrank >= 0) {
        for (int mask = 1; mask < fold.pof2; mask <<= 1) {
            int partner = tally_pof2_real_rank(&fold, fold.newrank ^ mask);
            tally_p2p_reduce_step_t step = {
                .sbuf = fold.data,
                .scount = call->count,
                .dst = partner,
                .local = fold.data,
                .acc = call->recvbuf,
                .rcount = call->count,
                .src = partner,
                .incoming_first = partner < r,
            };
            TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
            fold.data = call->recvbuf;
        }
        tally_call_finish(call, call->recvbuf, call->count);
    }
    return tally_pof2_unfold(call, &fold);
}

static double recursive_doubling_predict(const tally_cost_t *c)
{
    const int p = c->shape->size, pof2 = tally_pof2_below(p);
    double t = tally_cost_call(c);
    if (p == 1)
        return t + tally_cost_copy(c, c->bytes);
    if (pof2 != p) /* fold (reduced on arrival) and unfold */
        t += tally_cost_step(c, tally_pof2_fold_partner, 0, c->bytes) +
             tally_cost_reduce(c, c->bytes) +
             tally_cost_deliver(c, tally_pof2_unfold_partner, 0, c->bytes);
    for (int mask = 1; mask < pof2; mask <<= 1)
        t += tally_cost_step(c, tally_pof2_partner, mask, c->bytes) +
             tally_cost_reduce(c, c->bytes);
    return t;
}

const tally_algo_t tally_algo_recursive_doubling = {
    .name = "recursive_doubling",
    .summary = "log2(p) whole-vector exchanges; latency-optimal, for small vectors",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, TALLY_ALGO_HOST_ONLY,
                     "host memory only"},
    .run = recursive_doubling_run,
    .predict = recursive_doubling_predict,
};
