/* window_layout.h - where each element of a call goes in the node window's
 * rounds: pure arithmetic, the same on every rank, unit-tested without MPI.
 *
 * The vector of n elements is cut into S contiguous shards (sizes differ by
 * at most one element, the larger first).  Round r moves the r-th piece of
 * every shard (at most `piece` elements) through one window set, piece s at
 * element s * piece of the set.  Rounds are grouped into units of
 * `per_unit` consecutive rounds for the step across nodes. */
#ifndef TALLY_WINDOW_LAYOUT_H
#define TALLY_WINDOW_LAYOUT_H

#include <stddef.h>

typedef struct tally_window_layout {
    size_t n;      /* elements of the call */
    size_t shards; /* S */
    size_t piece;  /* elements of one shard per round */
    size_t es;     /* bytes per element */
} tally_window_layout_t;

/* The layout of n elements of es bytes in S shards through sets of
 * `chunk` bytes (every shard gets chunk / S bytes of a set, at least one
 * element). */
tally_window_layout_t tally_window_layout(size_t n, size_t es, size_t shards, size_t chunk);

/* First element of shard s. */
size_t tally_window_shard_offset(const tally_window_layout_t *y, size_t s);

/* Rounds needed: those of shard 0, the largest. */
size_t tally_window_rounds(const tally_window_layout_t *y);

/* Elements of shard s in round r (0 past its end); *first is where they
 * start in the vector. */
size_t tally_window_piece(const tally_window_layout_t *y, size_t s, size_t r, size_t *first);

/* Elements of shard s in rounds [r0, r1) (0 past its end); *first as above. */
size_t tally_window_span(const tally_window_layout_t *y, size_t s, size_t r0, size_t r1,
                         size_t *first);

/* Units of at most `max_units` of `rounds` rounds: rounds per unit, and the
 * rounds [*r0, *r1) of unit u. */
size_t tally_window_per_unit(size_t rounds, size_t max_units);
size_t tally_window_units(size_t rounds, size_t per_unit);
void tally_window_unit_rounds(size_t rounds, size_t per_unit, size_t u, size_t *r0,
                              size_t *r1);

#endif
