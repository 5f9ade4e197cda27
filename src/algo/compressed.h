/* compressed.h - what hier's streamed exchange across two nodes borrows
 * from the compressed step (compressed.c): each owner encodes its part of
 * a unit with its residual, the two encodings cross, and both ends decode
 * them in node order, so both get the same bits. */
#ifndef TALLY_COMPRESSED_H
#define TALLY_COMPRESSED_H

#include <stdbool.h>
#include <stddef.h>

#include "../compress/codec.h"
#include "../core/call.h"
#include "../topo/model.h"

/* Predicted seconds of a compressed allreduce with `spec` of cost->bytes
 * (elements of elem_size bytes) on cost's shape: exact within nodes, the
 * codec's bytes across them, its encode and decode at its rates (the
 * codec table's figures, from make bench-codec); -1 where nothing would be
 * compressed (one node, codec none). */
double tally_compressed_predict(const tally_cost_t *cost, const tally_codec_spec_t *spec,
                                size_t elem_size);

/* Whether the call's codec can go through the streamed exchange: an
 * element-wise codec (dense or top-k) on float32, whose payload for a
 * count is always exactly tally_compressed_part_bytes. */
bool tally_compressed_streams(const tally_call_t *call);
size_t tally_compressed_part_bytes(const tally_call_t *call, size_t count);

/* Encodes part[0 .. count) (float32, elements [offset, offset + count) of
 * the compressor's tensor) with its residual into out, keeping what was
 * left out; counts the bytes it will send. */
tally_status_t tally_compressed_encode_part(tally_call_t *call, const float *part, size_t count,
                                            size_t offset, void *out);

/* part = decode(first) + decode(second), each `bytes` long, each checked
 * first; TALLY_ERR_CORRUPT_PAYLOAD if either is malformed (the part is
 * then not a result: the call fails). */
tally_status_t tally_compressed_decode_pair(const tally_call_t *call, const void *first,
                                            const void *second, size_t bytes, size_t count,
                                            float *part);

#endif
