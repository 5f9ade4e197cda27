/* reduce.c - host reduction kernels: dst[i] = a[i] op b[i] for every dtype x op.
 *
 * The kernels are generated from two lists, dtypes and ops, so adding an op is
 * one line in INT_OPS or FLOAT_OPS (plus its tally_op_t value).  Each dtype x
 * op kernel has one loop per aliasing case, with restrict pointers so that GCC
 * vectorizes them without runtime overlap checks:
 *
 *   into_a   dst == a        a[i] = a[i] op b[i]
 *   into_b   dst == b        b[i] = a[i] op b[i]
 *   apart    all distinct    d[i] = a[i] op b[i]
 *   self     dst == a == b   d[i] = d[i] op d[i]   (restrict forbids the others)
 *
 * This file is built with -O3 -fno-math-errno -fno-trapping-math and without
 * -ffast-math: every expression below is evaluated as written, so results
 * are the same on every rank and at every vector width.  `make vec-report`
 * shows which loops vectorized.
 *
 * FLOAT16 and BFLOAT16 are computed in float and rounded back (to nearest
 * even) once per element.  For SUM, PROD and divide this equals rounding the
 * exact result directly, because float carries at least 2p+2 bits for both
 * (p = 11 and 8), so the double rounding is innocuous. */
#include "reduce.h"
#include "convert.h"

#include <math.h>
#include <string.h>

/* --- float <-> 16-bit conversions: convert.h ------------------------------ */

#define half_to_float tally_cvt_half_to_float
#define float_to_half tally_cvt_float_to_half
#define bf16_to_float tally_cvt_bf16_to_float
#define float_to_bf16 tally_cvt_float_to_bf16

float tally_half_to_float(uint16_t h) { return half_to_float(h); }
uint16_t tally_float_to_half(float f) { return float_to_half(f); }
float tally_bfloat16_to_float(uint16_t b) { return bf16_to_float(b); }
uint16_t tally_float_to_bfloat16(float f) { return float_to_bf16(f); }

/* --- the lists ------------------------------------------------------------ */

#define AS_IS(v) (v)

/* Integer dtypes: name, storage type, unsigned twin for wrapping arithmetic. */
#define INT_DTYPES(X)               \
    X(INT8, int8_t, uint8_t)        \
    X(UINT8, uint8_t, uint8_t)      \
    X(INT16, int16_t, uint16_t)     \
    X(UINT16, uint16_t, uint16_t)   \
    X(INT32, int32_t, uint32_t)     \
    X(UINT32, uint32_t, uint32_t)   \
    X(INT64, int64_t, uint64_t)     \
    X(UINT64, uint64_t, uint64_t)

/* Floating dtypes: name, storage type, compute type, load, store. */
#define FLOAT_DTYPES(X)                                           \
    X(FLOAT16, uint16_t, float, half_to_float, float_to_half)     \
    X(BFLOAT16, uint16_t, float, bf16_to_float, float_to_bf16)    \
    X(FLOAT32, float, float, AS_IS, AS_IS)                        \
    X(FLOAT64, double, double, AS_IS, AS_IS)

/* Ops as expressions of x and y (the loaded operands).  Integer SUM and PROD
 * go through the unsigned twin U: wrapping, never signed-overflow UB, never
 * saturating.  8- and 16-bit operands promote to int, where the sum of two
 * fits, but the product of two uint16_t may not (65535 * 65535 > INT_MAX):
 * PROD therefore starts from 1u * (U)x, which is unsigned int for 8 to 32
 * bits and U for 64, so the product is computed in an unsigned type.  Bitwise ops cannot overflow; the
 * logical ones give 1 or 0 in T, as in MPI.  Each entry passes the kernel
 * arguments (...) through, then the op name and its expression.  AVG is not
 * listed: it reduces as SUM (see tally_reduce). */
/* The logical ops test for nonzero without a compare: in the unsigned type U,
 * v | -v has its top bit set exactly when v != 0, so shifting the combined
 * top bits down by TOP(U) leaves 1 or 0.  Unlike x != 0 this vectorizes for
 * 64-bit elements too with only SSE2 (which has no 64-bit compare). */
#define NZ(U, v) ((U)((U)(v) | (U)(0u - (U)(v))))
#define TOP(U) (sizeof(U) * 8 - 1)

#define INT_OPS(X, T, U, ...)                                   \
    X(__VA_ARGS__, SUM, (T)((U)x + (U)y))                       \
    X(__VA_ARGS__, PROD, (T)(1u * (U)x * (U)y))                 \
    X(__VA_ARGS__, MIN, x < y ? x : y)                          \
    X(__VA_ARGS__, MAX, x > y ? x : y)                          \
    X(__VA_ARGS__, BAND, (T)(x & y))                            \
    X(__VA_ARGS__, BOR, (T)(x | y))                             \
    X(__VA_ARGS__, BXOR, (T)(x ^ y))                            \
    X(__VA_ARGS__, LAND, (T)((NZ(U, x) & NZ(U, y)) >> TOP(U)))  \
    X(__VA_ARGS__, LOR, (T)((NZ(U, x) | NZ(U, y)) >> TOP(U)))   \
    X(__VA_ARGS__, LXOR, (T)((NZ(U, x) ^ NZ(U, y)) >> TOP(U)))

/* MIN and MAX return NaN if either operand is NaN (x != x tests x), written
 * as a select so that it vectorizes. */
#define FLOAT_OPS(X, ...)                                   \
    X(__VA_ARGS__, SUM, x + y)                              \
    X(__VA_ARGS__, PROD, x * y)                             \
    X(__VA_ARGS__, MIN, (x < y || x != x) ? x : y)          \
    X(__VA_ARGS__, MAX, (x > y || x != x) ? x : y)

/* --- kernels ---------------------------------------------------------------- */

/* The loop body shared by the four variants; n is the element count. */
#define ELEMENTWISE(C, LOAD, STORE, EXPR, d, a, b)            \
    for (size_t i = 0; i < n; i++) {                          \
        const C x = LOAD(a[i]), y = LOAD(b[i]);               \
        d[i] = STORE(EXPR);                                   \
    }

/* Defines reduce_<D>_<OP>(dst, a, b, n): the four variants and the choice
 * among them.  T is the storage type, C the type the op computes in. */
#define KERNEL(D, T, C, LOAD, STORE, OP, EXPR)                                      \
    static void D##_##OP##_into_a(T *restrict a, const T *restrict b, size_t n)    \
    {                                                                               \
        ELEMENTWISE(C, LOAD, STORE, EXPR, a, a, b)                                  \
    }                                                                               \
    static void D##_##OP##_into_b(const T *restrict a, T *restrict b, size_t n)    \
    {                                                                               \
        ELEMENTWISE(C, LOAD, STORE, EXPR, b, a, b)                                  \
    }                                                                               \
    static void D##_##OP##_apart(T *restrict d, const T *restrict a,               \
                                 const T *restrict b, size_t n)                     \
    {                                                                               \
        ELEMENTWISE(C, LOAD, STORE, EXPR, d, a, b)                                  \
    }                                                                               \
    static void D##_##OP##_self(T *d, size_t n)                                     \
    {                                                                               \
        ELEMENTWISE(C, LOAD, STORE, EXPR, d, d, d)                                  \
    }                                                                               \
    static void reduce_##D##_##OP(void *dst, const void *a, const void *b, size_t n) \
    {                                                                               \
        if (dst == a && dst == b)                                                   \
            D##_##OP##_self(dst, n);                                                \
        else if (dst == a)                                                          \
            D##_##OP##_into_a(dst, b, n);                                           \
        else if (dst == b)                                                          \
            D##_##OP##_into_b(a, dst, n);                                           \
        else                                                                        \
            D##_##OP##_apart(dst, a, b, n);                                         \
    }

#define OP_CASE(D, T, C, LOAD, STORE, OP, EXPR) \
    case TALLY_##OP:                            \
        reduce_##D##_##OP(dst, a, b, n);        \
        return;

/* Per dtype: its kernels, then reduce_<D>(dst, a, b, n, op) choosing one. */
#define INT_DTYPE(D, T, U)                                                         \
    INT_OPS(KERNEL, T, U, D, T, T, AS_IS, AS_IS)                                   \
    static void reduce_##D(void *dst, const void *a, const void *b, size_t n,      \
                           tally_op_t op)                                          \
    {                                                                              \
        switch (op) {                                                              \
        INT_OPS(OP_CASE, T, U, D, T, T, AS_IS, AS_IS)                              \
        default:                                                                   \
            return;                                                                \
        }                                                                          \
    }

#define FLOAT_DTYPE(D, T, C, LOAD, STORE)                                          \
    FLOAT_OPS(KERNEL, D, T, C, LOAD, STORE)                                        \
    static void reduce_##D(void *dst, const void *a, const void *b, size_t n,      \
                           tally_op_t op)                                          \
    {                                                                              \
        switch (op) {                                                              \
        FLOAT_OPS(OP_CASE, D, T, C, LOAD, STORE)                                   \
        default:                                                                   \
            return;                                                                \
        }                                                                          \
    }

INT_DTYPES(INT_DTYPE)
FLOAT_DTYPES(FLOAT_DTYPE)

void tally_reduce(void *dst, const void *a, const void *b, size_t count,
                  tally_dtype_t dtype, tally_op_t op)
{
    if (op == TALLY_AVG)
        op = TALLY_SUM; /* tally_reduce_divide() finishes it */
    switch (dtype) {
#define DTYPE_CASE(D, ...)                      \
    case TALLY_##D:                             \
        reduce_##D(dst, a, b, count, op);       \
        return;
        INT_DTYPES(DTYPE_CASE)
        FLOAT_DTYPES(DTYPE_CASE)
#undef DTYPE_CASE
    }
}

/* --- AVG's division ------------------------------------------------------- */

/* The divisor is converted exactly (|divisor| <= 2^24 for float), so each
 * element is rounded once; half types round once more, innocuously (above). */
#define DIVIDE(D, T, C, LOAD, STORE)                                   \
    static void divide_##D(T *restrict buf, size_t n, C divisor)       \
    {                                                                  \
        for (size_t i = 0; i < n; i++)                                 \
            buf[i] = STORE(LOAD(buf[i]) / divisor);                    \
    }
FLOAT_DTYPES(DIVIDE)

void tally_reduce_divide(void *buf, size_t count, tally_dtype_t dtype, int divisor)
{
    switch (dtype) {
#define DIVIDE_CASE(D, T, C, LOAD, STORE)         \
    case TALLY_##D:                               \
        divide_##D(buf, count, (C)divisor);       \
        return;
        FLOAT_DTYPES(DIVIDE_CASE)
#undef DIVIDE_CASE
    default:
        return; /* integers: AVG is rejected before this point */
    }
}

/* --- the host kernel table, generated from the same lists ------------------ */

#define DIVIDE_ENTRY(D, T, C, LOAD, STORE)                                 \
    static void divide_entry_##D(void *buf, size_t n, int divisor)         \
    {                                                                      \
        divide_##D(buf, n, (C)divisor);                                    \
    }
FLOAT_DTYPES(DIVIDE_ENTRY)
#undef DIVIDE_ENTRY

static void host_copy(void *dst, const void *src, size_t bytes)
{
    if (dst != src && bytes > 0)
        memcpy(dst, src, bytes);
}

#define TABLE_ENTRY(D, T, C, LOAD, STORE, OP, EXPR) [TALLY_##OP] = reduce_##D##_##OP,
#define INT_ROW(D, T, U) \
    [TALLY_##D] = {INT_OPS(TABLE_ENTRY, T, U, D, T, T, AS_IS, AS_IS)[TALLY_AVG] = NULL},
#define FLOAT_ROW(D, T, C, LOAD, STORE) \
    [TALLY_##D] = {FLOAT_OPS(TABLE_ENTRY, D, T, C, LOAD, STORE)[TALLY_AVG] = reduce_##D##_SUM},
#define DIVIDE_ROW(D, T, C, LOAD, STORE) [TALLY_##D] = divide_entry_##D,

static const tally_kernels_t host_kernels = {
    .name = "host",
    .reduce = {INT_DTYPES(INT_ROW) FLOAT_DTYPES(FLOAT_ROW)},
    .divide = {FLOAT_DTYPES(DIVIDE_ROW)},
    .copy = host_copy,
};

const tally_kernels_t *tally_kernels_for(tally_memtype_t memtype)
{
    return memtype == TALLY_MEM_DEVICE ? NULL : &host_kernels;
}
