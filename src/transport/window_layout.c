/* window_layout.c - the arithmetic of window_layout.h. */
#include "window_layout.h"

#include "blocks.h"

size_t tally_window_shard_offset(const tally_window_layout_t *y, size_t s)
{
    return tally_block_offset(y->n, y->shards, s);
}

tally_window_layout_t tally_window_layout(size_t n, size_t es, size_t shards, size_t chunk)
{
    tally_window_layout_t y = {n, shards, chunk / (shards * es), es};
    if (y.piece == 0)
        y.piece = 1;
    return y;
}

size_t tally_window_rounds(const tally_window_layout_t *y)
{
    return (tally_block_count(y->n, y->shards, 0) + y->piece - 1) / y->piece;
}

size_t tally_window_span(const tally_window_layout_t *y, size_t s, size_t r0, size_t r1,
                         size_t *first)
{
    const size_t shard = tally_block_count(y->n, y->shards, s), lo = r0 * y->piece;
    *first = tally_window_shard_offset(y, s) + lo;
    if (lo >= shard)
        return 0;
    return (r1 * y->piece < shard ? r1 * y->piece : shard) - lo;
}

size_t tally_window_piece(const tally_window_layout_t *y, size_t s, size_t r, size_t *first)
{
    return tally_window_span(y, s, r, r + 1, first);
}

size_t tally_window_per_unit(size_t rounds, size_t max_units)
{
    return rounds == 0 ? 1 : (rounds + max_units - 1) / max_units;
}

size_t tally_window_units(size_t rounds, size_t per_unit)
{
    return (rounds + per_unit - 1) / per_unit;
}

void tally_window_unit_rounds(size_t rounds, size_t per_unit, size_t u, size_t *r0, size_t *r1)
{
    *r0 = u * per_unit;
    *r1 = *r0 + per_unit < rounds ? *r0 + per_unit : rounds;
}
