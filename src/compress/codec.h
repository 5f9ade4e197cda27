/* codec.h - gradient codecs: what crosses a slow link, encoded, and the
 * validation of what arrives.
 *
 * A codec is a descriptor in one table (codec.c), keyed by name.  Codecs
 * work on float (the compressed path stages other floating dtypes through
 * float) and know nothing of MPI: the algorithms move their payloads
 * (algo/compressed.c).  Every decoder checks the payload it is given
 * (sizes, indices, scales) and refuses a malformed one: a corrupt or
 * hostile message is an error, never a write out of bounds.
 *
 * Error feedback is the caller's: it encodes v = x + residual, then sets
 * residual = v - decode(payload) with decode_axpy(alpha = -1, add), so the
 * part that was not sent is fed into the next call.
 *
 * PowerSGD is not an element-wise codec (it allreduces two factors): it
 * has a descriptor with kind TALLY_CODEC_LOW_RANK and its arithmetic in
 * powersgd.h. */
#ifndef TALLY_CODEC_H
#define TALLY_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally.h"

typedef enum tally_codec_kind {
    TALLY_CODEC_NONE,     /* nothing encoded: the exact allreduce */
    TALLY_CODEC_DENSE,    /* every element, fewer bits: two-stage reduce-scatter + allgather */
    TALLY_CODEC_SPARSE,   /* some elements: allgather of (index, value) lists */
    TALLY_CODEC_LOW_RANK  /* PowerSGD: two allreduced factors */
} tally_codec_kind_t;

/* A parsed spec (spec.c): the codec and its parameters. */
typedef struct tally_codec_spec {
    const struct tally_codec *codec;
    double ratio;        /* topk: fraction of elements kept, (0, 1] */
    unsigned rank;       /* powersgd: factor rank, >= 1 */
    size_t cols;         /* powersgd: matrix columns; 0: the default (codec.c) */
    bool error_feedback; /* ef=on (default) or ef=off */
    uint64_t seed;       /* int8's stochastic rounding, powersgd's first Q */
} tally_codec_spec_t;

/* What an encoder needs besides the data: the spec and a stream number
 * that makes its random draws reproducible and different per call, rank
 * and part (algo/compressed.c derives it). */
typedef struct tally_codec_ctx {
    const tally_codec_spec_t *spec;
    uint64_t stream;
} tally_codec_ctx_t;

typedef struct tally_codec {
    const char *name;
    const char *summary;      /* one line for tally(7) and tally-info */
    tally_codec_kind_t kind;
    const char *parameter;    /* "RATIO", "RANK" or NULL: what follows "name:" */
    /* Payload bytes for `count` elements, at most. */
    size_t (*bound)(size_t count, const tally_codec_spec_t *spec);
    /* Encodes x[0 .. count) into out (bound() bytes of room); returns the
     * payload's bytes. */
    size_t (*encode)(const float *x, size_t count, void *out, const tally_codec_ctx_t *ctx);
    /* acc[i] = (add ? acc[i] : 0) + alpha * decoded[i] for i < count,
     * after checking that `bytes` of `in` are a valid payload for count
     * elements; a malformed payload leaves acc untouched and returns
     * TALLY_ERR_CORRUPT_PAYLOAD. */
    tally_status_t (*decode_axpy)(const void *in, size_t bytes, size_t count, float alpha,
                                  float *acc, bool add);
    bool summable;            /* encoded forms can be summed as they are (fp16, bf16) */
    double encode_rate;       /* bytes of float input per second, built-in (the cost model) */
    double decode_rate;
} tally_codec_t;

/* The codec of this name, or NULL. */
const tally_codec_t *tally_codec_find(const char *name);
/* The i-th codec of the table, or NULL past its end. */
const tally_codec_t *tally_codec_at(size_t i);

/* Parses a spec (grammar in tally(7)): CODEC[:PARAM][,ef=on|off][,seed=N]
 * [,cols=N].  On error returns TALLY_ERR_INVALID_ARGUMENT and writes a
 * sentence naming the wrong part into why (why_len bytes); *out is
 * written only on success. */
tally_status_t tally_codec_spec_parse(const char *text, tally_codec_spec_t *out, char *why,
                                      size_t why_len);

/* Elements per scale of int8 and sign: a chunk's scale travels with it. */
#define TALLY_CODEC_CHUNK 1024

#endif
