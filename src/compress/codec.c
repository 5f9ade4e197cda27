/* codec.c - the codec table and the element-wise codecs: fp16, bf16,
 * int8, sign and top-k (PowerSGD's arithmetic is in powersgd.c).
 *
 * Payloads (little-endian, as the hosts of one job are):
 *   fp16, bf16  count 16-bit values
 *   int8        per chunk of TALLY_CODEC_CHUNK elements: float scale s,
 *               then one int8 q per element, -127..127; value q * s
 *   sign        per chunk: float scale s (mean |x|), then one bit per
 *               element (1: negative), padding bits 0; value +-s
 *   topk        uint32 n, then n uint32 indices (increasing, < count) and
 *               n float values; n = UINT32_MAX: count floats (dense, when
 *               that is smaller)
 * Values that are not finite: fp16, bf16 and topk carry inf and NaN as
 * they are (fp16 and bf16 saturate finite values at their largest instead
 * of rounding them to inf); an int8 or sign chunk holding inf or NaN gets the scale
 * NaN and decodes as NaN throughout, so a non-finite gradient is never
 * hidden. */
#include "codec.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../reduce/convert.h"

#define NAN_SCALE_BITS 0x7fc00000u
#define BF16_MAX 0x1.fep127f /* 0x7f7f */
#define TOPK_DENSE UINT32_MAX

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t chunks_of(size_t count)
{
    return (count + TALLY_CODEC_CHUNK - 1) / TALLY_CODEC_CHUNK;
}

/* A scale as it travels: finite and >= 0, or the NaN marker. */
static bool scale_ok(float s)
{
    uint32_t bits;
    memcpy(&bits, &s, sizeof bits);
    return bits == NAN_SCALE_BITS || (isfinite(s) && s >= 0.0f);
}

/* A payload of chunks, each a float scale and a body of body(n) bytes for
 * its n elements (int8, sign): whether every scale travels as it may and
 * every body passes body_ok.  Decoders check everything before they write
 * anything. */
static bool scaled_payload_ok(const unsigned char *p, size_t count, size_t (*body)(size_t n),
                              bool (*body_ok)(const unsigned char *b, size_t n))
{
    for (size_t at = 0; at < count; at += TALLY_CODEC_CHUNK) {
        const size_t n = min_size(TALLY_CODEC_CHUNK, count - at);
        float s;
        memcpy(&s, p, sizeof s);
        if (!scale_ok(s) || !body_ok(p + sizeof s, n))
            return false;
        p += sizeof s + body(n);
    }
    return true;
}

/* --- fp16 and bf16 ----------------------------------------------------------- */

static size_t half_bound(size_t count, const tally_codec_spec_t *spec)
{
    (void)spec;
    return 2 * count;
}

static size_t fp16_encode(const float *restrict x, size_t count, void *out,
                          const tally_codec_ctx_t *ctx)
{
    (void)ctx;
    uint16_t *restrict h = out;
    for (size_t i = 0; i < count; i++) {
        /* Saturate finite values: a large gradient must not become inf
         * (inf and NaN pass unchanged). */
        float v = x[i];
        v = v > 65504.0f && v <= FLT_MAX ? 65504.0f : v;
        v = v < -65504.0f && v >= -FLT_MAX ? -65504.0f : v;
        h[i] = tally_cvt_float_to_half(v);
    }
    return 2 * count;
}

static tally_status_t fp16_decode(const void *in, size_t bytes, size_t count, float alpha,
                                  float *acc, bool add)
{
    if (bytes != 2 * count)
        return TALLY_ERR_CORRUPT_PAYLOAD;
    const uint16_t *restrict h = in;
    float *restrict a = acc;
    for (size_t i = 0; i < count; i++)
        a[i] = (add ? a[i] : 0.0f) + alpha * tally_cvt_half_to_float(h[i]);
    return TALLY_SUCCESS;
}

static size_t bf16_encode(const float *restrict x, size_t count, void *out,
                          const tally_codec_ctx_t *ctx)
{
    (void)ctx;
    uint16_t *restrict h = out;
    for (size_t i = 0; i < count; i++) {
        /* Saturate finite values at bfloat16's largest, as fp16 does. */
        float v = x[i];
        v = v > BF16_MAX && v <= FLT_MAX ? BF16_MAX : v;
        v = v < -BF16_MAX && v >= -FLT_MAX ? -BF16_MAX : v;
        h[i] = tally_cvt_float_to_bf16(v);
    }
    return 2 * count;
}

static tally_status_t bf16_decode(const void *in, size_t bytes, size_t count, float alpha,
                                  float *acc, bool add)
{
    if (bytes != 2 * count)
        return TALLY_ERR_CORRUPT_PAYLOAD;
    const uint16_t *restrict h = in;
    float *restrict a = acc;
    for (size_t i = 0; i < count; i++)
        a[i] = (add ? a[i] : 0.0f) + alpha * tally_cvt_bf16_to_float(h[i]);
    return TALLY_SUCCESS;
}

/* --- int8 with stochastic rounding --------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* max |x| of a chunk, or NaN when the chunk holds inf or NaN. */
static float chunk_absmax(const float *x, size_t n)
{
    float m = 0.0f;
    bool finite = true;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        finite &= a <= 3.4028235e38f; /* false for inf and NaN */
        m = a > m ? a : m;
    }
    return finite ? m : NAN;
}

static float nan_scale(void)
{
    uint32_t bits = NAN_SCALE_BITS;
    float s;
    memcpy(&s, &bits, sizeof s);
    return s;
}

/* lowbias32 (Chris Wellons): a 32-bit integer hash with good avalanche. */
static inline uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* q[i] = floor(x[i] * 127 / m + u), u uniform in [0, 1): unbiased
 * stochastic rounding, clamped to -127..127 (m = max |x| > 0, finite). */
static void round_chunk(const float *restrict x, size_t n, float m, uint32_t key,
                        signed char *restrict q)
{
    /* 127 / m overflows for m below about 4e-37: scale x up first, by a
     * power of two (exact). */
    const float pre = m < 1e-30f ? 0x1p100f : 1.0f;
    const float inv = 127.0f / (m * pre);
    for (size_t i = 0; i < n; i++) {
        const float u = (float)(hash32(key + (uint32_t)i) >> 8) * (1.0f / 16777216.0f);
        /* |x * inv| <= 127, so y + 128 >= 0 and truncation is floor
         * (floorf is a library call without SSE4.1). */
        float y = (x[i] * pre) * inv + u + 128.0f;
        y = y > 255.0f ? 255.0f : y;
        y = y < 1.0f ? 1.0f : y;
        q[i] = (signed char)((int)y - 128);
    }
}

static size_t int8_bound(size_t count, const tally_codec_spec_t *spec)
{
    (void)spec;
    return chunks_of(count) * sizeof(float) + count;
}

static size_t int8_encode(const float *x, size_t count, void *out, const tally_codec_ctx_t *ctx)
{
    unsigned char *p = out;
    for (size_t c = 0, at = 0; at < count; c++, at += TALLY_CODEC_CHUNK) {
        const size_t n = min_size(TALLY_CODEC_CHUNK, count - at);
        const float m = chunk_absmax(x + at, n);
        const float s = isnan(m) ? nan_scale() : m / 127.0f;
        memcpy(p, &s, sizeof s);
        signed char *q = (signed char *)(p + sizeof s);
        if (isnan(m) || m == 0.0f) {
            memset(q, 0, n);
        } else {
            /* A counter-based draw per element, reproducible from (seed,
             * stream, chunk) and independent of the loop's vector width. */
            const uint32_t key = (uint32_t)splitmix64(ctx->spec->seed ^ splitmix64(ctx->stream + c));
            round_chunk(x + at, n, m, key, q);
        }
        p += sizeof s + n;
    }
    return (size_t)(p - (unsigned char *)out);
}

static size_t int8_body(size_t n)
{
    return n;
}

/* -128 has no place: the encoder clamps to -127..127. */
static bool int8_body_ok(const unsigned char *b, size_t n)
{
    const signed char *q = (const signed char *)b;
    for (size_t i = 0; i < n; i++)
        if (q[i] == -128)
            return false;
    return true;
}

static tally_status_t int8_decode(const void *in, size_t bytes, size_t count, float alpha,
                                  float *acc, bool add)
{
    if (bytes != int8_bound(count, NULL) || !scaled_payload_ok(in, count, int8_body, int8_body_ok))
        return TALLY_ERR_CORRUPT_PAYLOAD;
    const unsigned char *p = in;
    for (size_t at = 0; at < count; at += TALLY_CODEC_CHUNK) {
        const size_t n = min_size(TALLY_CODEC_CHUNK, count - at);
        float s;
        memcpy(&s, p, sizeof s);
        const signed char *restrict q = (const signed char *)(p + sizeof s);
        float *restrict a = acc + at;
        const float as = alpha * s;
        for (size_t i = 0; i < n; i++)
            a[i] = (add ? a[i] : 0.0f) + as * (float)q[i];
        p += sizeof s + n;
    }
    return TALLY_SUCCESS;
}

/* --- sign: one bit per element and a scale per chunk ---------------------------- */

static size_t sign_bound(size_t count, const tally_codec_spec_t *spec)
{
    (void)spec;
    size_t full = count / TALLY_CODEC_CHUNK, rest = count % TALLY_CODEC_CHUNK;
    return full * (sizeof(float) + TALLY_CODEC_CHUNK / 8) +
           (rest ? sizeof(float) + (rest + 7) / 8 : 0);
}

/* The mean of |x|: each term divided by n first, so no sum overflows;
 * eight fixed lanes, then the lanes in order, the same bits at every
 * vector width. */
static float abs_mean(const float *restrict x, size_t n, bool *finite)
{
    float lane[8] = {0};
    const float inv = 1.0f / (float)n;
    bool ok = true;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const float a = fabsf(x[i + j]);
            ok &= a <= FLT_MAX;
            lane[j] += a * inv;
        }
    for (; i < n; i++) {
        const float a = fabsf(x[i]);
        ok &= a <= FLT_MAX;
        lane[0] += a * inv;
    }
    *finite = ok;
    float sum = 0.0f;
    for (int j = 0; j < 8; j++)
        sum += lane[j];
    return sum < FLT_MAX ? sum : FLT_MAX; /* rounding could step past it */
}

static size_t sign_encode(const float *x, size_t count, void *out, const tally_codec_ctx_t *ctx)
{
    (void)ctx;
    unsigned char *p = out;
    for (size_t at = 0; at < count; at += TALLY_CODEC_CHUNK) {
        const size_t n = min_size(TALLY_CODEC_CHUNK, count - at);
        bool finite;
        const float mean = abs_mean(x + at, n, &finite);
        /* The mean magnitude keeps the chunk's L1 norm (EF-signSGD). */
        const float s = finite ? mean : nan_scale();
        memcpy(p, &s, sizeof s);
        unsigned char *bits = p + sizeof s;
        const uint32_t *w = (const uint32_t *)(const void *)(x + at);
        for (size_t b = 0; b < n / 8; b++) {
            unsigned v = 0;
            for (unsigned j = 0; j < 8; j++)
                v |= (w[8 * b + j] >> 31) << j;
            bits[b] = (unsigned char)v;
        }
        if (n % 8) {
            unsigned v = 0;
            for (size_t j = 0; j < n % 8; j++)
                v |= (w[n / 8 * 8 + j] >> 31) << j;
            bits[n / 8] = (unsigned char)v;
        }
        p += sizeof s + (n + 7) / 8;
    }
    return (size_t)(p - (unsigned char *)out);
}

static size_t sign_body(size_t n)
{
    return (n + 7) / 8;
}

/* The padding bits of the last byte are zero. */
static bool sign_body_ok(const unsigned char *b, size_t n)
{
    return n % 8 == 0 || (b[n / 8] >> (n % 8)) == 0;
}

static tally_status_t sign_decode(const void *in, size_t bytes, size_t count, float alpha,
                                  float *acc, bool add)
{
    if (bytes != sign_bound(count, NULL) || !scaled_payload_ok(in, count, sign_body, sign_body_ok))
        return TALLY_ERR_CORRUPT_PAYLOAD;
    const unsigned char *p = in;
    for (size_t at = 0; at < count; at += TALLY_CODEC_CHUNK) {
        const size_t n = min_size(TALLY_CODEC_CHUNK, count - at);
        float s;
        memcpy(&s, p, sizeof s);
        const unsigned char *restrict bits = p + sizeof s;
        float *restrict a = acc + at;
        const float pos = alpha * s;
        /* +pos or -pos: flip the sign bit of pos where the bit is set. */
        const uint32_t pos_bits = tally_float_bits(pos);
        for (size_t i = 0; i < n; i++) {
            const uint32_t flip = (uint32_t)((bits[i >> 3] >> (i & 7)) & 1u) << 31;
            a[i] = (add ? a[i] : 0.0f) + tally_bits_float(pos_bits ^ flip);
        }
        p += sizeof s + (n + 7) / 8;
    }
    return TALLY_SUCCESS;
}

/* --- top-k by threshold selection ------------------------------------------------ */

static size_t topk_keep(size_t count, const tally_codec_spec_t *spec)
{
    if (count == 0)
        return 0;
    double k = ceil(spec->ratio * (double)count);
    return k < 1.0 ? 1 : k > (double)count ? count : (size_t)k;
}

static size_t topk_bound(size_t count, const tally_codec_spec_t *spec)
{
    size_t k = topk_keep(count, spec);
    return sizeof(uint32_t) + min_size(k * 8, count * sizeof(float));
}

/* |x| as an ordered key: the bits of a non-negative float order as the
 * values do, and NaN sorts above inf (kept first: it must be seen). */
static uint32_t magnitude_key(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits & 0x7fffffffu;
}

/* The key of the k-th largest magnitude (1 <= k <= count), by radix
 * selection on 11, 11 and 10 bits: linear, no sort. */
static uint32_t kth_key(const float *x, size_t count, size_t k)
{
    static const int shift[3] = {21, 10, 0};
    static const uint32_t width[3] = {2048, 2048, 1024};
    uint32_t prefix = 0, prefix_mask = 0;
    size_t need = k;
    for (int pass = 0; pass < 3; pass++) {
        size_t hist[2048] = {0};
        for (size_t i = 0; i < count; i++) {
            uint32_t key = magnitude_key(x[i]);
            if ((key & prefix_mask) == prefix)
                hist[(key >> shift[pass]) & (width[pass] - 1)]++;
        }
        uint32_t b = width[pass];
        while (b-- > 0) {
            if (hist[b] >= need)
                break;
            need -= hist[b];
        }
        prefix |= b << shift[pass];
        prefix_mask |= (width[pass] - 1) << shift[pass];
    }
    return prefix;
}

/* Writes the k largest magnitudes of x (k < count) as increasing indices
 * and their values: every key above the k-th largest key t, then keys
 * equal to t in index order until k.  idx/val may hold candidates only
 * (cand_idx: their positions in x, NULL when x is all of them). */
static void topk_emit(const float *x, const uint32_t *cand_idx, size_t n, size_t k, uint32_t t,
                      uint32_t *idx, float *val)
{
    size_t above = 0;
    for (size_t i = 0; i < n; i++)
        above += magnitude_key(x[i]) > t;
    size_t ties = k - above, j = 0;
    for (size_t i = 0; i < n && j < k; i++) {
        const uint32_t key = magnitude_key(x[i]);
        if (key > t || (key == t && ties > 0)) {
            ties -= key == t;
            idx[j] = cand_idx ? cand_idx[i] : (uint32_t)i;
            val[j] = x[i];
            j++;
        }
    }
}

/* The threshold from a strided sample, a little low, then one pass that
 * counts the keys above and at it and keeps those at or above it (the
 * candidates, up to a cap):
 *   fewer than k at or above: the guess was too high (false: the caller
 *     selects exactly);
 *   fewer than k above: the k-th largest key is the guess itself (ties,
 *     such as the zeros of a sparse gradient);
 *   otherwise it is above the guess, so among the candidates.
 * Two passes over x instead of the radix selection's four. */
static bool topk_sampled(const float *x, size_t count, size_t k, uint32_t *idx, float *val)
{
    enum { SAMPLE_MAX = 16384, STRIDE_MIN = 8 };
    float sample[SAMPLE_MAX];
    const size_t m = count / STRIDE_MIN < SAMPLE_MAX ? count / STRIDE_MIN : SAMPLE_MAX;
    if (m < 1024)
        return false;
    const size_t stride = count / m;
    for (size_t i = 0; i < m; i++)
        sample[i] = x[i * stride];
    size_t r = (size_t)((double)k / (double)count * (double)m * 1.25) + 16;
    if (r >= m)
        return false;
    const uint32_t guess = kth_key(sample, m, r);
    /* Expected about count r / m = 1.25 k + 16 stride: room for half as many again. */
    const size_t cap = 2 * k + 32 * stride + 4096;
    uint32_t *cand_idx = malloc(cap * sizeof *cand_idx);
    float *cand_val = malloc(cap * sizeof *cand_val);
    bool ok = cand_idx && cand_val;
    size_t above = 0, at_or_above = 0;
    for (size_t i = 0; ok && i < count; i++) {
        const uint32_t key = magnitude_key(x[i]);
        if (key >= guess) {
            if (at_or_above < cap) {
                cand_idx[at_or_above] = (uint32_t)i;
                cand_val[at_or_above] = x[i];
            }
            at_or_above++;
            above += key > guess;
        }
    }
    if (!ok || at_or_above < k) {
        ok = false;
    } else if (above < k) {
        topk_emit(x, NULL, count, k, guess, idx, val);
    } else if (at_or_above <= cap) {
        topk_emit(cand_val, cand_idx, at_or_above, k, kth_key(cand_val, at_or_above, k), idx,
                  val);
    } else {
        ok = false;
    }
    free(cand_idx);
    free(cand_val);
    return ok;
}

static size_t topk_encode(const float *x, size_t count, void *out, const tally_codec_ctx_t *ctx)
{
    unsigned char *p = out;
    const size_t k = topk_keep(count, ctx->spec);
    if (k * 8 >= count * sizeof(float)) {
        uint32_t dense = TOPK_DENSE;
        memcpy(p, &dense, sizeof dense);
        memcpy(p + sizeof dense, x, count * sizeof(float));
        return sizeof dense + count * sizeof(float);
    }
    uint32_t n = (uint32_t)k;
    memcpy(p, &n, sizeof n);
    uint32_t *idx = (uint32_t *)(void *)(p + sizeof n);
    float *val = (float *)(void *)(p + sizeof n + k * sizeof(uint32_t));
    if (k > 0 && !topk_sampled(x, count, k, idx, val))
        topk_emit(x, NULL, count, k, kth_key(x, count, k), idx, val);
    return sizeof n + k * 8;
}

static tally_status_t topk_decode(const void *in, size_t bytes, size_t count, float alpha,
                                  float *acc, bool add)
{
    const unsigned char *p = in;
    uint32_t n;
    if (bytes < sizeof n)
        return TALLY_ERR_CORRUPT_PAYLOAD;
    memcpy(&n, p, sizeof n);
    if (n == TOPK_DENSE) {
        if (bytes != sizeof n + count * sizeof(float))
            return TALLY_ERR_CORRUPT_PAYLOAD;
        for (size_t i = 0; i < count; i++) {
            float v;
            memcpy(&v, p + sizeof n + i * sizeof v, sizeof v);
            acc[i] = (add ? acc[i] : 0.0f) + alpha * v;
        }
        return TALLY_SUCCESS;
    }
    if (n > count || bytes != sizeof n + (size_t)n * 8)
        return TALLY_ERR_CORRUPT_PAYLOAD;
    const unsigned char *ip = p + sizeof n, *vp = ip + (size_t)n * sizeof(uint32_t);
    uint32_t last = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i;
        memcpy(&i, ip + (size_t)j * sizeof i, sizeof i);
        if (i >= count || (j > 0 && i <= last))
            return TALLY_ERR_CORRUPT_PAYLOAD;
        last = i;
    }
    if (!add)
        memset(acc, 0, count * sizeof *acc);
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i;
        float v;
        memcpy(&i, ip + (size_t)j * sizeof i, sizeof i);
        memcpy(&v, vp + (size_t)j * sizeof v, sizeof v);
        acc[i] += alpha * v;
    }
    return TALLY_SUCCESS;
}

/* --- the table ------------------------------------------------------------------- */

/* Rates: GB/s of float input on one core, as make bench-codec measures them
 * on a typical x86 server (the cost model's figures; top-k's at RATIO
 * 0.01, its decode per input byte of the dense vector). */
#define GBPS 1e9

static const tally_codec_t codecs[] = {
    {"none", "no compression: the exact allreduce", TALLY_CODEC_NONE, NULL, NULL, NULL, NULL,
     true, 0.0, 0.0},
    {"fp16", "IEEE half precision, finite values saturated at +-65504", TALLY_CODEC_DENSE, NULL,
     half_bound, fp16_encode, fp16_decode, true, 3.0 * GBPS, 8.0 * GBPS},
    {"bf16", "bfloat16 (float's exponent, 8 bits of mantissa), finite values saturated",
     TALLY_CODEC_DENSE, NULL,
     half_bound, bf16_encode, bf16_decode, true, 10.0 * GBPS, 15.0 * GBPS},
    {"int8", "8 bits with stochastic rounding, a scale per 1024 elements", TALLY_CODEC_DENSE,
     NULL, int8_bound, int8_encode, int8_decode, false, 2.0 * GBPS, 7.0 * GBPS},
    {"sign", "1 bit (the sign) per element, the mean magnitude per 1024", TALLY_CODEC_DENSE,
     NULL, sign_bound, sign_encode, sign_decode, false, 5.0 * GBPS, 5.0 * GBPS},
    {"topk", "the largest RATIO of the elements by magnitude, as (index, value)",
     TALLY_CODEC_SPARSE, "RATIO", topk_bound, topk_encode, topk_decode, false, 3.5 * GBPS,
     40.0 * GBPS},
    {"powersgd", "rank-RANK factors P and Q of the tensor viewed as a matrix",
     TALLY_CODEC_LOW_RANK, "RANK", NULL, NULL, NULL, false, 1.0 * GBPS, 1.0 * GBPS},
};

const tally_codec_t *tally_codec_find(const char *name)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (strcmp(codecs[i].name, name) == 0)
            return &codecs[i];
    return NULL;
}

const tally_codec_t *tally_codec_at(size_t i)
{
    return i < sizeof codecs / sizeof codecs[0] ? &codecs[i] : NULL;
}
