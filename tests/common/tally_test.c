/* tally_test.c - see tally_test.h. */
#include "tally_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The library's one hash, header-only (no link to its internals). */
#include "../../src/core/hash.h"

/* The reference's own facts, independent of the library's tables on
 * purpose: a wrong size or class there must fail a test, not be copied.
 * Names, which only label messages, come from the library. */
static const struct {
    size_t size;
    int is_float;
} dtypes[TT_DTYPES] = {
    [TALLY_INT8] = {1, 0},    [TALLY_UINT8] = {1, 0},    [TALLY_INT32] = {4, 0},
    [TALLY_UINT32] = {4, 0},  [TALLY_INT64] = {8, 0},    [TALLY_UINT64] = {8, 0},
    [TALLY_FLOAT16] = {2, 1}, [TALLY_BFLOAT16] = {2, 1}, [TALLY_FLOAT32] = {4, 1},
    [TALLY_FLOAT64] = {8, 1}, [TALLY_INT16] = {2, 0},    [TALLY_UINT16] = {2, 0},
};

static int is_logical(tally_op_t op)
{
    return op == TALLY_LAND || op == TALLY_LOR || op == TALLY_LXOR;
}

int tt_op_valid_for(tally_op_t op, tally_dtype_t dtype)
{
    if (op == TALLY_AVG)
        return tt_dtype_is_float(dtype);
    if (op >= TALLY_BAND)
        return !tt_dtype_is_float(dtype);
    return 1;
}

size_t tt_dtype_size(tally_dtype_t dtype) { return dtypes[dtype].size; }
int tt_dtype_is_float(tally_dtype_t dtype) { return dtypes[dtype].is_float; }

float tt_half_to_float(uint16_t h)
{
    _Float16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}

uint16_t tt_float_to_half(float f)
{
    _Float16 v = (_Float16)f;
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
}

float tt_bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t tt_float_to_bf16(float f)
{
    /* Round to nearest even by comparing against the two neighbours. */
    uint32_t u;
    memcpy(&u, &f, 4);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40);
    uint32_t down = u & 0xffff0000u, rest = u & 0xffffu;
    if (rest > 0x8000u || (rest == 0x8000u && (down & 0x10000u)))
        down += 0x10000u;
    return (uint16_t)(down >> 16);
}

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static double float_value(tally_op_t op, uint32_t h)
{
    if (op == TALLY_PROD) {
        static const double choices[] = {1, -1, 2, -2, 0.5, 1};
        return choices[h % 6];
    }
    return (double)(int)(h % 17) - 8.0; /* -8 .. 8 */
}

void tt_fill(void *buf, size_t count, tally_dtype_t dtype, tally_op_t op, int rank,
             uint32_t seed)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t h = mix((uint32_t)i * 2654435761u ^ mix((uint32_t)rank + seed * 977u));
        uint64_t wide = ((uint64_t)mix(h) << 32) | h;
        if (is_logical(op) && mix(h ^ 0x5bd1e995u) % 3 == 0)
            wide = 0;
        double f = float_value(op, h);
        switch (dtype) {
        case TALLY_INT8: case TALLY_UINT8: ((uint8_t *)buf)[i] = (uint8_t)wide; break;
        case TALLY_INT16: case TALLY_UINT16: ((uint16_t *)buf)[i] = (uint16_t)wide; break;
        case TALLY_INT32: case TALLY_UINT32: ((uint32_t *)buf)[i] = (uint32_t)wide; break;
        case TALLY_INT64: case TALLY_UINT64: ((uint64_t *)buf)[i] = wide; break;
        case TALLY_FLOAT16: ((uint16_t *)buf)[i] = tt_float_to_half((float)f); break;
        case TALLY_BFLOAT16: ((uint16_t *)buf)[i] = tt_float_to_bf16((float)f); break;
        case TALLY_FLOAT32: ((float *)buf)[i] = (float)f; break;
        case TALLY_FLOAT64: ((double *)buf)[i] = f; break;
        }
    }
}

/* Integer ops in the unsigned type (wrap-around); MIN/MAX by signedness. */
#define INT_REDUCE(UT, ST, acc, x, op)                                         \
    do {                                                                       \
        UT a_ = (UT)(acc), x_ = (UT)(x);                                       \
        switch (op) {                                                          \
        case TALLY_SUM: case TALLY_AVG: a_ = (UT)(a_ + x_); break;             \
        case TALLY_PROD: a_ = (UT)(1u * a_ * x_); break;                       \
        case TALLY_MIN: a_ = ((ST)x_ < (ST)a_) ? x_ : a_; break;               \
        case TALLY_MAX: a_ = ((ST)x_ > (ST)a_) ? x_ : a_; break;               \
        case TALLY_BAND: a_ = (UT)(a_ & x_); break;                            \
        case TALLY_BOR: a_ = (UT)(a_ | x_); break;                             \
        case TALLY_BXOR: a_ = (UT)(a_ ^ x_); break;                            \
        case TALLY_LAND: a_ = (UT)(a_ != 0 && x_ != 0); break;                 \
        case TALLY_LOR: a_ = (UT)(a_ != 0 || x_ != 0); break;                  \
        case TALLY_LXOR: a_ = (UT)((a_ != 0) != (x_ != 0)); break;             \
        }                                                                      \
        (acc) = a_;                                                            \
    } while (0)

static double float_reduce(double acc, double x, tally_op_t op)
{
    switch (op) {
    case TALLY_SUM: case TALLY_AVG: return acc + x;
    case TALLY_PROD: return acc * x;
    case TALLY_MIN: return (isnan(acc) || isnan(x)) ? NAN : (x < acc ? x : acc);
    case TALLY_MAX: return (isnan(acc) || isnan(x)) ? NAN : (x > acc ? x : acc);
    default: break; /* bitwise and logical ops: integers only */
    }
    return acc;
}

static double load_float(const void *base, size_t i, tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_FLOAT16: return tt_half_to_float(((const uint16_t *)base)[i]);
    case TALLY_BFLOAT16: return tt_bf16_to_float(((const uint16_t *)base)[i]);
    case TALLY_FLOAT32: return ((const float *)base)[i];
    default: return ((const double *)base)[i];
    }
}

/* Rounds the way the library stores: the sum in the element type, then the
 * AVG division in float (half types, float32) or double. */
static void store_float(void *base, size_t i, tally_dtype_t dtype, double v, int divide_by)
{
    switch (dtype) {
    case TALLY_FLOAT16: {
        float f = tt_half_to_float(tt_float_to_half((float)v));
        ((uint16_t *)base)[i] = tt_float_to_half(divide_by ? f / (float)divide_by : f);
        break;
    }
    case TALLY_BFLOAT16: {
        float f = tt_bf16_to_float(tt_float_to_bf16((float)v));
        ((uint16_t *)base)[i] = tt_float_to_bf16(divide_by ? f / (float)divide_by : f);
        break;
    }
    case TALLY_FLOAT32: {
        float f = (float)v;
        ((float *)base)[i] = divide_by ? f / (float)divide_by : f;
        break;
    }
    default:
        ((double *)base)[i] = divide_by ? v / divide_by : v;
        break;
    }
}

void tt_reference(void *out, const void *all, size_t count, int p, tally_dtype_t dtype,
                  tally_op_t op)
{
    const size_t es = tt_dtype_size(dtype);
    const char *in = all;
    for (size_t i = 0; i < count; i++) {
        if (tt_dtype_is_float(dtype)) {
            /* Test data keep every partial result exact, so double is the
             * exact value whatever the order. */
            double acc = load_float(in, i, dtype);
            for (int r = 1; r < p; r++)
                acc = float_reduce(acc, load_float(in + (size_t)r * count * es, i, dtype), op);
            store_float(out, i, dtype, acc, op == TALLY_AVG ? p : 0);
            continue;
        }
        uint64_t acc = 0;
        memcpy(&acc, in + i * es, es);
        for (int r = 1; r < p; r++) {
            uint64_t x = 0;
            memcpy(&x, in + ((size_t)r * count + i) * es, es);
            switch (dtype) {
            case TALLY_INT8: INT_REDUCE(uint8_t, int8_t, acc, x, op); break;
            case TALLY_UINT8: INT_REDUCE(uint8_t, uint8_t, acc, x, op); break;
            case TALLY_INT16: INT_REDUCE(uint16_t, int16_t, acc, x, op); break;
            case TALLY_UINT16: INT_REDUCE(uint16_t, uint16_t, acc, x, op); break;
            case TALLY_INT32: INT_REDUCE(uint32_t, int32_t, acc, x, op); break;
            case TALLY_UINT32: INT_REDUCE(uint32_t, uint32_t, acc, x, op); break;
            case TALLY_INT64: INT_REDUCE(uint64_t, int64_t, acc, x, op); break;
            default: INT_REDUCE(uint64_t, uint64_t, acc, x, op); break;
            }
        }
        memcpy((char *)out + i * es, &acc, es);
    }
}

uint64_t tt_hash(const void *buf, size_t bytes)
{
    return tally_hash_fnv1a(TALLY_HASH_INIT, buf, bytes);
}

int tt_all_ok(int ok, const char *fmt, ...)
{
    if (!ok) {
        int rank = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "rank %d: ", rank);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all;
}
