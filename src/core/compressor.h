/* compressor.h - the compressor object behind tally_compressor_t: a codec
 * spec, the tensor it serves (count, dtype) and its error-feedback state.
 *
 * State is indexed by the element's position in the tensor, so a call on a
 * part of it (hier's step across nodes on a shard) finds its own:
 *   residual        what this rank's encodings left out (worker stage)
 *   owner_residual  what the re-encoding of the chunks this rank reduced
 *                   left out (the second stage of dense codecs)
 *   low_rank        PowerSGD's Q per part, kept for the next call's warm
 *                   start (made on first use of a part)
 * Residuals are float and made at creation, where a failure can be agreed
 * by every rank. */
#ifndef TALLY_COMPRESSOR_H
#define TALLY_COMPRESSOR_H

#include <stddef.h>

#include "../compress/codec.h"
#include "tally.h"

struct tally_comm;

typedef struct tally_low_rank_state {
    size_t offset, count;      /* the part it serves */
    float *q;                  /* cols x rank */
    struct tally_low_rank_state *next;
} tally_low_rank_state_t;

struct tally_compressor {
    struct tally_comm *comm;
    tally_codec_spec_t spec;
    char spec_text[64];        /* as given, for logs and statistics */
    size_t count;
    tally_dtype_t dtype;
    float *residual;           /* [count]; NULL without error feedback */
    float *owner_residual;     /* [count]; dense codecs with error feedback */
    tally_low_rank_state_t *low_rank;
    uint64_t calls;            /* compressed calls so far: varies the random draws */
    size_t wire, uncompressed; /* bytes, tally_compressor_bytes */
};

/* PowerSGD's Q for the part [offset, offset + count), made (from the
 * spec's seed) on first use; NULL when out of memory. */
float *tally_compressor_low_rank_q(struct tally_compressor *c, size_t offset, size_t count,
                                   size_t cols);

#endif
