/* test_device.c - MPI tests of device buffers on the host-emulated device
 * (TALLY_DEVICE=emulated, mem/emulated.c): its "device" memory faults when
 * the host touches it and its copies run late on worker threads, so a
 * missing copy or wait in the staged pipeline shows here as a crash or a
 * wrong result.  TALLY_TEST_DEVICE=auto runs the same on a real GPU
 * (tests/gpu/run.sh).  Every dtype x op over awkward counts spanning several
 * TALLY_STAGE_CHUNK chunks, in place and not, through tally's choice
 * (nccl on GPUs of their own; else ipc on one node, staged across), ipc and
 * staged, bit-identical to the reference and to the same call on host
 * buffers; peers' allocations freed and made anew at the same address,
 * more than the mapping cache holds; compressed calls bit-identical to
 * host ones (across nodes, through the host's codecs); started calls and fused
 * tensors on device memory; mixed memory refused with nothing touched; the
 * tally_mem_* functions and their refusals. */
#include <check.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "tally_test.h"

static int world_rank, world_size;
static const char *device = "emulated"; /* TALLY_TEST_DEVICE */

/* A communicator on the device with 64 KiB chunks. */
static tally_comm_t *make_comm(const char *which)
{
    setenv("TALLY_DEVICE", which, 1);
    setenv("TALLY_STAGE_CHUNK", "64K", 1);
    setenv("TALLY_FUSION_BYTES", "16K", 1);
    setenv("TALLY_FALLBACK", "silent", 1); /* staged forced: its host steps run tally's choice */
    tally_comm_t *comm;
    ck_assert_int_eq(tally_comm_create(MPI_COMM_WORLD, &comm), TALLY_SUCCESS);
    unsetenv("TALLY_DEVICE");
    unsetenv("TALLY_STAGE_CHUNK");
    unsetenv("TALLY_FUSION_BYTES");
    unsetenv("TALLY_FALLBACK");
    return comm;
}

/* Whether every rank is on this node (the emulated cluster has several). */
static int on_one_node(void)
{
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int node_size;
    MPI_Comm_size(node, &node_size);
    MPI_Comm_free(&node);
    return node_size == world_size;
}

static void *device_alloc(tally_comm_t *comm, size_t bytes)
{
    void *p = NULL;
    ck_assert_int_eq(tally_mem_alloc(comm, TALLY_MEM_DEVICE, bytes, &p), TALLY_SUCCESS);
    return p;
}

static void put(tally_comm_t *comm, void *dev, const void *host, size_t bytes)
{
    ck_assert_int_eq(tally_mem_copy(comm, dev, host, bytes), TALLY_SUCCESS);
}

/* Every rank's input of call (dtype, op, count) and their reduction. */
static void reference(void *want, void *mine, size_t count, tally_dtype_t dtype, tally_op_t op,
                      uint32_t seed)
{
    const size_t es = tally_dtype_size(dtype);
    char *all = malloc(count * es * (size_t)world_size);
    for (int r = 0; r < world_size; r++)
        tt_fill(all + (size_t)r * count * es, count, dtype, op, r, seed);
    memcpy(mine, all + (size_t)world_rank * count * es, count * es);
    tt_reference(want, all, count, world_size, dtype, op);
    free(all);
}

/* Every dtype x op through one algorithm ("auto": nccl where every rank has
 * a GPU of its own, else ipc on one node and staged across nodes; ipc
 * forced across nodes runs staged). */
static void run_matrix(const char *algo)
{
    tally_comm_t *comm = make_comm(device);
    ck_assert_int_eq(tally_comm_set_algorithm(comm, algo), TALLY_SUCCESS);
    int calls = 0;
    for (int d = 0; d < TT_DTYPES; d++) {
        const tally_dtype_t dtype = (tally_dtype_t)d;
        const size_t es = tally_dtype_size(dtype);
        /* One element, one partial chunk, and four chunks and a bit. */
        const size_t counts[] = {1, 1001, 4 * 65536 / es + 7};
        for (int o = 0; o < TT_OPS; o++) {
            const tally_op_t op = (tally_op_t)o;
            if (!tt_op_valid_for(op, dtype))
                continue;
            for (size_t c = 0; c < 3; c++) {
                const size_t n = counts[c], bytes = n * es;
                const int in_place = (d + o + (int)c) % 2;
                char *want = malloc(bytes), *mine = malloc(bytes), *got = malloc(bytes);
                char *host = malloc(bytes);
                reference(want, mine, n, dtype, op, (uint32_t)(d * 100 + o * 10 + c));
                void *dsend = device_alloc(comm, bytes), *drecv = device_alloc(comm, bytes);
                put(comm, dsend, mine, bytes);
                put(comm, drecv, mine, bytes);
                tally_status_t st = tally_allreduce(in_place ? TALLY_IN_PLACE : dsend,
                                                    in_place ? dsend : drecv, n, dtype, op, comm);
                ck_assert_msg(tt_all_ok(st == TALLY_SUCCESS, "%s: %s %s %zu: %s", algo,
                                        tally_dtype_name(dtype), tally_op_name(op), n,
                                        tally_strerror(st)),
                              "device call failed");
                put(comm, got, in_place ? dsend : drecv, bytes);
                ck_assert_msg(tt_all_ok(memcmp(got, want, bytes) == 0, "%s: %s %s %zu %s: wrong",
                                        algo, tally_dtype_name(dtype), tally_op_name(op), n,
                                        in_place ? "in place" : "apart"),
                              "device result");
                if (!in_place) { /* the input is left alone */
                    put(comm, got, dsend, bytes);
                    ck_assert(memcmp(got, mine, bytes) == 0);
                }
                /* The same call on host buffers: the same bits. */
                ck_assert_int_eq(tally_allreduce(mine, host, n, dtype, op, comm), TALLY_SUCCESS);
                ck_assert_msg(tt_all_ok(memcmp(host, want, bytes) == 0, "host %s %s %zu",
                                        tally_dtype_name(dtype), tally_op_name(op), n),
                              "host result");
                ck_assert_int_eq(tally_mem_free(comm, drecv), TALLY_SUCCESS);
                ck_assert_int_eq(tally_mem_free(comm, dsend), TALLY_SUCCESS);
                free(host);
                free(got);
                free(mine);
                free(want);
                calls++;
            }
        }
    }
    ck_assert_int_gt(calls, 150);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}

START_TEST(test_every_dtype_op_auto) { run_matrix("auto"); }
END_TEST

START_TEST(test_every_dtype_op_staged) { run_matrix("staged"); }
END_TEST

START_TEST(test_every_dtype_op_ipc) { run_matrix("ipc"); }
END_TEST

/* Buffers freed and allocated anew, often at the same address, and more
 * of them than the peers' mapping cache holds: every call still reads the
 * memory its caller passed (not a stale mapping of a freed allocation). */
START_TEST(test_reused_addresses)
{
    tally_comm_t *comm = make_comm(device);
    enum { ROUNDS = 80, N = 4099 };
    float *mine = malloc(N * sizeof *mine), *want = malloc(N * sizeof *want);
    float *got = malloc(N * sizeof *got);
    void *kept[ROUNDS / 2] = {0};
    for (int k = 0; k < ROUNDS; k++) {
        reference(want, mine, N, TALLY_FLOAT32, TALLY_SUM, (uint32_t)(1000 + k));
        void *d = device_alloc(comm, N * sizeof(float));
        put(comm, d, mine, N * sizeof(float));
        ck_assert_int_eq(tally_allreduce(TALLY_IN_PLACE, d, N, TALLY_FLOAT32, TALLY_SUM, comm),
                         TALLY_SUCCESS);
        put(comm, got, d, N * sizeof(float));
        ck_assert_msg(tt_all_ok(memcmp(got, want, sizeof(float) * N) == 0, "round %d", k),
                      "reused address");
        if (k % 2) /* half are kept: distinct allocations pile up in the cache */
            kept[k / 2] = d;
        else
            ck_assert_int_eq(tally_mem_free(comm, d), TALLY_SUCCESS);
    }
    for (int k = 0; k < ROUNDS / 2; k++)
        tally_mem_free(comm, kept[k]);
    free(got);
    free(want);
    free(mine);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

/* Compressed calls on device buffers: across nodes they go through the
 * host's codecs, so a compressor fed device buffers gives the same bits,
 * step after step (error feedback included), as a twin fed host buffers,
 * and sends as few bytes; on one node both run exactly. */
START_TEST(test_compressed)
{
    tally_comm_t *comm = make_comm(device);
    enum { N = 70001, STEPS = 3 };
    tally_compressor_t *on_device = NULL, *on_host = NULL;
    ck_assert_int_eq(tally_compressor_create(comm, "int8", N, TALLY_FLOAT32, &on_device),
                     TALLY_SUCCESS);
    ck_assert_int_eq(tally_compressor_create(comm, "int8", N, TALLY_FLOAT32, &on_host),
                     TALLY_SUCCESS);
    float *h = malloc(N * sizeof *h), *got = malloc(N * sizeof *got);
    void *d = device_alloc(comm, N * sizeof(float));
    uint32_t x = 12345u + (uint32_t)world_rank;
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < N; i++) { /* gradient-like: not exact in int8 */
            x = x * 1664525u + 1013904223u;
            h[i] = (float)((int32_t)x >> 8) / 8388608.0f;
        }
        put(comm, d, h, N * sizeof(float));
        ck_assert_int_eq(tally_allreduce_compressed(TALLY_IN_PLACE, d, N, TALLY_FLOAT32,
                                                    TALLY_AVG, on_device),
                         TALLY_SUCCESS);
        ck_assert_int_eq(tally_allreduce_compressed(TALLY_IN_PLACE, h, N, TALLY_FLOAT32,
                                                    TALLY_AVG, on_host),
                         TALLY_SUCCESS);
        put(comm, got, d, N * sizeof(float));
        ck_assert_msg(tt_all_ok(memcmp(got, h, N * sizeof(float)) == 0, "step %d", step),
                      "device and host compressed results differ");
    }
    size_t wire_d, plain_d, wire_h, plain_h;
    ck_assert_int_eq(tally_compressor_bytes(on_device, &wire_d, &plain_d), TALLY_SUCCESS);
    ck_assert_int_eq(tally_compressor_bytes(on_host, &wire_h, &plain_h), TALLY_SUCCESS);
    ck_assert_uint_eq(wire_d, wire_h);
    ck_assert_uint_eq(plain_d, plain_h);
    if (on_one_node())
        ck_assert(wire_d == 0 && plain_d == 0); /* exact on one node */
    else
        ck_assert_msg(wire_d < plain_d, "sent %zu of %zu bytes", wire_d, plain_d);
    tally_mem_free(comm, d);
    free(got);
    free(h);
    tally_compressor_destroy(on_host);
    tally_compressor_destroy(on_device);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

/* Started calls, several in flight, and fused tensors of both kinds. */
START_TEST(test_started_and_fused)
{
    tally_comm_t *comm = make_comm(device);
    enum { CALLS = 6 };
    const size_t sizes[CALLS] = {3, 70001, 1, 40000, 5, 100000};
    void *dev[CALLS];
    float *want[CALLS];
    tally_request_t *req[CALLS];
    for (int k = 0; k < CALLS; k++) {
        const size_t n = sizes[k];
        float *mine = malloc(n * sizeof *mine);
        want[k] = malloc(n * sizeof *want[k]);
        reference(want[k], mine, n, TALLY_FLOAT32, TALLY_SUM, (uint32_t)k);
        dev[k] = device_alloc(comm, n * sizeof(float));
        put(comm, dev[k], mine, n * sizeof(float));
        free(mine);
        ck_assert_int_eq(tally_iallreduce(TALLY_IN_PLACE, dev[k], n, TALLY_FLOAT32, TALLY_SUM,
                                          comm, &req[k]),
                         TALLY_SUCCESS);
    }
    ck_assert_int_eq(tally_waitall(CALLS, req), TALLY_SUCCESS);
    for (int k = 0; k < CALLS; k++) {
        float *got = malloc(sizes[k] * sizeof *got);
        put(comm, got, dev[k], sizes[k] * sizeof(float));
        ck_assert_msg(tt_all_ok(memcmp(got, want[k], sizes[k] * sizeof(float)) == 0,
                                "started call %d of %zu", k, sizes[k]),
                      "started");
        free(got);
    }
    /* Fused: device tensors packed on the device, host ones on the host,
     * the two kinds never in one pack. */
    enum { TENSORS = 9 };
    tally_buffer_t bufs[TENSORS];
    float *host[TENSORS] = {0};
    float *expect[TENSORS];
    for (int i = 0; i < TENSORS; i++) {
        const size_t n = 100 + 37 * (size_t)i;
        float *mine = malloc(n * sizeof *mine);
        expect[i] = malloc(n * sizeof *expect[i]);
        reference(expect[i], mine, n, TALLY_FLOAT32, TALLY_SUM, (uint32_t)(50 + i));
        void *buf;
        if (i % 3 == 2) {
            buf = host[i] = mine;
        } else {
            buf = device_alloc(comm, n * sizeof(float));
            put(comm, buf, mine, n * sizeof(float));
            free(mine);
        }
        bufs[i] = (tally_buffer_t){TALLY_IN_PLACE, buf, n};
    }
    ck_assert_int_eq(tally_allreduce_multi(bufs, TENSORS, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_SUCCESS);
    for (int i = 0; i < TENSORS; i++) {
        const size_t n = bufs[i].count;
        float *got = malloc(n * sizeof *got);
        put(comm, got, bufs[i].recvbuf, n * sizeof(float));
        ck_assert_msg(tt_all_ok(memcmp(got, expect[i], n * sizeof(float)) == 0,
                                "fused tensor %d (%s)", i, host[i] ? "host" : "device"),
                      "fused");
        free(got);
        free(expect[i]);
        if (host[i])
            free(host[i]);
        else
            tally_mem_free(comm, bufs[i].recvbuf);
    }
    for (int k = 0; k < CALLS; k++) {
        tally_mem_free(comm, dev[k]);
        free(want[k]);
    }
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
}
END_TEST

START_TEST(test_refusals)
{
    tally_comm_t *comm = make_comm(device);
    const size_t n = 1000;
    float *host = malloc(n * sizeof *host);
    for (size_t i = 0; i < n; i++)
        host[i] = 1.5f;
    void *dev = device_alloc(comm, n * sizeof(float));
    tally_memtype_t type;
    ck_assert_int_eq(tally_mem_type(comm, dev, &type), TALLY_SUCCESS);
    ck_assert_int_eq(type, TALLY_MEM_DEVICE);
    ck_assert_int_eq(tally_mem_type(comm, host, &type), TALLY_SUCCESS);
    ck_assert_int_eq(type, TALLY_MEM_HOST);
    void *pinned = NULL;
    ck_assert_int_eq(tally_mem_alloc(comm, TALLY_MEM_PINNED, 64, &pinned), TALLY_SUCCESS);
    ck_assert_int_eq(tally_mem_type(comm, pinned, &type), TALLY_SUCCESS);
    ck_assert_int_eq(type, TALLY_MEM_PINNED);
    /* Device in, host out: refused before anything moves. */
    ck_assert_int_eq(tally_allreduce(dev, host, n, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_ERR_UNSUPPORTED);
    for (size_t i = 0; i < n; i++)
        ck_assert(host[i] == 1.5f);
    /* The same inside a fused call: refused before any tensor runs. */
    float other[3] = {2.0f, 2.0f, 2.0f};
    const tally_buffer_t mixed[2] = {{TALLY_IN_PLACE, other, 3}, {dev, host, n}};
    ck_assert_int_eq(tally_allreduce_multi(mixed, 2, TALLY_FLOAT32, TALLY_SUM, comm),
                     TALLY_ERR_UNSUPPORTED);
    ck_assert(other[0] == 2.0f && other[2] == 2.0f && host[0] == 1.5f && host[n - 1] == 1.5f);
    void *p = (void *)1;
    ck_assert_int_eq(tally_mem_alloc(comm, TALLY_MEM_HOST, 64, &p), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_eq(p, (void *)1);
    ck_assert_int_eq(tally_mem_alloc(comm, TALLY_MEM_DEVICE, 64, NULL), TALLY_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tally_mem_alloc(NULL, TALLY_MEM_DEVICE, 64, &p), TALLY_ERR_NULL_COMM);
    ck_assert_int_eq(tally_mem_free(comm, host), TALLY_ERR_DEVICE); /* not the backend's */
    ck_assert_int_eq(tally_mem_free(comm, NULL), TALLY_SUCCESS);
    ck_assert_int_eq(tally_mem_copy(comm, dev, NULL, 4), TALLY_ERR_NULL_BUFFER);
    /* What tally-info shows: the backend and what device buffers run. */
    char text[8192] = "";
    FILE *f = fmemopen(text, sizeof text, "w");
    ck_assert_int_eq(tally_comm_print(comm, f), TALLY_SUCCESS);
    fclose(f);
    char line[64];
    snprintf(line, sizeof line, "device buffers: %s backend",
             strcmp(device, "emulated") == 0 ? "emulated" : "cuda");
    ck_assert_msg(strstr(text, line) != NULL, "%s", text);
    const char *algo = NULL;
    ck_assert_int_eq(tally_comm_get_algorithm_on(comm, TALLY_MEM_DEVICE, 16 << 20, TALLY_FLOAT32,
                                                 TALLY_SUM, &algo),
                     TALLY_SUCCESS);
    /* nccl where every rank has a GPU of its own, else ipc on one node and
     * staged across nodes. */
    const int one_node = on_one_node();
    ck_assert_msg(strcmp(algo, "nccl") == 0 || strcmp(algo, one_node ? "ipc" : "staged") == 0,
                  "%s", algo);
    if (strcmp(device, "emulated") == 0)
        ck_assert_msg(strstr(text, "NCCL: not used: the emulated device has no NCCL"), "%s",
                      text);
    snprintf(line, sizeof line, "64 MiB %s", algo);
    ck_assert_msg(strstr(text, line) != NULL, "%s", text);
    ck_assert_int_eq(tally_mem_free(comm, pinned), TALLY_SUCCESS);
    ck_assert_int_eq(tally_mem_free(comm, dev), TALLY_SUCCESS);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);

    /* No backend: nothing to allocate, and it says why. */
    comm = make_comm("none");
    ck_assert_int_eq(tally_mem_alloc(comm, TALLY_MEM_DEVICE, 64, &p), TALLY_ERR_UNSUPPORTED);
    ck_assert_int_eq(tally_mem_type(comm, host, &type), TALLY_SUCCESS);
    ck_assert_int_eq(type, TALLY_MEM_HOST);
    ck_assert_int_eq(tally_comm_destroy(comm), TALLY_SUCCESS);
    free(host);
}
END_TEST

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (getenv("TALLY_TEST_DEVICE"))
        device = getenv("TALLY_TEST_DEVICE");
    Suite *s = suite_create("device");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, test_every_dtype_op_auto);
    tcase_add_test(tc, test_every_dtype_op_staged);
    tcase_add_test(tc, test_every_dtype_op_ipc);
    tcase_add_test(tc, test_reused_addresses);
    tcase_add_test(tc, test_compressed);
    tcase_add_test(tc, test_started_and_fused);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, world_rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
