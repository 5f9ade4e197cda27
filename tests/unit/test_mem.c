/* test_mem.c - the device interface (mem/device.h): classification, the
 * plugin's loading and refusals, and every backend function on the
 * host-emulated backend always and on the CUDA backend where a GPU is
 * visible (skipped with the reason otherwise): allocation, copies in each
 * direction, stream ordering across streams, and the device kernel table
 * against the host kernels, bit for bit, for every dtype x op. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/mem.h"
#include "reduce/reduce.h"

/* The plugin of this build: build/lib/ from build/tests/unit/, wherever
 * the tree is (the GPU script runs a copy of it elsewhere). */
static const char *plugin_path(void)
{
    static char path[4096];
    char exe[4000];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return TALLY_SOURCE_DIR "/build/lib/libtally-cuda.so";
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(path, sizeof path, "%s/../../lib/libtally-cuda.so", exe);
    return path;
}

START_TEST(test_host_is_host)
{
    for (int which = TALLY_DEVICE_AUTO; which <= TALLY_DEVICE_NONE; which++) {
        tally_device_t dev;
        tally_device_open(&dev, (tally_device_choice_t)which);
        int on_stack = 0;
        void *on_heap = malloc(64);
        ck_assert_int_eq(tally_mem_classify(&dev, &on_stack), TALLY_MEM_HOST);
        ck_assert_int_eq(tally_mem_classify(&dev, on_heap), TALLY_MEM_HOST);
        ck_assert_int_eq(tally_mem_classify(&dev, NULL), TALLY_MEM_HOST);
        if (!dev.backend)
            ck_assert_msg(dev.why[0] != '\0', "no backend and no reason");
        if (which == TALLY_DEVICE_NONE)
            ck_assert_ptr_null(dev.backend);
        tally_device_close(&dev);
        ck_assert_ptr_null(dev.backend);
        free(on_heap);
    }
    ck_assert_str_eq(tally_memtype_name(TALLY_MEM_HOST), "host");
    ck_assert_str_eq(tally_memtype_name(TALLY_MEM_DEVICE), "device");
    ck_assert_int_eq(tally_mem_reach(TALLY_MEM_PINNED), TALLY_MEM_HOST);
    ck_assert_int_eq(tally_mem_reach(TALLY_MEM_MANAGED), TALLY_MEM_HOST);
    ck_assert_int_eq(tally_mem_reach(TALLY_MEM_DEVICE), TALLY_MEM_DEVICE);
}
END_TEST

START_TEST(test_missing_plugin_says_why)
{
    tally_device_t dev;
    tally_device_open_path(&dev, "/nonexistent/libtally-cuda.so");
    ck_assert_ptr_null(dev.backend);
    ck_assert_ptr_null(dev.plugin);
    ck_assert_msg(strstr(dev.why, "/nonexistent/libtally-cuda.so") != NULL, "%s", dev.why);
    /* A library that is not a tally plugin is refused by name. */
    tally_device_open_path(&dev, "libm.so.6");
    ck_assert_ptr_null(dev.backend);
    ck_assert_msg(strstr(dev.why, "tally_device_backend_cuda") != NULL, "%s", dev.why);
    char line[512] = "";
    FILE *f = fmemopen(line, sizeof line, "w");
    tally_device_write(&dev, "", f);
    fclose(f);
    ck_assert_msg(strncmp(line, "device buffers: none: ", 22) == 0, "%s", line);
}
END_TEST

/* The CUDA backend through the plugin, or NULL after printing why not. */
static bool open_cuda(tally_device_t *dev, const char *test)
{
#if TALLY_HAVE_CUDA
    tally_device_open_path(dev, plugin_path());
    if (dev->backend)
        return true;
    printf("SKIP %s on cuda: no device through %s: %s\n", test, plugin_path(), dev->why);
#else
    (void)dev;
    printf("SKIP %s on cuda: built without CUDA\n", test);
#endif
    return false;
}

static void fill(void *buf, size_t bytes, unsigned seed)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < bytes; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(seed >> 16);
    }
}

/* Allocation, classification and copies host -> device -> device -> host. */
static void check_memory(tally_device_t *dev)
{
    const tally_device_backend_t *b = dev->backend;
    const size_t bytes = 100003;
    void *d1 = NULL, *d2 = NULL, *pinned = NULL;
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_DEVICE, bytes, &d1));
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_DEVICE, bytes, &d2));
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_PINNED, bytes, &pinned));
    ck_assert_int_eq(b->classify(dev->ctx, d1), TALLY_MEM_DEVICE);
    ck_assert_int_eq(b->classify(dev->ctx, (char *)d1 + bytes - 1), TALLY_MEM_DEVICE);
    ck_assert_int_eq(b->classify(dev->ctx, pinned), TALLY_MEM_PINNED);
    char *in = malloc(bytes), *out = malloc(bytes);
    fill(in, bytes, 7);
    memset(out, 0, bytes);
    ck_assert_ptr_null(b->copy(dev->ctx, d1, in, bytes));
    ck_assert_ptr_null(b->copy(dev->ctx, d2, d1, bytes));
    ck_assert_ptr_null(b->copy(dev->ctx, pinned, d2, bytes));
    ck_assert_ptr_null(b->copy(dev->ctx, out, pinned, bytes));
    ck_assert(memcmp(in, out, bytes) == 0);
    ck_assert_ptr_null(b->free(dev->ctx, pinned));
    ck_assert_ptr_null(b->free(dev->ctx, d2));
    ck_assert_ptr_null(b->free(dev->ctx, d1));
    free(out);
    free(in);
}

/* Copies queued on two streams, the second waiting for the first's event:
 * the data arrives in order, and an event waited on the host means done. */
static void check_streams(tally_device_t *dev)
{
    const tally_device_backend_t *b = dev->backend;
    enum { ROUNDS = 16, BYTES = 65536 };
    void *first, *second, *stage[2], *ev[2];
    void *down, *up;
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_DEVICE, ROUNDS * BYTES, &first));
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_DEVICE, ROUNDS * BYTES, &second));
    ck_assert_ptr_null(b->stream_create(dev->ctx, &up));
    ck_assert_ptr_null(b->stream_create(dev->ctx, &down));
    for (int i = 0; i < 2; i++) {
        ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_PINNED, BYTES, &stage[i]));
        ck_assert_ptr_null(b->event_create(dev->ctx, &ev[i]));
    }
    char *in = malloc(ROUNDS * BYTES), *out = malloc(ROUNDS * BYTES);
    fill(in, ROUNDS * BYTES, 11);
    ck_assert_ptr_null(b->copy(dev->ctx, first, in, ROUNDS * BYTES));
    /* Round r: first -> stage[r % 2] on down, then stage -> second on up
     * after down's event; stage[r % 2] is reused two rounds later, after
     * up has drained it (down waits for up's previous event). */
    void *up_done[2];
    for (int i = 0; i < 2; i++)
        ck_assert_ptr_null(b->event_create(dev->ctx, &up_done[i]));
    for (int r = 0; r < ROUNDS; r++) {
        const int s = r % 2;
        if (r >= 2)
            ck_assert_ptr_null(b->stream_wait(dev->ctx, down, up_done[s]));
        ck_assert_ptr_null(b->copy_async(dev->ctx, stage[s], (char *)first + r * BYTES, BYTES,
                                         down));
        ck_assert_ptr_null(b->event_record(dev->ctx, ev[s], down));
        ck_assert_ptr_null(b->stream_wait(dev->ctx, up, ev[s]));
        ck_assert_ptr_null(b->copy_async(dev->ctx, (char *)second + r * BYTES, stage[s], BYTES,
                                         up));
        ck_assert_ptr_null(b->event_record(dev->ctx, up_done[s], up));
    }
    ck_assert_ptr_null(b->event_wait(dev->ctx, up_done[(ROUNDS - 1) % 2]));
    ck_assert_ptr_null(b->copy(dev->ctx, out, second, ROUNDS * BYTES));
    ck_assert(memcmp(in, out, ROUNDS * BYTES) == 0);
    for (int i = 1; i >= 0; i--) {
        b->event_destroy(dev->ctx, up_done[i]);
        b->event_destroy(dev->ctx, ev[i]);
        ck_assert_ptr_null(b->free(dev->ctx, stage[i]));
    }
    b->stream_destroy(dev->ctx, down);
    b->stream_destroy(dev->ctx, up);
    ck_assert_ptr_null(b->free(dev->ctx, second));
    ck_assert_ptr_null(b->free(dev->ctx, first));
    free(out);
    free(in);
}

/* Every device kernel against the host kernel on the same input, bit for
 * bit: awkward counts, an odd element offset (unaligned), and dst == a. */
static void check_kernels(tally_device_t *dev)
{
    const tally_device_backend_t *b = dev->backend;
    const tally_kernels_t *host = tally_kernels_for(TALLY_MEM_HOST);
    const tally_kernels_t *device = b->kernels(dev->ctx);
    static const size_t counts[] = {1, 7, 255, 4099, 100003};
    const size_t most = 100003 + 1, es_max = 8;
    char *a = malloc(most * es_max), *bb = malloc(most * es_max);
    char *want = malloc(most * es_max), *got = malloc(most * es_max);
    void *da, *db, *dd;
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_DEVICE, most * es_max, &da));
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_DEVICE, most * es_max, &db));
    ck_assert_ptr_null(b->alloc(dev->ctx, TALLY_MEM_DEVICE, most * es_max, &dd));
    int checked = 0;
    for (int d = 0; d < TALLY_KERNEL_DTYPES; d++) {
        const size_t es = tally_dtype_size((tally_dtype_t)d);
        for (int o = 0; o < TALLY_KERNEL_OPS; o++) {
            ck_assert_msg(!host->reduce[d][o] == !device->reduce[d][o],
                          "dtype %d op %d: host and device tables differ", d, o);
            if (!host->reduce[d][o])
                continue;
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                const size_t n = counts[c], off = c % 2; /* odd offset: unaligned */
                fill(a, (n + off) * es, (unsigned)(d * 131 + o * 17 + c));
                fill(bb, (n + off) * es, (unsigned)(d * 71 + o * 3 + c + 1));
                ck_assert_ptr_null(b->copy(dev->ctx, da, a, (n + off) * es));
                ck_assert_ptr_null(b->copy(dev->ctx, db, bb, (n + off) * es));
                host->reduce[d][o](want, a + off * es, bb + off * es, n);
                device->reduce[d][o]((char *)dd + off * es, (char *)da + off * es,
                                     (char *)db + off * es, n);
                ck_assert_ptr_null(b->check(dev->ctx));
                ck_assert_ptr_null(b->copy(dev->ctx, got, (char *)dd + off * es, n * es));
                ck_assert_msg(memcmp(want, got, n * es) == 0, "dtype %d op %d count %zu", d, o,
                              n);
                /* In place: dst == a. */
                device->reduce[d][o](da, da, db, n);
                ck_assert_ptr_null(b->copy(dev->ctx, got, da, n * es));
                host->reduce[d][o](want, a, bb, n);
                ck_assert_msg(memcmp(want, got, n * es) == 0, "in place: dtype %d op %d", d, o);
                checked++;
            }
        }
        if (host->divide[d]) {
            fill(a, 4099 * es, (unsigned)d);
            ck_assert_ptr_null(b->copy(dev->ctx, da, a, 4099 * es));
            host->divide[d](a, 4099, 3);
            device->divide[d](da, 4099, 3);
            ck_assert_ptr_null(b->copy(dev->ctx, got, da, 4099 * es));
            ck_assert_msg(memcmp(a, got, 4099 * es) == 0, "divide dtype %d", d);
        }
    }
    ck_assert_int_gt(checked, 60);
    ck_assert_ptr_null(b->free(dev->ctx, dd));
    ck_assert_ptr_null(b->free(dev->ctx, db));
    ck_assert_ptr_null(b->free(dev->ctx, da));
    free(got);
    free(want);
    free(bb);
    free(a);
}

START_TEST(test_emulated_backend)
{
    tally_device_t dev;
    tally_device_open(&dev, TALLY_DEVICE_EMULATED);
    ck_assert_ptr_nonnull(dev.backend);
    ck_assert_int_eq(dev.devices, 1);
    check_memory(&dev);
    check_streams(&dev);
    check_kernels(&dev);
    const tally_device_backend_t *b = dev.backend;
    /* Refusals: a copy leaving its allocation, a pointer it never gave. */
    void *d = NULL;
    char host[64];
    ck_assert_ptr_null(b->alloc(dev.ctx, TALLY_MEM_DEVICE, 4096, &d));
    ck_assert_ptr_nonnull(b->copy(dev.ctx, host, (char *)d + 4090, 64));
    ck_assert_ptr_nonnull(b->free(dev.ctx, host));
    ck_assert_ptr_nonnull(b->alloc(dev.ctx, TALLY_MEM_HOST, 64, (void **)&d));
    /* The host must not touch device memory: it faults, as on a GPU. */
    pid_t child = fork();
    if (child == 0) {
        signal(SIGSEGV, SIG_DFL); /* not a sanitizer's handler: the kernel's verdict */
        ((volatile char *)d)[0] = 1;
        _exit(0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "touching emulated device memory did not fault");
    ck_assert_ptr_null(b->free(dev.ctx, d));
    tally_device_close(&dev);
}
END_TEST

START_TEST(test_cuda_backend)
{
    tally_device_t dev;
    if (!open_cuda(&dev, "test_cuda_backend"))
        return;
    int on_stack = 0;
    ck_assert_int_eq(tally_mem_classify(&dev, &on_stack), TALLY_MEM_HOST);
    check_memory(&dev);
    check_streams(&dev);
    check_kernels(&dev);
    tally_device_close(&dev);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mem");
    TCase *tc = tcase_create("mem");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_host_is_host);
    tcase_add_test(tc, test_missing_plugin_says_why);
    tcase_add_test(tc, test_emulated_backend);
    tcase_add_test(tc, test_cuda_backend);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* so the SKIP line reaches stdout in order */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
