/* ring.c - ring allreduce (Patarasuk and Yuan): a reduce-scatter around the
 * ring, then an allgather around the ring.
 *
 * The ranks are placed on the ring node by node (the shape's ring_order),
 * so that it crosses each node's link once each way whatever the mapping;
 * r below is a rank's place on the ring.
 *
 * The vector is cut into p blocks (sizes differ by at most one element).
 * In reduce-scatter step s, rank r sends block (r - s) mod p to r + 1 and
 * receives block (r - s - 1) mod p from r - 1, reducing it into its own
 * contribution; each step is cut into segments so that reducing one segment
 * overlaps receiving the next.  After p - 1 steps rank r holds block
 * (r + 1) mod p fully reduced, and p - 1 allgather steps circulate the
 * finished blocks.  Each element is reduced in one place only, so every
 * rank ends with the same bits.
 *
 * Cost: 2(p-1) alpha + 2 (p-1)/p n beta + (p-1)/p n gamma (n bytes, beta per
 * byte on the wire, gamma per byte reduced): bandwidth-optimal, latency
 * linear in p.
 * Restrictions: host memory; any p, any count (blocks may be empty).
 *
 * Example, p = 3, blocks a b c; "a0" is rank 0's contribution to block a,
 * "a01" the sum of ranks 0 and 1, "A" a finished block:
 *
 *            rank 0        rank 1        rank 2
 *   start    a0 b0 c0      a1 b1 c1      a2 b2 c2
 *   RS s=0   a0 b0 c20     a01 b1 c1     a2 b12 c2     (0 sends a, 1 b, 2 c)
 *   RS s=1   a0 B  c20     a01 b1 C      A  b12 c2     (0 sends c, 1 a, 2 b)
 *   AG s=0   A  B  c20     a01 B  C      A  b12 C      (0 sends b, 1 c, 2 a)
 *   AG s=1   A  B  C       A   B  C      A  B   C      (0 sends a, 1 b, 2 c)
 */
#include "algo.h"

#include "../core/log.h"
#include "../transport/p2p.h"

static tally_status_t ring_run(tally_call_t *call)
{
    /* r: this rank's place in the ring, which runs node by node. */
    const int *order = call->shape->ring_order;
    const size_t p = (size_t)call->size, n = call->count;
    const size_t r = (size_t)call->shape->ring_position[call->rank];
    const size_t es = call->elem_size;
    const int next = order[(r + 1) % p], prev = order[(r + p - 1) % p];
    const char *send = call->sendbuf;
    char *recv = call->recvbuf;

    if (p == 1) {
        tally_call_copy_input(call);
        tally_call_finish(call, recv, n);
        return TALLY_SUCCESS;
    }
    for (size_t s = 0; s + 1 < p; s++) {
        size_t out = (r + p - s) % p, in = (r + 2 * p - s - 1) % p;
        size_t in_off = tally_block_offset(n, p, in) * es;
        /* Step 0 sends this rank's own data; later steps forward what the
         * previous step reduced. */
        const char *out_base = s == 0 ? send : recv;
        tally_p2p_reduce_step_t step = {
            .sbuf = out_base + tally_block_offset(n, p, out) * es,
            .scount = tally_block_count(n, p, out),
            .dst = next,
            .local = send + in_off,
            .acc = recv + in_off,
            .rcount = tally_block_count(n, p, in),
            .src = prev,
            .incoming_first = 1,
        };
        TALLY_CHECK(tally_p2p_exchange_reduce(call, &step));
    }
    size_t own = (r + 1) % p;
    tally_call_finish(call, recv + tally_block_offset(n, p, own) * es,
                      tally_block_count(n, p, own));
    for (size_t s = 0; s + 1 < p; s++) {
        size_t out = (r + 1 + p - s) % p, in = (r + p - s) % p;
        TALLY_CHECK(tally_p2p_deliver(call, recv + tally_block_offset(n, p, out) * es,
                                      tally_block_count(n, p, out) * es, next,
                                      recv + tally_block_offset(n, p, in) * es,
                                      tally_block_count(n, p, in) * es, prev));
    }
    return TALLY_SUCCESS;
}

static int ring_next(const tally_shape_t *shape, int rank, int unused)
{
    (void)unused;
    return shape->ring_order[(shape->ring_position[rank] + 1) % shape->size];
}

static double ring_predict(const tally_cost_t *c)
{
    const int p = c->shape->size;
    if (p == 1)
        return tally_cost_call(c) + tally_cost_copy(c, c->bytes);
    double block = c->bytes / p;
    return tally_cost_call(c) +
           (p - 1) * (tally_cost_step(c, ring_next, 0, block) + tally_cost_reduce(c, block) +
                      tally_cost_deliver(c, ring_next, 0, block));
}

const tally_algo_t tally_algo_ring = {
    .name = "ring",
    .summary = "pipelined ring reduce-scatter + allgather; bandwidth-optimal",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, TALLY_ALGO_HOST_ONLY,
                     "host memory only"},
    .run = ring_run,
    .predict = ring_predict,
};
