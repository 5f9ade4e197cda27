/* compressor.c - tally_compressor_create, _destroy and _bytes; the state
 * behind them (compressor.h).  The compressed call itself enters through
 * tally_allreduce_compressed (allreduce.c). */
#include "compressor.h"

#include <stdlib.h>
#include <string.h>

#include "../compress/powersgd.h"
#include "comm.h"
#include "dtype.h"
#include "hash.h"
#include "log.h"

static bool floating(tally_dtype_t dtype)
{
    return dtype == TALLY_FLOAT16 || dtype == TALLY_BFLOAT16 || dtype == TALLY_FLOAT32 ||
           dtype == TALLY_FLOAT64;
}

/* Why this rank cannot create the compressor (logged), or success. */
static tally_status_t check_local(tally_comm_t *comm, const char *text, size_t count,
                                  tally_dtype_t dtype, tally_codec_spec_t *spec)
{
    char why[256];
    if (!text) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_compressor_create: spec is NULL");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    if (tally_codec_spec_parse(text, spec, why, sizeof why) != TALLY_SUCCESS) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_compressor_create: %s", why);
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    if (!tally_dtype_valid(dtype)) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_compressor_create: dtype %d is not a tally_dtype_t",
                  (int)dtype);
        return TALLY_ERR_INVALID_DTYPE;
    }
    if (!floating(dtype)) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "tally_compressor_create: codecs compress floating dtypes only, not %s",
                  tally_dtype_name(dtype));
        return TALLY_ERR_UNSUPPORTED;
    }
    /* top-k's indices are 32-bit; the residuals are floats. */
    if (count > UINT32_MAX || count > SIZE_MAX / (2 * sizeof(float))) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "tally_compressor_create: count %zu is above the compressed path's limit "
                  "of 2^32 - 1 elements per tensor", count);
        return TALLY_ERR_COUNT_TOO_LARGE;
    }
    return TALLY_SUCCESS;
}

static void compressor_free(tally_compressor_t *c)
{
    for (tally_low_rank_state_t *s = c->low_rank, *next; s; s = next) {
        next = s->next;
        free(s->q);
        free(s);
    }
    free(c->owner_residual);
    free(c->residual);
    free(c);
}

tally_status_t tally_compressor_create(tally_comm_t *comm, const char *spec, size_t count,
                                       tally_dtype_t dtype, tally_compressor_t **out)
{
    if (!comm) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "tally_compressor_create: comm is NULL");
        return TALLY_ERR_NULL_COMM;
    }
    if (!out) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_compressor_create: out is NULL");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    tally_comm_drain(comm); /* creation is collective on the communicator */
    tally_codec_spec_t parsed;
    tally_status_t st = check_local(comm, spec, count, dtype, &parsed);
    tally_compressor_t *c = NULL;
    if (st == TALLY_SUCCESS && !(c = calloc(1, sizeof *c)))
        st = TALLY_ERR_NO_MEMORY;
    if (st == TALLY_SUCCESS) {
        c->comm = comm;
        c->spec = parsed;
        snprintf(c->spec_text, sizeof c->spec_text, "%s", spec);
        c->count = count;
        c->dtype = dtype;
        const tally_codec_kind_t kind = parsed.codec->kind;
        if (parsed.error_feedback && kind != TALLY_CODEC_NONE && count > 0) {
            c->residual = calloc(count, sizeof(float));
            if (!c->residual)
                st = TALLY_ERR_NO_MEMORY;
            if (kind == TALLY_CODEC_DENSE &&
                !(c->owner_residual = calloc(count, sizeof(float))))
                st = TALLY_ERR_NO_MEMORY;
        }
    }
    /* The same spec, count and dtype everywhere, or nobody has one. */
    uint64_t h = tally_hash_fnv1a(TALLY_HASH_INIT, spec ? spec : "", spec ? strlen(spec) : 0);
    h = tally_hash_fnv1a(h, &count, sizeof count);
    h = tally_hash_fnv1a(h, &dtype, sizeof dtype);
    st = tally_comm_agree(comm->mpi, st, h, "compressor arguments",
                          "every rank must pass the same spec, count and dtype to "
                          "tally_compressor_create");
    if (st != TALLY_SUCCESS) {
        if (c)
            compressor_free(c);
        return st;
    }
    *out = c;
    return TALLY_SUCCESS;
}

tally_status_t tally_compressor_destroy(tally_compressor_t *c)
{
    if (c)
        compressor_free(c);
    return TALLY_SUCCESS;
}

tally_status_t tally_compressor_bytes(const tally_compressor_t *c, size_t *wire,
                                      size_t *uncompressed)
{
    if (!c || !wire || !uncompressed) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "tally_compressor_bytes: %s is NULL",
                  !c ? "the compressor" : !wire ? "wire" : "uncompressed");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    *wire = c->wire;
    *uncompressed = c->uncompressed;
    return TALLY_SUCCESS;
}

float *tally_compressor_low_rank_q(tally_compressor_t *c, size_t offset, size_t count,
                                   size_t cols)
{
    for (tally_low_rank_state_t *s = c->low_rank; s; s = s->next)
        if (s->offset == offset && s->count == count)
            return s->q;
    tally_low_rank_state_t *s = calloc(1, sizeof *s);
    float *q = malloc(cols * c->spec.rank * sizeof *q);
    if (!s || !q) {
        free(s);
        free(q);
        return NULL;
    }
    /* The same first Q on every rank: from the seed and the part. */
    tally_powersgd_init_q(q, cols, c->spec.rank, c->spec.seed ^ (uint64_t)offset);
    *s = (tally_low_rank_state_t){offset, count, q, c->low_rank};
    c->low_rank = s;
    return q;
}
