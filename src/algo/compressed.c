/* compressed.c - the compressed allreduce across nodes: runs on a
 * communicator with one rank per node (hier's group of a shard's owners,
 * or a whole communicator of single-rank nodes), on calls that carry a
 * compressor (call->codec).  Not in the registry: only the compressed
 * entry (tally_allreduce_compressed, hier's step across nodes) runs it.
 *
 * The data is staged as float; with error feedback the rank's residual is
 * added first (v = x + residual) and what the encoding left out is kept
 * (residual = v - decode(payload)); a residual that is not finite is reset
 * to zero, so one bad gradient does not poison the steps after it.
 *   dense codecs (fp16, bf16, int8, sign), two stages (DeepSpeed's 1-bit
 *     Adam): the vector is cut into N chunks, chunk k owned by rank k;
 *     every rank encodes chunk k and sends it to k; k decodes the N
 *     encodings (its own from its own bytes), sums them in rank order in
 *     float, re-encodes the sum with its owner residual, and the owners'
 *     encodings are gathered by all; every rank decodes every chunk from
 *     the same bytes.
 *   top-k (sparse): every rank encodes its whole vector, the encodings are
 *     gathered by all and summed in rank order.
 *   PowerSGD (low rank): P = M Q is allreduced (exactly, tally's own
 *     allreduce), orthonormalised; Q = M^T P is allreduced; the result is
 *     P Q^T; Q is kept for the next call.  Where (rows + cols) rank is not
 *     below rows x cols the factors save nothing and the exact allreduce
 *     runs.
 * Every element is decoded from the same bytes on every rank (or computed
 * from the same allreduced factors), so results are bit-identical.
 *
 * Cost, n elements of e bytes, N ranks, codec ratio c (payload bytes per
 * input byte), encode and decode rates: dense 2 (N-1) alpha +
 * 2 (N-1)/N c n e beta + n e / encode + (N + 1) n e / (N decode);
 * top-k (N-1) (alpha + c n e beta) + n e / encode + N c n e / decode;
 * PowerSGD two exact allreduces of (rows + cols) rank floats and three
 * passes over the matrix.
 * Restrictions: floating dtypes, SUM and AVG, host memory; payloads of at
 * most INT_MAX bytes (else the exact ring runs).
 *
 * Example, dense, N = 2, chunks a b (e() encodes, d() decodes):
 *   stage    rank 0                      rank 1
 *   encode   e(a0) e(b0), sends e(b0)    e(a1) e(b1), sends e(a1)
 *   owners   A = d(e(a0)) + d(e(a1))     B = d(e(b0)) + d(e(b1))
 *   gather   e(A) to 1, gets e(B)        e(B) to 0, gets e(A)
 *   result   d(e(A)) d(e(B))             d(e(A)) d(e(B))
 */
#include "compressed.h"

#include "algo.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../compress/codec.h"
#include "../compress/powersgd.h"
#include "../core/compressor.h"
#include "../core/entry.h"
#include "../core/log.h"
#include "../core/scratch.h"
#include "node.h"
#include "../reduce/reduce.h"
#include "../transport/p2p.h"

#define ALIGN 64

extern const tally_algo_t tally_algo_ring;
extern const tally_algo_t tally_algo_hier;
extern const tally_algo_t tally_algo_compressed;

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* A random stream per call, rank, part and stage (int8's rounding). */
static uint64_t stream_of(const tally_call_t *call, uint64_t stage)
{
    const tally_compressor_t *c = call->codec;
    return (c->calls << 40) ^ ((uint64_t)call->codec_offset << 8) ^
           ((uint64_t)call->rank * 0x9e3779b97f4a7c15ull) ^ stage;
}

/* residual[i] = v[i] - decoded[i], where the caller set residual = v and
 * this subtracts the payload; where v was not finite (`finite` false
 * somewhere) the non-finite entries become 0. */
static tally_status_t keep_residual(const tally_codec_t *codec, const void *payload,
                                    size_t bytes, size_t count, float *residual, bool finite)
{
    TALLY_CHECK(codec->decode_axpy(payload, bytes, count, -1.0f, residual, true));
    if (!finite)
        for (size_t i = 0; i < count; i++)
            if (!isfinite(residual[i]))
                residual[i] = 0.0f;
    return TALLY_SUCCESS;
}

/* x[i] += residual[i] (none: nothing); whether every x[i] is finite. */
static bool add_residual(float *restrict x, const float *restrict residual, size_t count)
{
    bool finite = true;
    if (!residual)
        return true; /* only a residual is kept after encoding */
    for (size_t i = 0; i < count; i++) {
        const float v = x[i] + residual[i];
        finite &= fabsf(v) <= 3.4028235e38f; /* false for inf and NaN */
        x[i] = v;
    }
    return finite;
}

static void count_bytes(tally_call_t *call, size_t wire, size_t uncompressed)
{
    call->codec->wire += wire;
    call->codec->uncompressed += uncompressed;
}

/* Completes an exchange's n receives (their sizes into got) and sends. */
static tally_status_t wait_exchange(const tally_call_t *call, MPI_Request *rreq,
                                    MPI_Request *sreq, size_t n, size_t *got)
{
    TALLY_CHECK(tally_p2p_waitall_bytes(call, rreq, n, got));
    return tally_p2p_waitall(call, sreq, n);
}

/* --- dense: two stages -------------------------------------------------------- */

static tally_status_t dense(tally_call_t *call, float *x)
{
    tally_compressor_t *c = call->codec;
    const tally_codec_t *codec = c->spec.codec;
    const size_t n = call->count, N = (size_t)call->size, g = (size_t)call->rank;
    float *res = c->residual ? c->residual + call->codec_offset : NULL;
    float *owner_res = c->owner_residual ? c->owner_residual + call->codec_offset : NULL;
    const size_t own_off = tally_block_offset(n, N, g), own = tally_block_count(n, N, g);
    const size_t own_bound = align_up(codec->bound(own, &c->spec));

    /* Scratch: chunk k's encodings at chunk_at[k] in `out` (this rank's,
     * stage 1) and in `gathered` (the owners', stage 2); the N - 1
     * encodings of the own chunk in `in`, slot k from rank k, and in slot
     * g the owner's encoding; the owner's float sum. */
    size_t *chunk_at = malloc(3 * N * sizeof(size_t) + 2 * N * sizeof(MPI_Request));
    if (!chunk_at)
        return TALLY_ERR_NO_MEMORY;
    size_t *len = chunk_at + N, *got = len + N;
    MPI_Request *rreq = (MPI_Request *)(got + N), *sreq = rreq + N;
    size_t total = 0;
    for (size_t k = 0; k < N; k++) {
        chunk_at[k] = total;
        total += align_up(codec->bound(tally_block_count(n, N, k), &c->spec));
        rreq[k] = sreq[k] = MPI_REQUEST_NULL;
    }
    char *out = tally_call_scratch(call, 2 * total + N * own_bound + own * sizeof(float));
    if (!out) {
        free(chunk_at);
        return TALLY_ERR_NO_MEMORY;
    }
    tally_status_t st = TALLY_SUCCESS;
    char *gathered = out + total, *in = gathered + total;
    float *acc = (float *)(void *)(in + N * own_bound);
    size_t wire = 0, plain = 0;

    /* Stage 1: every chunk encoded with this rank's residual, chunk k to k. */
    const bool finite = add_residual(x, res, n);
    for (size_t k = 0; k < N && st == TALLY_SUCCESS; k++) {
        const size_t off = tally_block_offset(n, N, k), cnt = tally_block_count(n, N, k);
        tally_codec_ctx_t ctx = {&c->spec, stream_of(call, 2 * k)};
        len[k] = codec->encode(x + off, cnt, out + chunk_at[k], &ctx);
        if (res) {
            memcpy(res + off, x + off, cnt * sizeof(float));
            st = keep_residual(codec, out + chunk_at[k], len[k], cnt, res + off, finite);
        }
    }
    for (size_t k = 0; k < N && st == TALLY_SUCCESS; k++) {
        if (k == g)
            continue;
        st = tally_p2p_irecv(call, call->mpi, 0, in + k * own_bound, own_bound, (int)k, &rreq[k]);
        if (st == TALLY_SUCCESS)
            st = tally_p2p_isend(call, call->mpi, 0, out + chunk_at[k], len[k], (int)k, &sreq[k]);
        wire += len[k];
        plain += tally_block_count(n, N, k) * call->elem_size;
    }
    if (st == TALLY_SUCCESS)
        st = wait_exchange(call, rreq, sreq, N, got);
    if (st != TALLY_SUCCESS)
        goto fail;

    /* The owner: the N encodings of its chunk in rank order, summed in
     * float, re-encoded with the owner residual.  After a corrupt payload
     * it still sends (an empty message, which fails every receiver's
     * validation), so no rank waits for it. */
    tally_status_t bad = TALLY_SUCCESS;
    for (size_t k = 0; k < N && bad == TALLY_SUCCESS; k++)
        bad = k == g ? codec->decode_axpy(out + chunk_at[g], len[g], own, 1.0f, acc, k > 0)
                     : codec->decode_axpy(in + k * own_bound, got[k], own, 1.0f, acc, k > 0);
    char *own_out = in + g * own_bound;
    size_t own_bytes = 0;
    if (bad == TALLY_SUCCESS) {
        const bool own_finite = add_residual(acc, owner_res ? owner_res + own_off : NULL, own);
        tally_codec_ctx_t ctx = {&c->spec, stream_of(call, 2 * g + 1)};
        own_bytes = codec->encode(acc, own, own_out, &ctx);
        if (owner_res) {
            memcpy(owner_res + own_off, acc, own * sizeof(float));
            bad = keep_residual(codec, own_out, own_bytes, own, owner_res + own_off, own_finite);
        }
    }
    /* Stage 2: the owners' encodings, gathered by all. */
    for (size_t k = 0; k < N && st == TALLY_SUCCESS; k++) {
        if (k == g)
            continue;
        const size_t cnt = tally_block_count(n, N, k);
        st = tally_p2p_irecv(call, call->mpi, 1, gathered + chunk_at[k],
                             align_up(codec->bound(cnt, &c->spec)), (int)k, &rreq[k]);
        if (st == TALLY_SUCCESS)
            st = tally_p2p_isend(call, call->mpi, 1, own_out, own_bytes, (int)k, &sreq[k]);
        wire += own_bytes;
        plain += own * call->elem_size;
    }
    if (st == TALLY_SUCCESS)
        st = wait_exchange(call, rreq, sreq, N, got);
    if (st != TALLY_SUCCESS)
        goto fail;
    count_bytes(call, wire, plain);

    /* Every chunk from its owner's bytes, the own chunk too. */
    for (size_t k = 0; k < N && bad == TALLY_SUCCESS; k++) {
        const size_t off = tally_block_offset(n, N, k), cnt = tally_block_count(n, N, k);
        bad = k == g ? codec->decode_axpy(own_out, own_bytes, cnt, 1.0f, x + off, false)
                     : codec->decode_axpy(gathered + chunk_at[k], got[k], cnt, 1.0f, x + off,
                                          false);
    }
    if (bad != TALLY_SUCCESS) {
        TALLY_LOG(call->comm, TALLY_LOG_ERROR,
                  "compressed allreduce (%s): a payload failed validation; the result is "
                  "not written", codec->name);
        st = TALLY_ERR_CORRUPT_PAYLOAD;
    }
fail:
    if (st != TALLY_SUCCESS) {
        tally_p2p_cancel(rreq, N);
        tally_p2p_cancel(sreq, N);
    }
    free(chunk_at);
    return st;
}

/* --- sparse: gather every rank's encoding ------------------------------------- */

static tally_status_t sparse(tally_call_t *call, float *x)
{
    tally_compressor_t *c = call->codec;
    const tally_codec_t *codec = c->spec.codec;
    const size_t n = call->count, N = (size_t)call->size, g = (size_t)call->rank;
    float *res = c->residual ? c->residual + call->codec_offset : NULL;
    const size_t bound = align_up(codec->bound(n, &c->spec));
    char *base = tally_call_scratch(call, N * bound + N * sizeof(size_t) +
                                              2 * N * sizeof(MPI_Request));
    if (!base)
        return TALLY_ERR_NO_MEMORY;
    size_t *got = (size_t *)(void *)(base + N * bound);
    MPI_Request *rreq = (MPI_Request *)(got + N), *sreq = rreq + N;
    char *mine = base + g * bound;

    const bool finite = add_residual(x, res, n);
    tally_codec_ctx_t ctx = {&c->spec, stream_of(call, 0)};
    const size_t mine_bytes = codec->encode(x, n, mine, &ctx);
    if (res) {
        memcpy(res, x, n * sizeof(float));
        TALLY_CHECK(keep_residual(codec, mine, mine_bytes, n, res, finite));
    }
    for (size_t k = 0; k < N; k++)
        rreq[k] = sreq[k] = MPI_REQUEST_NULL;
    tally_status_t st = TALLY_SUCCESS;
    for (size_t k = 0; k < N && st == TALLY_SUCCESS; k++) {
        if (k == g)
            continue;
        st = tally_p2p_irecv(call, call->mpi, 0, base + k * bound, bound, (int)k, &rreq[k]);
        if (st == TALLY_SUCCESS)
            st = tally_p2p_isend(call, call->mpi, 0, mine, mine_bytes, (int)k, &sreq[k]);
    }
    if (st == TALLY_SUCCESS)
        st = wait_exchange(call, rreq, sreq, N, got);
    if (st != TALLY_SUCCESS) {
        tally_p2p_cancel(rreq, N);
        tally_p2p_cancel(sreq, N);
        return st;
    }
    got[g] = mine_bytes;
    count_bytes(call, (N - 1) * mine_bytes, 2 * (N - 1) * n * call->elem_size / N);

    for (size_t k = 0; k < N; k++) {
        if (codec->decode_axpy(base + k * bound, got[k], n, 1.0f, x, k > 0) != TALLY_SUCCESS) {
            TALLY_LOG(call->comm, TALLY_LOG_ERROR,
                      "compressed allreduce (%s): the payload of rank %zu failed validation",
                      codec->name, k);
            return TALLY_ERR_CORRUPT_PAYLOAD;
        }
    }
    return TALLY_SUCCESS;
}

/* --- low rank: PowerSGD --------------------------------------------------------- */

static tally_status_t low_rank(tally_call_t *call, float *x)
{
    tally_compressor_t *c = call->codec;
    const size_t n = call->count, N = (size_t)call->size;
    const unsigned r = c->spec.rank;
    size_t rows, cols;
    tally_powersgd_shape(n, c->spec.cols, &rows, &cols);
    float *res = c->residual ? c->residual + call->codec_offset : NULL;
    if ((rows + cols) * r >= n) {
        /* The factors would be no smaller than the vector. */
        count_bytes(call, 2 * (N - 1) * n * sizeof(float) / N, 2 * (N - 1) * n * call->elem_size / N);
        return tally_call_allreduce(call->comm, TALLY_IN_PLACE, x, n, TALLY_FLOAT32, TALLY_SUM);
    }
    float *q = tally_compressor_low_rank_q(c, call->codec_offset, n, cols);
    float *p = tally_call_scratch(call, (rows + cols) * r * sizeof(float));
    if (!q || !p)
        return TALLY_ERR_NO_MEMORY;
    float *q_local = p + rows * r;

    (void)add_residual(x, res, n);
    tally_powersgd_project(x, n, rows, cols, q, r, p);
    TALLY_CHECK(tally_call_allreduce(call->comm, TALLY_IN_PLACE, p, rows * r, TALLY_FLOAT32,
                                     TALLY_SUM));
    tally_powersgd_orthonormalize(p, rows, r);
    tally_powersgd_back(x, n, rows, cols, p, r, q_local);
    if (res) {
        /* This rank's share of the result is its projection P P^T M. */
        memcpy(res, x, n * sizeof(float));
        tally_powersgd_expand(p, q_local, n, cols, r, -1.0f, res);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(res[i]))
                res[i] = 0.0f;
    }
    TALLY_CHECK(tally_call_allreduce(call->comm, TALLY_IN_PLACE, q_local, cols * r, TALLY_FLOAT32,
                                     TALLY_SUM));
    memset(x, 0, n * sizeof(float));
    tally_powersgd_expand(p, q_local, n, cols, r, 1.0f, x);
    memcpy(q, q_local, cols * r * sizeof(float)); /* the next call's warm start */
    count_bytes(call, 2 * (N - 1) * (rows + cols) * r * sizeof(float) / N,
                2 * (N - 1) * n * call->elem_size / N);
    return TALLY_SUCCESS;
}

/* --- the algorithm ---------------------------------------------------------------- */

static void to_float(const tally_call_t *call, const void *src, float *dst)
{
    const size_t n = call->count;
    switch (call->dtype) {
    case TALLY_FLOAT16:
        for (size_t i = 0; i < n; i++)
            dst[i] = tally_half_to_float(((const uint16_t *)src)[i]);
        break;
    case TALLY_BFLOAT16:
        for (size_t i = 0; i < n; i++)
            dst[i] = tally_bfloat16_to_float(((const uint16_t *)src)[i]);
        break;
    case TALLY_FLOAT64:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((const double *)src)[i];
        break;
    default:
        memcpy(dst, src, n * sizeof(float));
        break;
    }
}

static void from_float(const tally_call_t *call, const float *src, void *dst)
{
    const size_t n = call->count;
    switch (call->dtype) {
    case TALLY_FLOAT16:
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = tally_float_to_half(src[i]);
        break;
    case TALLY_BFLOAT16:
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = tally_float_to_bfloat16(src[i]);
        break;
    case TALLY_FLOAT64:
        for (size_t i = 0; i < n; i++)
            ((double *)dst)[i] = (double)src[i];
        break;
    default:
        memcpy(dst, src, n * sizeof(float));
        break;
    }
}

/* The largest message the codec would send for this call. */
static size_t largest_payload(const tally_call_t *call)
{
    const tally_codec_spec_t *spec = &call->codec->spec;
    switch (spec->codec->kind) {
    case TALLY_CODEC_DENSE: /* block 0 is the largest */
        return spec->codec->bound(tally_block_count(call->count, (size_t)call->size, 0), spec);
    case TALLY_CODEC_SPARSE: return spec->codec->bound(call->count, spec);
    default: return 0; /* PowerSGD's factors go through tally's allreduce */
    }
}

static tally_status_t compressed_run(tally_call_t *call)
{
    tally_compressor_t *c = call->codec;
    const tally_codec_kind_t kind = c->spec.codec->kind;
    if (call->size == 1 || kind == TALLY_CODEC_NONE)
        return tally_call_redirect(call, &tally_algo_ring, "nothing to compress");
    if (align_up(largest_payload(call)) > INT_MAX)
        return tally_call_redirect(call, &tally_algo_ring,
                                   "a compressed message would exceed INT_MAX bytes");
    tally_call_copy_input(call);
    /* Other floating dtypes go through a float copy of their own (the
     * algorithm's scratch is taken by the stages). */
    float *x = call->recvbuf, *staged = NULL;
    if (call->dtype != TALLY_FLOAT32) {
        staged = malloc(call->count * sizeof(float));
        if (!staged)
            return TALLY_ERR_NO_MEMORY;
        to_float(call, call->recvbuf, staged);
        x = staged;
    }
    tally_status_t st = kind == TALLY_CODEC_DENSE    ? dense(call, x)
                        : kind == TALLY_CODEC_SPARSE ? sparse(call, x)
                                                     : low_rank(call, x);
    if (st == TALLY_SUCCESS && staged)
        from_float(call, staged, call->recvbuf);
    free(staged);
    if (st == TALLY_SUCCESS)
        tally_call_finish(call, call->recvbuf, call->count);
    return st;
}

bool tally_compressed_streams(const tally_call_t *call)
{
    const tally_codec_kind_t kind = call->codec->spec.codec->kind;
    return call->dtype == TALLY_FLOAT32 && (kind == TALLY_CODEC_DENSE || kind == TALLY_CODEC_SPARSE);
}

size_t tally_compressed_part_bytes(const tally_call_t *call, size_t count)
{
    return call->codec->spec.codec->bound(count, &call->codec->spec);
}

tally_status_t tally_compressed_encode_part(tally_call_t *call, const float *part, size_t count,
                                            size_t offset, void *out)
{
    tally_compressor_t *c = call->codec;
    const tally_codec_t *codec = c->spec.codec;
    float *res = c->residual ? c->residual + offset : NULL;
    /* v = part + residual, in the residual itself, then encoded. */
    const float *v = part;
    bool finite = true;
    if (res) {
        finite = add_residual(res, part, count);
        v = res;
    }
    tally_codec_ctx_t ctx = {&c->spec, stream_of(call, offset)};
    const size_t bytes = codec->encode(v, count, out, &ctx);
    count_bytes(call, bytes, count * call->elem_size);
    return res ? keep_residual(codec, out, bytes, count, res, finite) : TALLY_SUCCESS;
}

tally_status_t tally_compressed_decode_pair(const tally_call_t *call, const void *first,
                                            const void *second, size_t bytes, size_t count,
                                            float *part)
{
    const tally_codec_t *codec = call->codec->spec.codec;
    tally_status_t st = codec->decode_axpy(first, bytes, count, 1.0f, part, false);
    if (st == TALLY_SUCCESS)
        st = codec->decode_axpy(second, bytes, count, 1.0f, part, true);
    if (st != TALLY_SUCCESS)
        TALLY_LOG(call->comm, TALLY_LOG_ERROR,
                  "compressed exchange (%s): a payload failed validation", codec->name);
    return st;
}

const tally_algo_t *tally_compressed_plan(const tally_call_t *call, const char **reason)
{
    const tally_codec_spec_t *spec = &call->codec->spec;
    if (spec->codec->kind == TALLY_CODEC_NONE) {
        *reason = "codec none: the exact allreduce";
        return NULL;
    }
    if (call->shape->nodes == 1) {
        *reason = "not compressed: one node, where shared memory is faster than any encoder";
        return NULL;
    }
    if (call->memtype != TALLY_MEM_HOST) { /* the entry stages such calls through host memory */
        *reason = "not compressed: codecs run on host memory only";
        return NULL;
    }
    if (call->shape->max_per_node == 1) {
        *reason = "compressed across nodes";
        return &tally_algo_compressed;
    }
    *reason = "hier, exact within nodes, compressed across nodes";
    return &tally_algo_hier;
}

double tally_compressed_predict(const tally_cost_t *cost, const tally_codec_spec_t *spec,
                                size_t elem_size)
{
    const tally_shape_t *shape = cost->shape;
    const tally_model_t *m = cost->model;
    const tally_codec_t *codec = spec->codec;
    const double N = shape->nodes, L = shape->max_per_node;
    if (N < 2 || codec->kind == TALLY_CODEC_NONE)
        return -1.0;
    /* Each rank's shard of the node's sum, as floats. */
    const double part = cost->bytes / (double)elem_size * sizeof(float) / L;
    const double elems = part / sizeof(float);
    const double intra = L > 1 ? tally_shm_phases_predict(cost, (int)L) : 0.0;
    const double cpu_scale = shape->oversubscription;
    double wire, steps, cpu;
    const bool exchange = N == 2 && elem_size == sizeof(float) && codec->kind != TALLY_CODEC_LOW_RANK;
    if (codec->kind == TALLY_CODEC_LOW_RANK) {
        const double side = ceil(sqrt(elems)), r = spec->rank;
        wire = 2.0 * 2.0 * (N - 1) / N * 2.0 * side * r * sizeof(float);
        steps = 4.0 * (N - 1);
        cpu = 4.0 * elems * r * 2.0 / 2e9; /* four passes of r multiply-adds */
    } else {
        const double ratio = (double)codec->bound((size_t)elems, spec) / part;
        wire = codec->kind == TALLY_CODEC_SPARSE ? (N - 1) * ratio * part
               : exchange                        ? ratio * part
                                                 : 2.0 * (N - 1) / N * ratio * part;
        steps = codec->kind == TALLY_CODEC_SPARSE || exchange ? N - 1 : 2.0 * (N - 1);
        /* One encode; the residual's, the others' and (dense, two stages)
         * the owner's decodes. */
        const double decodes = exchange ? 3.0 : codec->kind == TALLY_CODEC_SPARSE ? 1.0 + N : 4.0;
        cpu = part / codec->encode_rate + decodes * part / codec->decode_rate;
    }
    const tally_link_cost_t *net = &m->link[TALLY_LEVEL_NETWORK];
    /* The L ranks of a node send their shards through its one link. */
    const double across = steps * net->alpha + wire * L * net->beta;
    cpu *= cpu_scale;
    return exchange ? fmax(intra + cpu, across) : intra + cpu + across;
}

#define FLOAT_DTYPES                                                              \
    (TALLY_DTYPE_BIT(TALLY_FLOAT16) | TALLY_DTYPE_BIT(TALLY_BFLOAT16) |           \
     TALLY_DTYPE_BIT(TALLY_FLOAT32) | TALLY_DTYPE_BIT(TALLY_FLOAT64))

const tally_algo_t tally_algo_compressed = {
    .name = "compressed",
    .summary = "codec-compressed allreduce across nodes (one rank per node), error feedback",
    .restrictions = {FLOAT_DTYPES, TALLY_OP_BIT(TALLY_SUM) | TALLY_OP_BIT(TALLY_AVG),
                     TALLY_ALGO_HOST_ONLY, "floating dtypes, SUM and AVG, host memory"},
    .run = compressed_run,
    .predict = NULL, /* priced with its codec: tally_compressed_predict */
};
