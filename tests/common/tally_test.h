/* tally_test.h - helpers shared by the tests: an independent reference
 * reduction (it does not use the library's kernels), exact-friendly test
 * data, and a hash for comparing buffers across ranks. */
#ifndef TALLY_TEST_H
#define TALLY_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "tally.h"

#define TT_DTYPES 12
#define TT_OPS 11

size_t tt_dtype_size(tally_dtype_t dtype);
int tt_dtype_is_float(tally_dtype_t dtype);
/* Whether tally defines op on dtype: AVG on floating types only, the bitwise
 * and logical ops on integer types only. */
int tt_op_valid_for(tally_op_t op, tally_dtype_t dtype);
/* Names for messages: tally_dtype_name(3) and tally_op_name(3). */

/* Fills count elements for `rank` with values whose reduction is exact in
 * every dtype for up to 8 ranks: full-range integers (wrap-around
 * exercised; for the logical ops about a third of them 0, so that results
 * are not all 1), small integers for floating SUM/MIN/MAX/AVG, +-1, +-2 and
 * 0.5 for floating PROD. */
void tt_fill(void *buf, size_t count, tally_dtype_t dtype, tally_op_t op, int rank,
             uint32_t seed);

/* out[i] = all[0][i] op all[1][i] op ... op all[p-1][i] (then / p for AVG),
 * where all holds p vectors of count elements back to back. */
void tt_reference(void *out, const void *all, size_t count, int p, tally_dtype_t dtype,
                  tally_op_t op);

/* MPI tests: true on every rank of MPI_COMM_WORLD iff ok on every rank; a
 * failing rank prints why (printf-style) on stderr first.  Agreeing on each
 * assertion means no rank is ever left waiting in a collective. */
int tt_all_ok(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Float conversions of the reference, independent of the library's. */
float tt_half_to_float(uint16_t h);
uint16_t tt_float_to_half(float f);
float tt_bf16_to_float(uint16_t b);
uint16_t tt_float_to_bf16(float f);

uint64_t tt_hash(const void *buf, size_t bytes);

#endif
