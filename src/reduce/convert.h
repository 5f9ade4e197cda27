/* convert.h - float <-> binary16 and bfloat16, inline and branch-free so
 * that loops over them vectorize (reduce.c, the codecs).  Round to nearest
 * even; NaN stays NaN (quieted), infinities and signed zeros are kept. */
#ifndef TALLY_CONVERT_H
#define TALLY_CONVERT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The CUDA kernels (src/cuda/kernels.cu) use the same conversions, so that
 * device and host results are the same bits, NaNs included. */
#ifdef __CUDACC__
#define TALLY_CVT static inline __host__ __device__
#else
#define TALLY_CVT static inline
#endif

TALLY_CVT uint32_t tally_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

TALLY_CVT float tally_bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Branch-free binary16 -> float (after Maratyszcza's FP16 library): let the
 * FPU rebias the exponent with one multiply instead of testing cases. */
TALLY_CVT float tally_cvt_half_to_float(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t body = w << 1; /* exponent and mantissa, sign dropped */
    /* Normal, inf, NaN: place exponent+mantissa in float position, add 224 to
     * the exponent (so 31 -> 255 keeps inf/NaN), then scale by 2^-112 to net
     * +112 = 127 - 15.  The multiply also quiets a signalling NaN. */
    const float normal = tally_bits_float((body >> 4) + (224u << 23)) * 0x1p-112f;
    /* Subnormal (and zero): the mantissa m becomes 0.5 + m * 2^-24 (exponent
     * 126, mantissa in the low bits), minus 0.5 leaves m * 2^-24 exactly. */
    const float subnormal = tally_bits_float((body >> 17) | (126u << 23)) - 0.5f;
    const uint32_t mag = body < (1u << 27) ? tally_float_bits(subnormal) : tally_float_bits(normal);
    return tally_bits_float(sign | mag);
}

/* Branch-free float -> binary16, round to nearest even (after Maratyszcza's
 * FP16 library): the FPU's own rounding does the work.  Adding a power of two
 * chosen from f's exponent pushes exactly the bits binary16 cannot hold off
 * the end of the float mantissa, rounding them to nearest even; the sum's
 * low bits then hold the binary16 exponent and mantissa. */
TALLY_CVT uint16_t tally_cvt_float_to_half(float f)
{
    /* |f| * 2^112 is inf for |f| >= 2^16, beyond binary16's range; the
     * second multiply brings the rest back (net * 4, always exact). */
    float base = (fabsf(f) * 0x1p112f) * 0x1p-110f;
    const uint32_t w = tally_float_bits(f);
    const uint32_t body = w << 1;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = body & 0xff000000u; /* f's exponent, times 2 */
    if (bias < 0x71000000u)             /* below binary16's normal range: */
        bias = 0x71000000u;             /* round at the subnormal quantum */
    base = tally_bits_float((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = tally_float_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x7c00u;
    /* Bits 10-11 of the mantissa (implicit bit, rounding carry) add into
     * the exponent. */
    const uint32_t mant_bits = bits & 0x0fffu;
    const uint32_t nonsign = exp_bits + mant_bits;
    /* NaN in, quiet NaN out (payload not kept). */
    return (uint16_t)((sign >> 16) | (body > 0xff000000u ? 0x7e00u : nonsign));
}

TALLY_CVT float tally_cvt_bf16_to_float(uint16_t b)
{
    return tally_bits_float((uint32_t)b << 16);
}

/* Round to nearest even: add just under half an ulp, plus one if the kept
 * lowest bit is odd, then truncate.  Overflow carries into inf correctly.
 * NaN would round into inf, so it is kept NaN (quiet bit set) instead. */
TALLY_CVT uint16_t tally_cvt_float_to_bf16(float f)
{
    const uint32_t u = tally_float_bits(f);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

#endif
