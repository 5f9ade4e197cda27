/* powersgd.h - PowerSGD's arithmetic (Vogels et al., NeurIPS'19): a
 * vector of count floats is viewed as a rows x cols matrix M, row-major,
 * zero-padded at the end; one power-iteration step with the previous Q
 * (cols x rank) gives P = M Q (rows x rank), orthonormalised, and Q = M^T P.
 * The caller allreduces P and Q between these steps (algo/compressed.c);
 * everything here is deterministic, so ranks holding the same P and Q
 * compute the same bits.  Matrices are row-major: P[i * rank + j]. */
#ifndef TALLY_POWERSGD_H
#define TALLY_POWERSGD_H

#include <stddef.h>
#include <stdint.h>

/* The matrix for count elements: cols columns (the spec's, else about
 * sqrt(count)), rows = ceil(count / cols). */
void tally_powersgd_shape(size_t count, size_t spec_cols, size_t *rows, size_t *cols);

/* Q's first value: uniform in [-1, 1) from seed, the same on every rank. */
void tally_powersgd_init_q(float *q, size_t cols, unsigned rank, uint64_t seed);

/* p = M q. */
void tally_powersgd_project(const float *x, size_t count, size_t rows, size_t cols,
                            const float *q, unsigned rank, float *p);

/* Gram-Schmidt on p's columns, in order; a column with no length left
 * becomes zero. */
void tally_powersgd_orthonormalize(float *p, size_t rows, unsigned rank);

/* q = M^T p. */
void tally_powersgd_back(const float *x, size_t count, size_t rows, size_t cols,
                         const float *p, unsigned rank, float *q);

/* out[i] += alpha * (p q^T)[i] for i < count. */
void tally_powersgd_expand(const float *p, const float *q, size_t count, size_t cols,
                           unsigned rank, float alpha, float *out);

#endif
