/* powersgd.c - PowerSGD's matrix arithmetic; see powersgd.h. */
#include "powersgd.h"

#include <math.h>
#include <string.h>

void tally_powersgd_shape(size_t count, size_t spec_cols, size_t *rows, size_t *cols)
{
    size_t c = spec_cols;
    if (c == 0) {
        c = (size_t)ceil(sqrt((double)count));
        if (c == 0)
            c = 1;
    }
    *cols = c;
    *rows = (count + c - 1) / c;
}

void tally_powersgd_init_q(float *q, size_t cols, unsigned rank, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < cols * rank; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        q[i] = (float)(s >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
}

void tally_powersgd_project(const float *x, size_t count, size_t rows, size_t cols,
                            const float *q, unsigned rank, float *p)
{
    memset(p, 0, rows * rank * sizeof *p);
    for (size_t i = 0; i < rows; i++) {
        float *pi = p + i * rank;
        size_t end = (i + 1) * cols < count ? cols : count - i * cols;
        const float *xi = x + i * cols;
        for (size_t c = 0; c < end; c++) {
            const float v = xi[c];
            const float *qc = q + c * rank;
            for (unsigned j = 0; j < rank; j++)
                pi[j] += v * qc[j];
        }
    }
}

void tally_powersgd_orthonormalize(float *p, size_t rows, unsigned rank)
{
    for (unsigned j = 0; j < rank; j++) {
        for (unsigned k = 0; k < j; k++) {
            double dot = 0.0;
            for (size_t i = 0; i < rows; i++)
                dot += (double)p[i * rank + j] * p[i * rank + k];
            for (size_t i = 0; i < rows; i++)
                p[i * rank + j] -= (float)dot * p[i * rank + k];
        }
        double norm = 0.0;
        for (size_t i = 0; i < rows; i++)
            norm += (double)p[i * rank + j] * p[i * rank + j];
        norm = sqrt(norm);
        const float inv = norm > 1e-30 && isfinite(norm) ? (float)(1.0 / norm) : 0.0f;
        for (size_t i = 0; i < rows; i++)
            p[i * rank + j] *= inv;
    }
}

void tally_powersgd_back(const float *x, size_t count, size_t rows, size_t cols,
                         const float *p, unsigned rank, float *q)
{
    memset(q, 0, cols * rank * sizeof *q);
    for (size_t i = 0; i < rows; i++) {
        const float *pi = p + i * rank;
        size_t end = (i + 1) * cols < count ? cols : count - i * cols;
        const float *xi = x + i * cols;
        for (size_t c = 0; c < end; c++) {
            const float v = xi[c];
            float *qc = q + c * rank;
            for (unsigned j = 0; j < rank; j++)
                qc[j] += v * pi[j];
        }
    }
}

void tally_powersgd_expand(const float *p, const float *q, size_t count, size_t cols,
                           unsigned rank, float alpha, float *out)
{
    for (size_t e = 0; e < count; e++) {
        const float *pi = p + (e / cols) * rank, *qc = q + (e % cols) * rank;
        float s = 0.0f;
        for (unsigned j = 0; j < rank; j++)
            s += pi[j] * qc[j];
        out[e] += alpha * s;
    }
}
