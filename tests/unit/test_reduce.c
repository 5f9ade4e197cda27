/* test_reduce.c - unit tests for the host reduce kernels and the 16-bit float
 * conversions.  Every expected value comes from a scalar reference written
 * here: integers in 64-bit arithmetic then truncated, floating results
 * computed exactly (or with innocuous double rounding) in double and rounded
 * once, binary16 through GCC's _Float16, bfloat16 through rint(). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reduce/reduce.h"
#include "tally.h"

#define NDTYPES 12
#define NOPS 11

static const struct {
    const char *name;
    size_t size;
    int is_float, is_signed;
} dtypes[NDTYPES] = {
    [TALLY_INT8] = {"int8", 1, 0, 1},        [TALLY_UINT8] = {"uint8", 1, 0, 0},
    [TALLY_INT32] = {"int32", 4, 0, 1},      [TALLY_UINT32] = {"uint32", 4, 0, 0},
    [TALLY_INT64] = {"int64", 8, 0, 1},      [TALLY_UINT64] = {"uint64", 8, 0, 0},
    [TALLY_FLOAT16] = {"float16", 2, 1, 1},  [TALLY_BFLOAT16] = {"bfloat16", 2, 1, 1},
    [TALLY_FLOAT32] = {"float32", 4, 1, 1},  [TALLY_FLOAT64] = {"float64", 8, 1, 1},
    [TALLY_INT16] = {"int16", 2, 0, 1},      [TALLY_UINT16] = {"uint16", 2, 0, 0},
};
static const char *const op_names[NOPS] = {"sum",  "prod", "min",  "max", "avg", "band",
                                           "bor",  "bxor", "land", "lor", "lxor"};

/* The bitwise and logical ops: integer dtypes only. */
static int integer_only(tally_op_t op)
{
    return op == TALLY_BAND || op == TALLY_BOR || op == TALLY_BXOR || op == TALLY_LAND ||
           op == TALLY_LOR || op == TALLY_LXOR;
}

/* ck_assert_msg() reports every passing check to the runner (a write each);
 * the loops here make millions of checks, so only failures are reported. */
#define EXPECT(expr, ...)                       \
    do {                                        \
        if (!(expr))                            \
            ck_assert_msg(expr, __VA_ARGS__);   \
    } while (0)

/* --- reference rounding --------------------------------------------------- */

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* v rounded to nearest even in a binary format with `digits` significant
 * bits, subnormal spacing 2^qmin and largest finite value maxv.  rint()
 * rounds to nearest even in the default rounding mode. */
static double round_to_format(double v, int digits, int qmin, double maxv)
{
    if (isnan(v) || isinf(v) || v == 0)
        return v;
    int e;
    frexp(v, &e); /* 2^(e-1) <= |v| < 2^e */
    int q = e - digits;
    if (q < qmin)
        q = qmin;
    double r = ldexp(rint(ldexp(v, -q)), q);
    return fabs(r) > maxv ? copysign(INFINITY, v) : r;
}

#define BF16_MAX 0x1.fep127

static uint16_t ref_to_bf16(double v)
{
    if (isnan(v))
        return 0x7fc0;
    /* The rounded value is exactly a float whose low 16 bits are zero. */
    return (uint16_t)(bits_of((float)round_to_format(v, 8, -133, BF16_MAX)) >> 16);
}

static double ref_from_bf16(uint16_t b)
{
    return float_of((uint32_t)b << 16);
}

/* GCC converts double -> _Float16 directly (one rounding). */
static uint16_t ref_to_half(double v)
{
    _Float16 h = (_Float16)v;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

static uint16_t ref_float_to_half(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

static double ref_from_half(uint16_t u)
{
    _Float16 h;
    memcpy(&h, &u, 2);
    return (double)h;
}

static int half_is_nan(uint16_t h) { return (h & 0x7fff) > 0x7c00; }
static int bf16_is_nan(uint16_t b) { return (b & 0x7fff) > 0x7f80; }

/* --- element access by dtype --------------------------------------------- */

static double get_float(tally_dtype_t dt, const void *p)
{
    switch (dt) {
    case TALLY_FLOAT16: { uint16_t u; memcpy(&u, p, 2); return ref_from_half(u); }
    case TALLY_BFLOAT16: { uint16_t u; memcpy(&u, p, 2); return ref_from_bf16(u); }
    case TALLY_FLOAT32: { float f; memcpy(&f, p, 4); return f; }
    default: { double d; memcpy(&d, p, 8); return d; }
    }
}

/* Stores v rounded once to the dtype. */
static void put_float(tally_dtype_t dt, void *p, double v)
{
    switch (dt) {
    case TALLY_FLOAT16: { uint16_t u = ref_to_half(v); memcpy(p, &u, 2); break; }
    case TALLY_BFLOAT16: { uint16_t u = ref_to_bf16(v); memcpy(p, &u, 2); break; }
    case TALLY_FLOAT32: { float f = (float)v; memcpy(p, &f, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

/* Raw bits, zero-extended. */
static uint64_t get_bits(tally_dtype_t dt, const void *p)
{
    uint64_t u = 0;
    memcpy(&u, p, dtypes[dt].size); /* little-endian */
    return u;
}

/* --- the reference reduction ---------------------------------------------- */

static void ref_int(tally_dtype_t dt, tally_op_t op, const void *pa, const void *pb, void *out)
{
    const unsigned bits = (unsigned)dtypes[dt].size * 8;
    const uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    const uint64_t ua = get_bits(dt, pa), ub = get_bits(dt, pb);
    /* Sign-extend for signed comparisons. */
    const int64_t sa = (int64_t)(ua << (64 - bits)) >> (64 - bits);
    const int64_t sb = (int64_t)(ub << (64 - bits)) >> (64 - bits);
    const int a_less = dtypes[dt].is_signed ? sa < sb : ua < ub;
    uint64_t r = 0;
    switch (op) {
    case TALLY_SUM: case TALLY_AVG: r = (ua + ub) & mask; break;
    case TALLY_PROD: r = (ua * ub) & mask; break; /* congruent mod 2^bits */
    case TALLY_MIN: r = a_less ? ua : ub; break;
    case TALLY_MAX: r = a_less ? ub : ua; break;
    case TALLY_BAND: r = ua & ub; break;
    case TALLY_BOR: r = ua | ub; break;
    case TALLY_BXOR: r = ua ^ ub; break;
    case TALLY_LAND: r = ua != 0 && ub != 0; break;
    case TALLY_LOR: r = ua != 0 || ub != 0; break;
    case TALLY_LXOR: r = (ua != 0) != (ub != 0); break;
    }
    memcpy(out, &r, dtypes[dt].size);
}

/* Two values of any of the dtypes, as doubles: SUM and PROD are exact for
 * binary16 and exact or innocuously double-rounded (53 >= 2p + 2) for
 * bfloat16 and float32; float64 is the plain double operation. */
static void ref_float(tally_dtype_t dt, tally_op_t op, const void *pa, const void *pb, void *out)
{
    const double x = get_float(dt, pa), y = get_float(dt, pb);
    double r = 0;
    switch (op) {
    case TALLY_SUM: case TALLY_AVG: r = x + y; break;
    case TALLY_PROD: r = x * y; break;
    case TALLY_MIN: r = (isnan(x) || isnan(y)) ? NAN : (x < y ? x : y); break;
    case TALLY_MAX: r = (isnan(x) || isnan(y)) ? NAN : (x > y ? x : y); break;
    default: break; /* integer-only ops: not called */
    }
    put_float(dt, out, r);
}

static void ref_elem(tally_dtype_t dt, tally_op_t op, const void *pa, const void *pb, void *out)
{
    if (dtypes[dt].is_float)
        ref_float(dt, op, pa, pb, out);
    else
        ref_int(dt, op, pa, pb, out);
}

/* Integers: bit-equal.  Floating: both NaN, or bit-equal, or, for MIN/MAX,
 * equal values (the sign of a zero from min(-0, +0) is not specified). */
static int same_result(tally_dtype_t dt, tally_op_t op, const void *want, const void *got)
{
    if (get_bits(dt, want) == get_bits(dt, got))
        return 1;
    if (!dtypes[dt].is_float)
        return 0;
    const double w = get_float(dt, want), g = get_float(dt, got);
    if (isnan(w) || isnan(g))
        return isnan(w) && isnan(g);
    return (op == TALLY_MIN || op == TALLY_MAX) && w == g;
}

/* --- test data ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Integers: random bits (wrap-around is common), with about a third of them
 * 0 when `zeros` is set (for the logical ops, whose results would otherwise
 * be almost all 1).  Floating: a mix of random bit patterns (NaN, inf,
 * subnormals included), values of similar size (whose sums and products
 * round), small integers (ties for MIN/MAX) and special values. */
static void fill_zeros(tally_dtype_t dt, void *buf, size_t n, int zeros)
{
    static const double specials[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1.0, -1.0,
                                      0x1p-24, -0x1p-133, 65504.0, 0x1p-149, DBL_MAX};
    const size_t es = dtypes[dt].size;
    for (size_t i = 0; i < n; i++) {
        void *p = (char *)buf + i * es;
        uint64_t r = rng();
        if (!dtypes[dt].is_float) {
            if (zeros && rng() % 3 == 0)
                r = 0;
            memcpy(p, &r, es);
            continue;
        }
        switch (r % 4) {
        case 0: memcpy(p, &r, es); break;
        case 1: put_float(dt, p, ldexp((double)(int32_t)(r >> 32), -28)); break;
        case 2: put_float(dt, p, (double)((int)(r >> 40) % 9 - 4)); break;
        default: put_float(dt, p, specials[(r >> 32) % (sizeof specials / sizeof *specials)]);
        }
    }
}

static void fill(tally_dtype_t dt, void *buf, size_t n)
{
    fill_zeros(dt, buf, n, 0);
}

/* --- every dtype x op x aliasing variant ----------------------------------- */

enum { APART, INTO_A, INTO_B, SELF, NVARIANTS };
static const char *const variant_names[NVARIANTS] = {"apart", "dst==a", "dst==b",
                                                     "dst==a==b"};
#define PAD 24 /* elements before and after, checked to stay untouched */

/* a, b and dst at PAD + off elements into their buffers (b at the other
 * offset, so the operands' vector alignments differ). */
static void check_reduce(tally_dtype_t dt, tally_op_t op, int variant, size_t n, size_t off)
{
    const size_t es = dtypes[dt].size, bytes = (n + 2 * PAD) * es;
    char *buf[3], *saved[3];
    for (int k = 0; k < 3; k++) {
        buf[k] = malloc(bytes);
        saved[k] = malloc(bytes);
        ck_assert(buf[k] && saved[k]);
        fill_zeros(dt, buf[k], n + 2 * PAD,
                   op == TALLY_LAND || op == TALLY_LOR || op == TALLY_LXOR);
        memcpy(saved[k], buf[k], bytes);
    }
    const size_t at[3] = {(PAD + off) * es, (PAD + !off) * es, (PAD + off) * es};
    /* Which buffer each of a, b, dst lives in. */
    int ia = 0, ib = 1, id = 2;
    if (variant == INTO_A || variant == SELF)
        id = 0;
    if (variant == INTO_B)
        id = 1;
    if (variant == SELF)
        ib = 0;
    const char *a = buf[ia] + at[ia], *b = buf[ib] + at[ib];
    char *d = buf[id] + at[id];

    tally_reduce(d, a, b, n, dt, op);

    const char *sa = saved[ia] + at[ia], *sb = saved[ib] + at[ib];
    for (size_t i = 0; i < n; i++) {
        unsigned char want[8];
        ref_elem(dt, op, sa + i * es, sb + i * es, want);
        EXPECT(same_result(dt, op, want, d + i * es),
                      "%s %s %s n=%zu off=%zu: element %zu is 0x%llx, want 0x%llx "
                      "(a 0x%llx, b 0x%llx)",
                      dtypes[dt].name, op_names[op], variant_names[variant], n, off, i,
                      (unsigned long long)get_bits(dt, d + i * es),
                      (unsigned long long)get_bits(dt, want),
                      (unsigned long long)get_bits(dt, sa + i * es),
                      (unsigned long long)get_bits(dt, sb + i * es));
    }
    /* Nothing else changed: the inputs, and the output's padding. */
    for (int k = 0; k < 3; k++) {
        for (size_t byte = 0; byte < bytes; byte++) {
            if (k == id && byte >= at[id] && byte < at[id] + n * es)
                continue;
            EXPECT(buf[k][byte] == saved[k][byte],
                          "%s %s %s n=%zu: buffer %d byte %zu changed", dtypes[dt].name,
                          op_names[op], variant_names[variant], n, k, byte);
        }
    }
    for (int k = 0; k < 3; k++) {
        free(buf[k]);
        free(saved[k]);
    }
}

/* _i enumerates dtype x op x variant (the integer-only ops on floating
 * dtypes are not defined, and pass trivially). */
START_TEST(test_reduce_all)
{
    const tally_dtype_t dt = (tally_dtype_t)(_i / (NOPS * NVARIANTS));
    const tally_op_t op = (tally_op_t)(_i / NVARIANTS % NOPS);
    const int variant = _i % NVARIANTS;
    if (dtypes[dt].is_float && integer_only(op))
        return;
    static const size_t lengths[] = {0, 1, 7, 33, 1000};
    rng_state = (uint64_t)_i * 7919u;
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++)
        for (size_t off = 0; off < 2; off++)
            check_reduce(dt, op, variant, lengths[l], off);
}
END_TEST

/* AVG reduces exactly as SUM (the division is separate). */
START_TEST(test_avg_is_sum)
{
    const tally_dtype_t dt = (tally_dtype_t)_i;
    const size_t n = 101, es = dtypes[dt].size;
    char *a = malloc(n * es), *b = malloc(n * es), *s = malloc(n * es), *v = malloc(n * es);
    ck_assert(a && b && s && v);
    rng_state = 42 + (uint64_t)_i;
    fill(dt, a, n);
    fill(dt, b, n);
    tally_reduce(s, a, b, n, dt, TALLY_SUM);
    tally_reduce(v, a, b, n, dt, TALLY_AVG);
    ck_assert_mem_eq(s, v, n * es);
    free(a);
    free(b);
    free(s);
    free(v);
}
END_TEST

/* --- integer wrap-around --------------------------------------------------- */

/* Long enough for the vector body: a saturating kernel would fail. */
#define WRAP_N 67
#define CHECK_WRAP(T, DT, OP, X, Y, WANT)                                  \
    do {                                                                   \
        T a_[WRAP_N], b_[WRAP_N], d_[WRAP_N];                              \
        for (int i_ = 0; i_ < WRAP_N; i_++) {                              \
            a_[i_] = (T)(X);                                               \
            b_[i_] = (T)(Y);                                               \
        }                                                                  \
        tally_reduce(d_, a_, b_, WRAP_N, DT, OP);                          \
        tally_reduce(a_, a_, b_, WRAP_N, DT, OP);                          \
        for (int i_ = 0; i_ < WRAP_N; i_++) {                              \
            EXPECT(d_[i_] == (T)(WANT) && a_[i_] == (T)(WANT),      \
                          "%s: %s " #X ", " #Y " gave %lld, want %lld",    \
                          dtypes[DT].name, op_names[OP], (long long)d_[i_], \
                          (long long)(T)(WANT));                           \
        }                                                                  \
    } while (0)

START_TEST(test_int_wraps)
{
    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_SUM, 100, 100, -56);
    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_SUM, -100, -100, 56);
    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_SUM, 127, 1, -128);
    CHECK_WRAP(uint8_t, TALLY_UINT8, TALLY_SUM, 200, 100, 44);
    CHECK_WRAP(int16_t, TALLY_INT16, TALLY_SUM, 30000, 10000, -25536);
    CHECK_WRAP(int16_t, TALLY_INT16, TALLY_SUM, INT16_MIN, -1, INT16_MAX);
    CHECK_WRAP(uint16_t, TALLY_UINT16, TALLY_SUM, 60000, 10000, 4464);
    CHECK_WRAP(int32_t, TALLY_INT32, TALLY_SUM, INT32_MAX, 1, INT32_MIN);
    CHECK_WRAP(int32_t, TALLY_INT32, TALLY_SUM, INT32_MIN, -1, INT32_MAX);
    CHECK_WRAP(uint32_t, TALLY_UINT32, TALLY_SUM, UINT32_MAX, 2, 1);
    CHECK_WRAP(int64_t, TALLY_INT64, TALLY_SUM, INT64_MAX, 1, INT64_MIN);
    CHECK_WRAP(uint64_t, TALLY_UINT64, TALLY_SUM, UINT64_MAX, 3, 2);
    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_AVG, 100, 100, -56);

    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_PROD, 16, 16, 0);
    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_PROD, 100, 3, 44);
    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_PROD, -128, -1, -128);
    CHECK_WRAP(uint8_t, TALLY_UINT8, TALLY_PROD, 200, 2, 144);
    CHECK_WRAP(uint8_t, TALLY_UINT8, TALLY_PROD, 255, 255, 1);
    CHECK_WRAP(int16_t, TALLY_INT16, TALLY_PROD, 300, 300, 24464);
    CHECK_WRAP(int16_t, TALLY_INT16, TALLY_PROD, INT16_MIN, -1, INT16_MIN);
    CHECK_WRAP(uint16_t, TALLY_UINT16, TALLY_PROD, 65535, 65535, 1); /* > INT_MAX in int */
    CHECK_WRAP(uint16_t, TALLY_UINT16, TALLY_PROD, 0x8001, 0x8001, 0x0001);
    CHECK_WRAP(int32_t, TALLY_INT32, TALLY_PROD, 65536, 65536, 0);
    CHECK_WRAP(int32_t, TALLY_INT32, TALLY_PROD, INT32_MIN, -1, INT32_MIN);
    CHECK_WRAP(uint32_t, TALLY_UINT32, TALLY_PROD, 0x10001u, 0x10001u, 0x20001u);
    CHECK_WRAP(int64_t, TALLY_INT64, TALLY_PROD, INT64_MAX, 2, -2);
    CHECK_WRAP(uint64_t, TALLY_UINT64, TALLY_PROD, 0x100000001ull, 0x100000001ull,
               0x200000001ull);

    tally_reduce(NULL, NULL, NULL, 0, TALLY_INT32, TALLY_SUM); /* count 0: no access */
    /* MIN/MAX compare by signedness. */
    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_MIN, -1, 1, -1);
    CHECK_WRAP(uint8_t, TALLY_UINT8, TALLY_MIN, 255, 1, 1);
    CHECK_WRAP(int64_t, TALLY_INT64, TALLY_MAX, INT64_MIN, -1, -1);
    CHECK_WRAP(uint64_t, TALLY_UINT64, TALLY_MAX, UINT64_MAX, 1, UINT64_MAX);
    CHECK_WRAP(int16_t, TALLY_INT16, TALLY_MIN, -1, 1, -1);
    CHECK_WRAP(uint16_t, TALLY_UINT16, TALLY_MAX, 65535, 1, 65535);
}
END_TEST

/* Bitwise ops act on every bit; logical ops give 1 or 0 in the element type
 * whichever bits make an operand nonzero (the top bit alone, a high byte
 * alone), for every width and signedness. */
START_TEST(test_bitwise_logical)
{
    CHECK_WRAP(uint8_t, TALLY_UINT8, TALLY_BAND, 0xf0, 0x3c, 0x30);
    CHECK_WRAP(int16_t, TALLY_INT16, TALLY_BOR, 0x0f00, -0x8000, -0x7100);
    CHECK_WRAP(uint16_t, TALLY_UINT16, TALLY_BXOR, 0xffff, 0x1234, 0xedcb);
    CHECK_WRAP(int32_t, TALLY_INT32, TALLY_BAND, -1, 0x12345678, 0x12345678);
    CHECK_WRAP(uint64_t, TALLY_UINT64, TALLY_BXOR, UINT64_MAX, 1, UINT64_MAX - 1);
    CHECK_WRAP(int64_t, TALLY_INT64, TALLY_BOR, INT64_MIN, 1, INT64_MIN + 1);

    CHECK_WRAP(int8_t, TALLY_INT8, TALLY_LAND, -128, 2, 1);
    CHECK_WRAP(uint8_t, TALLY_UINT8, TALLY_LAND, 0x80, 0, 0);
    CHECK_WRAP(int16_t, TALLY_INT16, TALLY_LAND, 0x100, 0x1, 1); /* bitwise & is 0 */
    CHECK_WRAP(uint16_t, TALLY_UINT16, TALLY_LOR, 0, 0, 0);
    CHECK_WRAP(uint16_t, TALLY_UINT16, TALLY_LOR, 0, 0x8000, 1);
    CHECK_WRAP(int32_t, TALLY_INT32, TALLY_LXOR, 5, 7, 0);
    CHECK_WRAP(int32_t, TALLY_INT32, TALLY_LXOR, INT32_MIN, 0, 1);
    CHECK_WRAP(uint32_t, TALLY_UINT32, TALLY_LAND, 0x10000u, 0x80000000u, 1);
    CHECK_WRAP(int64_t, TALLY_INT64, TALLY_LAND, INT64_MIN, (int64_t)1 << 40, 1);
    CHECK_WRAP(int64_t, TALLY_INT64, TALLY_LOR, 0, 0, 0);
    CHECK_WRAP(uint64_t, TALLY_UINT64, TALLY_LOR, (uint64_t)1 << 32, 0, 1);
    CHECK_WRAP(uint64_t, TALLY_UINT64, TALLY_LXOR, (uint64_t)1 << 63, 0, 1);
    CHECK_WRAP(uint64_t, TALLY_UINT64, TALLY_LXOR, (uint64_t)1 << 63, 3, 0);
}
END_TEST

/* --- binary16 conversions -------------------------------------------------- */

START_TEST(test_half_roundtrip)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = tally_half_to_float((uint16_t)h);
        const uint16_t back = tally_float_to_half(f);
        if (half_is_nan((uint16_t)h)) {
            EXPECT(isnan(f), "half 0x%04x -> %a, want NaN", h, (double)f);
            EXPECT(half_is_nan(back) && (back & 0x0200) && (back & 0x8000) == (h & 0x8000),
                          "half NaN 0x%04x came back as 0x%04x", h, back);
            continue;
        }
        EXPECT(bits_of(f) == bits_of((float)ref_from_half((uint16_t)h)),
                      "half 0x%04x -> %a, want %a", h, (double)f, ref_from_half((uint16_t)h));
        EXPECT(back == h, "half 0x%04x -> %a -> 0x%04x", h, (double)f, back);
    }
}
END_TEST

static void check_to_half(float f)
{
    const uint16_t got = tally_float_to_half(f), want = ref_float_to_half(f);
    if (isnan(f)) {
        EXPECT(half_is_nan(got), "float 0x%08x (NaN) -> half 0x%04x", bits_of(f), got);
        return;
    }
    EXPECT(got == want, "float 0x%08x (%a) -> half 0x%04x, want 0x%04x", bits_of(f),
                  (double)f, got, want);
}

START_TEST(test_half_from_float)
{
    /* A prime stride through every float bit pattern. */
    for (uint64_t u = 0; u <= UINT32_MAX; u += 1021)
        check_to_half(float_of((uint32_t)u));
    /* Every tie between neighbouring halves (exact in float), and one float
     * ulp either side of it; both signs, subnormal and overflow ties too. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const double lo = ref_from_half((uint16_t)h);
        const double hi = h + 1 < 0x7c00 ? ref_from_half((uint16_t)(h + 1)) : 65536.0;
        const float mid = (float)((lo + hi) / 2);
        EXPECT((double)mid == (lo + hi) / 2, "half tie 0x%04x not exact", h);
        const float near[] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 3; k++) {
            check_to_half(near[k]);
            check_to_half(-near[k]);
        }
    }
    /* Named cases, independent of _Float16. */
    ck_assert_uint_eq(tally_float_to_half(-0.0f), 0x8000);
    ck_assert_uint_eq(tally_float_to_half(0.0f), 0x0000);
    ck_assert_uint_eq(tally_float_to_half(1.0f), 0x3c00);
    ck_assert_uint_eq(tally_float_to_half(65504.0f), 0x7bff);
    ck_assert_uint_eq(tally_float_to_half(65519.996f), 0x7bff);
    ck_assert_uint_eq(tally_float_to_half(65520.0f), 0x7c00); /* tie -> even = inf */
    ck_assert_uint_eq(tally_float_to_half(1e10f), 0x7c00);
    ck_assert_uint_eq(tally_float_to_half(-INFINITY), 0xfc00);
    ck_assert_uint_eq(tally_float_to_half(0x1p-24f), 0x0001);
    ck_assert_uint_eq(tally_float_to_half(0x1p-25f), 0x0000);       /* tie -> even */
    ck_assert_uint_eq(tally_float_to_half(0x1.000002p-25f), 0x0001);
    ck_assert_uint_eq(tally_float_to_half(0x1.8p-24f), 0x0002);     /* tie -> even */
    ck_assert_uint_eq(tally_float_to_half(-0x1p-140f), 0x8000);     /* float subnormal */
    ck_assert_uint_eq(tally_float_to_half(1.0f + 0x1p-11f), 0x3c00); /* tie -> even */
    ck_assert_uint_eq(tally_float_to_half(1.0f + 0x1.8p-10f), 0x3c02);
    ck_assert(half_is_nan(tally_float_to_half(float_of(0x7f800001u)))); /* signalling */
    ck_assert(half_is_nan(tally_float_to_half(float_of(0xffffffffu))));
}
END_TEST

/* --- bfloat16 conversions -------------------------------------------------- */

START_TEST(test_bf16_roundtrip)
{
    for (uint32_t b = 0; b < 65536; b++) {
        const float f = tally_bfloat16_to_float((uint16_t)b);
        const uint16_t back = tally_float_to_bfloat16(f);
        if (bf16_is_nan((uint16_t)b)) {
            EXPECT(isnan(f), "bf16 0x%04x -> %a, want NaN", b, (double)f);
            EXPECT(bf16_is_nan(back) && (back & 0x0040) && (back & 0x8000) == (b & 0x8000),
                          "bf16 NaN 0x%04x came back as 0x%04x", b, back);
            continue;
        }
        EXPECT(bits_of(f) == b << 16, "bf16 0x%04x -> %a", b, (double)f);
        EXPECT(back == b, "bf16 0x%04x -> %a -> 0x%04x", b, (double)f, back);
    }
}
END_TEST

static void check_to_bf16(float f)
{
    const uint16_t got = tally_float_to_bfloat16(f);
    if (isnan(f)) {
        EXPECT(bf16_is_nan(got), "float 0x%08x (NaN) -> bf16 0x%04x", bits_of(f), got);
        return;
    }
    const uint16_t want = ref_to_bf16(f);
    EXPECT(got == want, "float 0x%08x (%a) -> bf16 0x%04x, want 0x%04x", bits_of(f),
                  (double)f, got, want);
}

START_TEST(test_bf16_from_float)
{
    for (uint64_t u = 0; u <= UINT32_MAX; u += 1021)
        check_to_bf16(float_of((uint32_t)u));
    /* Ties between all neighbours (and one float ulp either side), both signs;
     * the NaN range checks that no NaN rounds to inf. */
    for (uint32_t b = 0; b < 0x8000; b++) {
        const uint32_t mid = (b << 16) | 0x8000u;
        for (uint32_t d = 0; d < 3; d++) {
            const uint32_t u = mid + d - 1;
            check_to_bf16(float_of(u));
            check_to_bf16(float_of(u | 0x80000000u));
        }
    }
    ck_assert_uint_eq(tally_float_to_bfloat16(-0.0f), 0x8000);
    ck_assert_uint_eq(tally_float_to_bfloat16(1.0f), 0x3f80);
    ck_assert_uint_eq(tally_float_to_bfloat16(float_of(0x3f808000u)), 0x3f80); /* tie, even */
    ck_assert_uint_eq(tally_float_to_bfloat16(float_of(0x3f818000u)), 0x3f82); /* tie, odd */
    ck_assert_uint_eq(tally_float_to_bfloat16(float_of(0x7f7f7fffu)), 0x7f7f);
    ck_assert_uint_eq(tally_float_to_bfloat16(float_of(0x7f7f8000u)), 0x7f80); /* to inf */
    ck_assert_uint_eq(tally_float_to_bfloat16(-INFINITY), 0xff80);
    ck_assert_uint_eq(tally_float_to_bfloat16(0x1p-133f), 0x0001); /* subnormal */
    ck_assert(bf16_is_nan(tally_float_to_bfloat16(float_of(0x7f800001u))));
    ck_assert(bf16_is_nan(tally_float_to_bfloat16(float_of(0xffffffffu))));
}
END_TEST

/* The vector loops see every 16-bit pattern: x + (-0) == x exactly and
 * x * 1 == x, for every x but NaN (which must stay NaN). */
START_TEST(test_every_16bit_pattern_in_loops)
{
    const tally_dtype_t dt = _i ? TALLY_BFLOAT16 : TALLY_FLOAT16;
    const uint16_t neg_zero = 0x8000, one = _i ? 0x3f80 : 0x3c00;
    enum { N = 65536 };
    uint16_t *x = malloc(N * 2), *c = malloc(N * 2), *d = malloc(N * 2);
    ck_assert(x && c && d);
    for (uint32_t i = 0; i < N; i++)
        x[i] = (uint16_t)i;
    const tally_op_t ops[] = {TALLY_SUM, TALLY_PROD, TALLY_MIN, TALLY_MAX};
    for (int k = 0; k < 4; k++) {
        /* MIN/MAX against the value itself, through dst == a == b. */
        for (uint32_t i = 0; i < N; i++)
            c[i] = ops[k] == TALLY_SUM ? neg_zero : one;
        if (ops[k] == TALLY_MIN || ops[k] == TALLY_MAX) {
            memcpy(d, x, N * 2);
            tally_reduce(d, d, d, N, dt, ops[k]);
        } else {
            tally_reduce(d, x, c, N, dt, ops[k]);
        }
        for (uint32_t i = 0; i < N; i++) {
            const int nan = dt == TALLY_FLOAT16 ? half_is_nan(x[i]) : bf16_is_nan(x[i]);
            const int got_nan = dt == TALLY_FLOAT16 ? half_is_nan(d[i]) : bf16_is_nan(d[i]);
            EXPECT(nan ? got_nan : d[i] == x[i], "%s %s: 0x%04x gave 0x%04x",
                          dtypes[dt].name, op_names[ops[k]], x[i], d[i]);
        }
    }
    free(x);
    free(c);
    free(d);
}
END_TEST

/* --- NaN, infinities, signed zeros ---------------------------------------- */

static const tally_dtype_t float_dtypes[] = {TALLY_FLOAT16, TALLY_BFLOAT16, TALLY_FLOAT32,
                                             TALLY_FLOAT64};

/* x op y for n elements, as doubles, through the library, in both orders. */
static void reduce2(tally_dtype_t dt, tally_op_t op, double x, double y, double out[2])
{
    enum { N = 37 };
    unsigned char a[N * 8], b[N * 8], d[N * 8];
    const size_t es = dtypes[dt].size;
    for (size_t i = 0; i < N; i++) {
        put_float(dt, a + i * es, x);
        put_float(dt, b + i * es, y);
    }
    for (int order = 0; order < 2; order++) {
        tally_reduce(d, order ? b : a, order ? a : b, N, dt, op);
        out[order] = get_float(dt, d);
        for (size_t i = 1; i < N; i++)
            EXPECT(memcmp(d + i * es, d, es) == 0, "%s %s: element %zu differs",
                   dtypes[dt].name, op_names[op], i);
    }
}

START_TEST(test_nan_inf_zero)
{
    const tally_dtype_t dt = float_dtypes[_i];
    const tally_op_t nan_ops[] = {TALLY_SUM, TALLY_PROD, TALLY_MIN, TALLY_MAX};
    double r[2];
    for (int k = 0; k < 4; k++) {
        const double others[] = {1.0, -2.0, 0.0, INFINITY, -INFINITY, NAN};
        for (int j = 0; j < 6; j++) {
            reduce2(dt, nan_ops[k], NAN, others[j], r);
            EXPECT(isnan(r[0]) && isnan(r[1]), "%s %s(NaN, %g) = %g, %g",
                          dtypes[dt].name, op_names[nan_ops[k]], others[j], r[0], r[1]);
        }
    }
    reduce2(dt, TALLY_SUM, INFINITY, 1.0, r);
    ck_assert(r[0] == INFINITY && r[1] == INFINITY);
    reduce2(dt, TALLY_SUM, INFINITY, -INFINITY, r);
    ck_assert(isnan(r[0]) && isnan(r[1]));
    reduce2(dt, TALLY_PROD, INFINITY, 0.0, r);
    ck_assert(isnan(r[0]) && isnan(r[1]));
    reduce2(dt, TALLY_PROD, -INFINITY, 2.0, r);
    ck_assert(r[0] == -INFINITY && r[1] == -INFINITY);
    reduce2(dt, TALLY_MIN, -INFINITY, 3.0, r);
    ck_assert(r[0] == -INFINITY && r[1] == -INFINITY);
    reduce2(dt, TALLY_MAX, INFINITY, -3.0, r);
    ck_assert(r[0] == INFINITY && r[1] == INFINITY);
    reduce2(dt, TALLY_MIN, 2.0, -3.0, r);
    ck_assert(r[0] == -3.0 && r[1] == -3.0);
    reduce2(dt, TALLY_MAX, 2.0, -3.0, r);
    ck_assert(r[0] == 2.0 && r[1] == 2.0);
    /* Signed zeros survive the conversions and the arithmetic. */
    reduce2(dt, TALLY_SUM, -0.0, -0.0, r);
    ck_assert(r[0] == 0 && signbit(r[0]) && signbit(r[1]));
    reduce2(dt, TALLY_SUM, -0.0, 0.0, r);
    ck_assert(r[0] == 0 && !signbit(r[0]) && !signbit(r[1]));
    reduce2(dt, TALLY_PROD, -0.0, 5.0, r);
    ck_assert(r[0] == 0 && signbit(r[0]) && signbit(r[1]));
    reduce2(dt, TALLY_SUM, 1.0, -1.0, r);
    ck_assert(r[0] == 0 && !signbit(r[0]) && !signbit(r[1]));
    /* Overflow rounds to inf in the narrow types, not before. */
    const double big = dt == TALLY_FLOAT16 ? 65504.0
                     : dt == TALLY_BFLOAT16 ? BF16_MAX
                     : dt == TALLY_FLOAT32 ? FLT_MAX : DBL_MAX;
    reduce2(dt, TALLY_SUM, big, big, r);
    ck_assert(r[0] == INFINITY && r[1] == INFINITY);
    reduce2(dt, TALLY_SUM, -big, -big, r);
    ck_assert(r[0] == -INFINITY && r[1] == -INFINITY);
    reduce2(dt, TALLY_PROD, big, 0.5, r);
    ck_assert(r[0] == big / 2 && r[1] == big / 2);
}
END_TEST

/* --- AVG's division ------------------------------------------------------- */

START_TEST(test_divide_values)
{
    float f[9];
    double g[9];
    uint16_t h[9], bf[9];
    for (int i = 0; i < 9; i++) {
        f[i] = 7.0f;
        g[i] = 7.0;
        h[i] = 0x4700;  /* 7 */
        bf[i] = 0x40e0; /* 7 */
    }
    tally_reduce_divide(f, 9, TALLY_FLOAT32, 2);
    tally_reduce_divide(g, 9, TALLY_FLOAT64, 2);
    tally_reduce_divide(h, 9, TALLY_FLOAT16, 2);
    tally_reduce_divide(bf, 9, TALLY_BFLOAT16, 2);
    for (int i = 0; i < 9; i++) {
        ck_assert(f[i] == 3.5f && g[i] == 3.5);
        ck_assert_uint_eq(h[i], 0x4300);
        ck_assert_uint_eq(bf[i], 0x4060);
        f[i] = 1.0f;
        g[i] = 1.0;
        h[i] = 0x3c00;
        bf[i] = 0x3f80;
    }
    tally_reduce_divide(f, 9, TALLY_FLOAT32, 3);
    tally_reduce_divide(g, 9, TALLY_FLOAT64, 3);
    tally_reduce_divide(h, 9, TALLY_FLOAT16, 3);
    tally_reduce_divide(bf, 9, TALLY_BFLOAT16, 3);
    for (int i = 0; i < 9; i++) {
        ck_assert(f[i] == 1.0f / 3.0f && g[i] == 1.0 / 3.0);
        ck_assert_uint_eq(h[i], 0x3555);  /* 0.333251953125, rounded down */
        ck_assert_uint_eq(bf[i], 0x3eab); /* 0.333984375, rounded up */
    }
    /* Special values and integer dtypes left alone. */
    double s[4] = {NAN, INFINITY, -0.0, 1.0};
    tally_reduce_divide(s, 4, TALLY_FLOAT64, 4);
    ck_assert(isnan(s[0]) && s[1] == INFINITY && s[2] == 0 && signbit(s[2]) && s[3] == 0.25);
    int32_t ints[5] = {7, -7, 1, 0, 100};
    const int32_t ints_before[5] = {7, -7, 1, 0, 100};
    tally_reduce_divide(ints, 5, TALLY_INT32, 2);
    ck_assert_mem_eq(ints, ints_before, sizeof ints);
    tally_reduce_divide(NULL, 0, TALLY_FLOAT32, 2);
}
END_TEST

/* Random data against buf[i] / divisor rounded once (double rounding from
 * double is innocuous: 53 >= 2p + 2 for every floating dtype here). */
START_TEST(test_divide_random)
{
    const tally_dtype_t dt = float_dtypes[_i];
    const size_t n = 1001, es = dtypes[dt].size;
    unsigned char *buf = malloc(n * es), *orig = malloc(n * es);
    ck_assert(buf && orig);
    rng_state = 1234 + (uint64_t)_i;
    for (int divisor = 1; divisor <= 9; divisor++) {
        fill(dt, orig, n);
        memcpy(buf, orig, n * es);
        tally_reduce_divide(buf, n, dt, divisor);
        for (size_t i = 0; i < n; i++) {
            unsigned char want[8];
            put_float(dt, want, get_float(dt, orig + i * es) / divisor);
            EXPECT(same_result(dt, TALLY_SUM, want, buf + i * es),
                          "%s: 0x%llx / %d gave 0x%llx, want 0x%llx", dtypes[dt].name,
                          (unsigned long long)get_bits(dt, orig + i * es), divisor,
                          (unsigned long long)get_bits(dt, buf + i * es),
                          (unsigned long long)get_bits(dt, want));
        }
    }
    free(buf);
    free(orig);
}
END_TEST

/* --- the self-check of the reference -------------------------------------- */

/* round_to_format() agrees with GCC's _Float16 on the binary16 grid, so the
 * bfloat16 reference built on it can be trusted. */
START_TEST(test_reference_rounding)
{
    rng_state = 99;
    for (int i = 0; i < 200000; i++) {
        uint64_t r = rng();
        double v;
        memcpy(&v, &r, 8);
        int e;
        v = ldexp(frexp(v, &e), (int)(r % 60) - 40); /* binary16's range and beyond */
        if (isnan(v))
            continue;
        const double want = ref_from_half(ref_to_half(v));
        const double got = round_to_format(v, 11, -24, 65504.0);
        EXPECT(got == want && signbit(got) == signbit(want), "%a: %a vs %a", v, got,
                      want);
    }
}
END_TEST

static Suite *reduce_suite(void)
{
    Suite *s = suite_create("reduce");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_reduce_all, 0, NDTYPES * NOPS * NVARIANTS);
    tcase_add_loop_test(tc, test_avg_is_sum, 0, NDTYPES);
    tcase_add_test(tc, test_int_wraps);
    tcase_add_test(tc, test_bitwise_logical);
    tcase_add_loop_test(tc, test_nan_inf_zero, 0, 4);
    tcase_add_test(tc, test_divide_values);
    tcase_add_loop_test(tc, test_divide_random, 0, 4);
    suite_add_tcase(s, tc);

    TCase *conv = tcase_create("conversions");
    tcase_set_timeout(conv, 60);
    tcase_add_test(conv, test_reference_rounding);
    tcase_add_test(conv, test_half_roundtrip);
    tcase_add_test(conv, test_half_from_float);
    tcase_add_test(conv, test_bf16_roundtrip);
    tcase_add_test(conv, test_bf16_from_float);
    tcase_add_loop_test(conv, test_every_16bit_pattern_in_loops, 0, 2);
    suite_add_tcase(s, conv);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reduce_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
