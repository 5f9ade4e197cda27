/* window.c - the rounds through a node's shared window (see window.h). */
#include "window.h"

#include "p2p.h"

/* Reduced blocks are copied into the window while still in the L1 cache. */
#define FUSE_BYTES ((size_t)16 << 10)

/* acc = own contribution op those of the other local ranks in rank order,
 * for `count` elements at byte offset `off` of the set.  The own part
 * comes first because acc may be `send` (in place).  All ops are
 * commutative; the order only has to be fixed, since each element is
 * reduced here alone. */
static void reduce_piece(const tally_call_t *call, const tally_shm_t *shm, unsigned set,
                         const char *send, char *acc, size_t off, size_t count)
{
    const int L = shm->local_size, l = shm->local_rank;
    const char *in = send;
    for (int q = 0; q < L; q++) {
        if (q == l)
            continue;
        tally_call_reduce(call, acc, in, tally_shm_data(shm, q, set) + off, count);
        in = acc;
    }
    if (in == send && acc != send) /* alone on the node */
        tally_call_copy(call, acc, send, count);
}

static char *slot(const tally_shm_t *shm, int local, unsigned set,
                  const tally_window_layout_t *y, size_t s)
{
    return tally_shm_data(shm, local, set) + s * y->piece * y->es;
}

/* Copies k elements of the call's vector from element `first` on between
 * the window at `win` and the call's buffers: out of sendbuf or recvbuf, or
 * into recvbuf.  A piece may span several tensors of a fused call
 * (call.h); *span is the walk's cursor. */
enum piece_move { FROM_SEND, FROM_RECV, INTO_RECV };
static void move_piece(const tally_call_t *call, char *win, size_t first, size_t k,
                       enum piece_move how, size_t *span)
{
    while (k > 0) {
        const char *send;
        char *recv;
        size_t n = tally_call_at(call, first, span, &send, &recv);
        n = n < k ? n : k;
        if (how == INTO_RECV)
            tally_call_copy(call, recv, win, n);
        else
            tally_call_copy(call, win, how == FROM_RECV ? recv : send, n);
        win += n * call->elem_size, first += n, k -= n;
    }
}

/* Copies round r's pieces (of recvbuf, or of sendbuf) into this rank's
 * slots of `set`: the shards it owns (`owned`) or the others. */
static void publish(const tally_call_t *call, const tally_shm_t *shm, unsigned set,
                    const tally_window_layout_t *y, size_t r, bool of_recv, bool owned)
{
    const int L = shm->local_size, l = shm->local_rank;
    size_t span = 0;
    for (size_t s = 0; s < y->shards; s++) {
        size_t first, k = tally_window_piece(y, s, r, &first);
        if (k > 0 && ((int)(s % (size_t)L) == l) == owned)
            move_piece(call, slot(shm, l, set, y, s), first, k, of_recv ? FROM_RECV : FROM_SEND,
                       &span);
    }
}

/* Copies round r's pieces of the shards others own from their slots into
 * recvbuf. */
static void collect(const tally_call_t *call, const tally_shm_t *shm, unsigned set,
                    const tally_window_layout_t *y, size_t r)
{
    const int L = shm->local_size, l = shm->local_rank;
    size_t span = 0;
    for (size_t s = 0; s < y->shards; s++) {
        size_t first, k = tally_window_piece(y, s, r, &first);
        int owner = (int)(s % (size_t)L);
        if (k > 0 && owner != l)
            move_piece(call, slot(shm, owner, set, y, s), first, k, INTO_RECV, &span);
    }
}

static void reduce_round(const tally_call_t *call, tally_shm_t *shm, unsigned set,
                         const tally_window_layout_t *y, size_t r, bool finish,
                         const tally_shm_progress_t *progress)
{
    const int L = shm->local_size, l = shm->local_rank;
    if (L > 1) {
        publish(call, shm, set, y, r, false, false);
        tally_shm_barrier(shm, progress, call->watch, tally_call_in_background(call));
    }
    const size_t step = FUSE_BYTES / y->es ? FUSE_BYTES / y->es : 1;
    size_t span = 0;
    for (size_t s = (size_t)l; s < y->shards; s += (size_t)L) {
        size_t first, k = tally_window_piece(y, s, r, &first);
        for (size_t i = 0; i < k;) {
            /* At most `step` elements, and within one tensor. */
            const char *send;
            char *recv;
            size_t c = tally_call_at(call, first + i, &span, &send, &recv);
            c = c < k - i ? c : k - i;
            c = c < step ? c : step;
            reduce_piece(call, shm, set, send, recv, (s * y->piece + i) * y->es, c);
            if (finish) {
                tally_call_finish(call, recv, c);
                if (L > 1)
                    tally_call_copy(call, slot(shm, l, set, y, s) + i * y->es, recv, c);
            }
            i += c;
        }
    }
    if (finish && L > 1) {
        tally_shm_barrier(shm, progress, call->watch, tally_call_in_background(call));
        collect(call, shm, set, y, r);
    }
}

void tally_window_reduce_scatter(const tally_call_t *call, tally_shm_t *shm,
                                 const tally_window_layout_t *y, size_t r0, size_t r1,
                                 bool finish, const tally_shm_progress_t *progress)
{
    for (size_t r = r0; r < r1; r++) {
        reduce_round(call, shm, tally_shm_next_set(shm), y, r, finish, progress);
        tally_shm_progress_run(progress);
    }
}

void tally_window_allgather(const tally_call_t *call, tally_shm_t *shm,
                            const tally_window_layout_t *y, size_t r0, size_t r1,
                            const tally_shm_progress_t *progress)
{
    for (size_t r = r0; shm->local_size > 1 && r < r1; r++) {
        unsigned set = tally_shm_next_set(shm);
        publish(call, shm, set, y, r, true, true);
        tally_shm_barrier(shm, progress, call->watch, tally_call_in_background(call));
        collect(call, shm, set, y, r);
        tally_shm_progress_run(progress);
    }
}
