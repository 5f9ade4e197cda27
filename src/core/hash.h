/* hash.h - the one hash tally uses to compare data between ranks: 64-bit
 * FNV-1a.  Not for security; equal inputs give equal hashes on every rank
 * of every machine, and a chain of calls hashes a concatenation:
 *
 *     uint64_t h = TALLY_HASH_INIT;
 *     h = tally_hash_fnv1a(h, &field, sizeof field);
 *     h = tally_hash_fnv1a(h, name, strlen(name));
 */
#ifndef TALLY_HASH_H
#define TALLY_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a offset basis and prime for 64 bits. */
#define TALLY_HASH_INIT 14695981039346656037ull
#define TALLY_HASH_PRIME 1099511628211ull

/* h, continued over len bytes of data. */
static inline uint64_t tally_hash_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ bytes[i]) * TALLY_HASH_PRIME;
    return h;
}

#endif
