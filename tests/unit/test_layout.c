/* test_layout.c - unit tests (no MPI) of the node window's layout
 * (transport/window_layout.h) and the kernel table (reduce/reduce.h): every
 * element of a call lands in exactly one piece of one round, inside its
 * set, for awkward counts, shard counts and chunk sizes; units partition
 * the rounds; the table's kernels agree with tally_reduce. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "reduce/reduce.h"
#include "transport/window_layout.h"

/* Marks every element the rounds move; each must be marked once, and each
 * piece must fit its slot of the set. */
static void check_cover(size_t n, size_t es, size_t shards, size_t chunk)
{
    tally_window_layout_t y = tally_window_layout(n, es, shards, chunk);
    ck_assert_uint_ge(y.piece, 1);
    if (chunk / (shards * es) > 0)
        ck_assert_uint_le(y.piece * shards * es, chunk);
    unsigned char *seen = calloc(n ? n : 1, 1);
    ck_assert_ptr_nonnull(seen);
    const size_t rounds = tally_window_rounds(&y);
    for (size_t r = 0; r < rounds + 1; r++) { /* one round past the end: empty */
        for (size_t s = 0; s < shards; s++) {
            size_t first, k = tally_window_piece(&y, s, r, &first);
            if (k > y.piece || (r == rounds && k != 0))
                ck_abort_msg("round %zu of shard %zu has %zu elements", r, s, k);
            /* Plain tests in the inner loop: each ck_assert writes to
             * Check's pipe, which made this test slow. */
            const size_t lo = tally_window_shard_offset(&y, s);
            const size_t hi = s + 1 < shards ? tally_window_shard_offset(&y, s + 1) : n;
            for (size_t i = 0; i < k; i++) {
                if (first + i >= n || first + i < lo || first + i >= hi || seen[first + i])
                    ck_abort_msg("element %zu of %zu misplaced (shard %zu, round %zu, "
                                 "S %zu, chunk %zu)", first + i, n, s, r, shards, chunk);
                seen[first + i] = 1;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (seen[i] != 1)
            ck_abort_msg("element %zu of %zu not moved (S %zu, chunk %zu)", i, n, shards,
                         chunk);
    free(seen);

    /* Units partition the rounds, and a unit's span is its pieces. */
    for (size_t max_units = 1; max_units <= 33; max_units += 8) {
        size_t per = tally_window_per_unit(rounds, max_units);
        size_t units = tally_window_units(rounds, per), next = 0;
        ck_assert_uint_le(units, max_units);
        for (size_t u = 0; u < units; u++) {
            size_t r0, r1;
            tally_window_unit_rounds(rounds, per, u, &r0, &r1);
            if (r0 != next || r1 <= r0)
                ck_abort_msg("unit %zu: rounds [%zu, %zu) after %zu", u, r0, r1, next);
            next = r1;
            for (size_t s = 0; s < shards; s++) {
                size_t first, span = tally_window_span(&y, s, r0, r1, &first), sum = 0;
                for (size_t r = r0; r < r1; r++) {
                    size_t f, k = tally_window_piece(&y, s, r, &f);
                    if (k > 0 && sum == 0 && f != first)
                        ck_abort_msg("unit %zu of shard %zu starts at %zu, not %zu", u, s,
                                     first, f);
                    sum += k;
                }
                if (span != sum)
                    ck_abort_msg("unit %zu of shard %zu: span %zu, pieces %zu", u, s, span,
                                 sum);
            }
        }
        ck_assert_uint_eq(next, rounds);
    }
}

START_TEST(test_layout_covers_every_element)
{
    const size_t counts[] = {0, 1, 2, 3, 7, 63, 64, 65, 1000, 4097, 99991};
    const size_t sizes[] = {1, 2, 4, 8};
    const size_t shard_counts[] = {1, 2, 3, 4, 5, 8};
    const size_t chunks[] = {1, 7, 64, 4096, 262144};
    for (size_t a = 0; a < sizeof counts / sizeof *counts; a++)
        for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b++)
            for (size_t c = 0; c < sizeof shard_counts / sizeof *shard_counts; c++)
                for (size_t d = 0; d < sizeof chunks / sizeof *chunks; d++)
                    /* Tiny chunks on long vectors only repeat short cases slowly. */
                    if (counts[a] / (chunks[d] + 1) < 2000)
                        check_cover(counts[a], sizes[b], shard_counts[c], chunks[d]);
}
END_TEST

START_TEST(test_layout_shards_balanced)
{
    /* Shards differ by at most one element, the larger first, and shard 0
     * decides the number of rounds. */
    tally_window_layout_t y = tally_window_layout(10, 4, 4, 16); /* piece: 1 element */
    ck_assert_uint_eq(y.piece, 1);
    ck_assert_uint_eq(tally_window_shard_offset(&y, 0), 0);
    ck_assert_uint_eq(tally_window_shard_offset(&y, 1), 3);
    ck_assert_uint_eq(tally_window_shard_offset(&y, 2), 6);
    ck_assert_uint_eq(tally_window_shard_offset(&y, 3), 8);
    ck_assert_uint_eq(tally_window_rounds(&y), 3);
    size_t first;
    ck_assert_uint_eq(tally_window_piece(&y, 3, 2, &first), 0); /* shard 3 has 2 */
    ck_assert_uint_eq(tally_window_piece(&y, 0, 2, &first), 1);
    ck_assert_uint_eq(first, 2);
}
END_TEST

START_TEST(test_kernel_table_matches_reduce)
{
    const tally_kernels_t *k = tally_kernels_for(TALLY_MEM_HOST);
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_null(tally_kernels_for(TALLY_MEM_DEVICE)); /* no device table yet */
    enum { N = 37 };
    for (int d = 0; d < TALLY_DTYPE_COUNT; d++) {
        size_t es = tally_dtype_size((tally_dtype_t)d);
        for (int o = 0; o < TALLY_OP_COUNT; o++) {
            tally_reduce_fn fn = k->reduce[d][o];
            const int defined = tally_op_defined_on((tally_op_t)o, (tally_dtype_t)d);
            ck_assert_msg((fn != NULL) == defined, "kernel %s %s: %s", tally_dtype_name(d),
                          tally_op_name(o), fn ? "present but undefined" : "missing");
            if (!fn)
                continue;
            unsigned char a[N * 8], b[N * 8], want[N * 8], got[N * 8];
            for (size_t i = 0; i < sizeof a; i++) {
                a[i] = (unsigned char)(i * 37 + 11 + d);
                b[i] = (unsigned char)(i * 101 + 3 + o);
            }
            /* Keep floating inputs finite: clear each element's top byte's
             * exponent bits by using small integers as floats. */
            if (tally_dtype_is_float((tally_dtype_t)d)) {
                memset(a, 0, sizeof a);
                memset(b, 0, sizeof b);
                for (size_t i = 0; i < N; i++) {
                    a[i * es + es - 1] = 0x3c; /* about 1.0 in every float format */
                    b[i * es + es - 1] = (unsigned char)(0x3c + (i % 3));
                }
            }
            tally_reduce(want, a, b, N, (tally_dtype_t)d, (tally_op_t)o);
            fn(got, a, b, N);
            ck_assert_msg(memcmp(want, got, N * es) == 0, "kernel %s %s differs",
                          tally_dtype_name(d), tally_op_name(o));
        }
        ck_assert((k->divide[d] != NULL) == tally_dtype_is_float((tally_dtype_t)d));
    }
    unsigned char src[16] = "0123456789abcde", dst[16] = {0};
    k->copy(dst, src, sizeof src);
    ck_assert_mem_eq(dst, src, sizeof src);
    k->copy(dst, dst, sizeof dst); /* in place: nothing to do, nothing broken */
    ck_assert_mem_eq(dst, src, sizeof src);
}
END_TEST

static Suite *layout_suite(void)
{
    Suite *s = suite_create("layout");
    TCase *tc = tcase_create("layout");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_layout_covers_every_element);
    tcase_add_test(tc, test_layout_shards_balanced);
    tcase_add_test(tc, test_kernel_table_matches_reduce);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(layout_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
