/* reduce.h - element-wise reduction kernels for every dtype x op (host). */
#ifndef TALLY_REDUCE_H
#define TALLY_REDUCE_H

#include <stddef.h>
#include <stdint.h>
#include "tally.h"

/* dst[i] = a[i] op b[i] for i < count.  dst may be exactly a or exactly b
 * (in-place accumulate) but must not partially overlap either.  AVG reduces
 * as SUM; tally_reduce_divide() finishes it.  Integer SUM and PROD wrap
 * modulo 2^bits.  MIN and MAX propagate NaN.  FLOAT16 and BFLOAT16 compute
 * in float and round to nearest even once per element.  The bitwise and
 * logical ops (logical: 1 or 0 in the element type) exist for integer dtypes
 * only; on a floating dtype they leave dst alone (rejected before this). */
void tally_reduce(void *dst, const void *a, const void *b, size_t count,
                  tally_dtype_t dtype, tally_op_t op);

/* buf[i] = buf[i] / divisor for floating dtypes (one rounding); integer
 * dtypes are left alone (AVG is rejected on them before this point). */
void tally_reduce_divide(void *buf, size_t count, tally_dtype_t dtype,
                         int divisor);

/* One (dtype, op) kernel: dst[i] = a[i] op b[i], with the aliasing rules
 * of tally_reduce.  AVG's kernel is SUM's. */
typedef void (*tally_reduce_fn)(void *dst, const void *a, const void *b, size_t count);
/* buf[i] /= divisor (AVG's last step). */
typedef void (*tally_divide_fn)(void *buf, size_t count, int divisor);

/* Everything an algorithm does to data, for one memory type: a call
 * resolves its kernel once (tally_kernels_for) and never touches user data
 * with memcpy or a switch of its own, so a device backend or a codec only
 * has to provide another table.  reduce[d][o] is NULL where op o is not
 * defined on dtype d; divide[d] is NULL for integer dtypes. */
#define TALLY_KERNEL_DTYPES 12
#define TALLY_KERNEL_OPS 11
typedef struct tally_kernels {
    const char *name;
    tally_reduce_fn reduce[TALLY_KERNEL_DTYPES][TALLY_KERNEL_OPS];
    tally_divide_fn divide[TALLY_KERNEL_DTYPES];
    void (*copy)(void *dst, const void *src, size_t bytes);
} tally_kernels_t;

/* The host table for memory the host can reach (host, pinned, managed);
 * NULL for device memory, whose table is its backend's (device.h). */
const tally_kernels_t *tally_kernels_for(tally_memtype_t memtype);

/* IEEE binary16 and bfloat16 <-> float, round to nearest even; NaN stays
 * NaN (quieted), infinities and signed zeros are kept. */
float tally_half_to_float(uint16_t h);
uint16_t tally_float_to_half(float f);
float tally_bfloat16_to_float(uint16_t b);
uint16_t tally_float_to_bfloat16(float f);

#endif
