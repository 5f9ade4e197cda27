/* rabenseifner.c - Rabenseifner's allreduce: a reduce-scatter by recursive
 * halving, then an allgather by recursive doubling.
 *
 * The vector is cut into pof2 blocks.  In halving round k (distance pof2/2,
 * pof2/4, ..., 1) each participant keeps half of its current window of
 * blocks, sends the other half to its partner and reduces the partner's
 * copy of the kept half into it (segmented, so reduction overlaps the
 * transfer); the lower rank keeps the lower half.  After log2(pof2) rounds
 * participant i holds block i fully reduced, and doubling rounds (distance
 * 1, 2, ...) exchange finished windows until everyone has all blocks.  A
 * non-power-of-two p is folded first (pof2.h).  Each block is reduced in
 * one place, so every rank ends with the same bits.
 *
 * Cost: 2 log2(p) alpha + 2 (p-1)/p n beta + (p-1)/p n gamma, plus
 * 2 (alpha + n beta) + n gamma when p is not a power of two: the ring's
 * bandwidth with logarithmic latency.
 * Restrictions: host memory; any p, any count (blocks may be empty).
 *
 * Example, p = 4, blocks a b c d, by place (pof2.h: on one node ranks 0,
 * 1, 2, 3 take places 0, 2, 1, 3, so the first halving pairs 0 with 1 and
 * 2 with 3, ranks next to each other); "a01" sums places 0 and 1, "A" is
 * done:
 *
 *   round        place 0        place 1        place 2        place 3
 *   halve d=2    a02 b02 .  .   a13 b13 .  .   .  .  c02 d02  .  .  c13 d13
 *   halve d=1    A   .   .  .   .   B   .  .   .  .  C   .    .  .  .   D
 *   double d=1   A   B   .  .   A   B   .  .   .  .  C   D    .  .  C   D
 *   double d=2   A   B   C  D   A   B   C  D   A  B  C   D    A  B  C   D
 */
#include "algo.h"

#include "../core/log.h"
#include "../transport/p2p.h"
#include "pof2.h"

/* Elements in blocks [lo, hi) of n elements cut into nblocks. */
static size_t window_offset(size_t n, size_t nblocks, size_t lo)
{
    return tally_block_offset(n, nblocks, lo);
}

static size_t window_count(size_t n, size_t nblocks, size_t lo, size_t hi)
{
    return tally_block_offset(n, nblocks, hi) - tally_block_offset(n, nblocks, lo);
}

static tally_status_t rabenseifner_run(tally_call_t *call)
{
    const int r = call->rank;
    const size_t n = call->count, es = call->elem_size;
    char *recv = call->recvbuf;
    if (call->size == 1) {
        tally_call_copy_input(call);
        tally_call_finish(call, recv, n);
        return TALLY_SUCCESS;
    }
    tally_pof2_t fold;
    TALLY_CHECK(tally_pof2_fold(call, &fold));
    if (fold.newrank >= 0) {
        const size_t nb = (size_t)fold.pof2, me = (size_t)fold.newrank;
        size_t lo = 0, hi = nb;
        for (size_t mask = nb / 2; mask >= 1; mask >>= 1) {
            int partner = tally_pof2_real_rank(&fold, (int)(me ^ mask));
            size_t mid = lo + (hi - lo) / 2;
            size_t keep_lo = (me & mask) ? mid : lo, keep_hi = (me & mask) ? hi : mid;
            size_t give_lo = (me & mask) ? lo : mid, give_hi = (me & mask) ? mid : hi;
            size_t keep_off = window_offset(n, nb, keep_lo) * es;
            tally_p2p_reduce_step_t step = {
                .sbuf = fold.data + window_offset(n, nb, give_lo) * es,
                .scount = window_count(n, nb, give_lo, give_hi),
                .dst = partner,
                .local = fold.data + keep_off,
                .acc = recv + keep_off,
                .rcount = window_count(n, nb, keep_lo, keep_hi),
                .src = partner,
                .incoming_first = partner < r,
            };
            TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
            fold.data = recv;
            lo = keep_lo;
            hi = keep_hi;
        }
        tally_call_finish(call, recv + window_offset(n, nb, lo) * es,
                          window_count(n, nb, lo, hi));
        for (size_t mask = 1; mask < nb; mask <<= 1) {
            int partner = tally_pof2_real_rank(&fold, (int)(me ^ mask));
            size_t other_lo = (me & mask) ? lo - mask : hi;
            size_t other_hi = other_lo + mask;
            TALLY_CHECK(tally_p2p_deliver(
                call, recv + window_offset(n, nb, lo) * es,
                window_count(n, nb, lo, hi) * es, partner,
                recv + window_offset(n, nb, other_lo) * es,
                window_count(n, nb, other_lo, other_hi) * es, partner));
            lo = lo < other_lo ? lo : other_lo;
            hi = hi > other_hi ? hi : other_hi;
        }
    }
    return tally_pof2_unfold(call, &fold);
}

static double rabenseifner_predict(const tally_cost_t *c)
{
    const int p = c->shape->size, pof2 = tally_pof2_below(p);
    double t = tally_cost_call(c);
    if (p == 1)
        return t + tally_cost_copy(c, c->bytes);
    if (pof2 != p)
        t += tally_cost_step(c, tally_pof2_fold_partner, 0, c->bytes) +
             tally_cost_reduce(c, c->bytes) +
             tally_cost_deliver(c, tally_pof2_unfold_partner, 0, c->bytes);
    /* Halving sends half the window at distance pof2/2 first; doubling
     * sends the same amounts back in reverse order. */
    double window = c->bytes;
    for (int mask = pof2 / 2; mask >= 1; mask >>= 1) {
        window /= 2.0;
        t += tally_cost_step(c, tally_pof2_partner, mask, window) +
             tally_cost_reduce(c, window) +
             tally_cost_deliver(c, tally_pof2_partner, mask, window);
    }
    return t;
}

const tally_algo_t tally_algo_rabenseifner = {
    .name = "rabenseifner",
    .summary = "recursive-halving reduce-scatter + recursive-doubling allgather",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, TALLY_ALGO_HOST_ONLY,
                     "host memory only"},
    .run = rabenseifner_run,
    .predict = rabenseifner_predict,
};
