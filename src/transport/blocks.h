/* blocks.h - cutting count elements into nblocks contiguous blocks whose
 * sizes differ by at most one, the larger ones first: the split every
 * algorithm and the window layout use, so that all agree on it. */
#ifndef TALLY_BLOCKS_H
#define TALLY_BLOCKS_H

#include <stddef.h>

static inline size_t tally_block_count(size_t count, size_t nblocks, size_t block)
{
    return count / nblocks + (block < count % nblocks ? 1 : 0);
}

static inline size_t tally_block_offset(size_t count, size_t nblocks, size_t block)
{
    size_t rem = count % nblocks;
    return block * (count / nblocks) + (block < rem ? block : rem);
}

#endif
