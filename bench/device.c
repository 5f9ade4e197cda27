/* device.c - the device backend's own rates, no MPI: the reduce kernels'
 * bandwidth against the device's copy bandwidth (bytes read and written,
 * best of several passes), and what classifying a host pointer costs per
 * call with the backend loaded (tally_allreduce asks on every call).
 * `make bench-device`; TALLY_DEVICE picks the backend (auto: the CUDA
 * plugin; emulated: host memory, whose figures say nothing of a GPU). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/mem.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static tally_device_choice_t choice_from_env(void)
{
    const char *v = getenv("TALLY_DEVICE");
    if (v && strcmp(v, "emulated") == 0)
        return TALLY_DEVICE_EMULATED;
    return TALLY_DEVICE_AUTO;
}

int main(int argc, char **argv)
{
    const size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 10) << 20 : (size_t)512 << 20;
    const int passes = 10;
    tally_device_t dev;
    tally_device_open(&dev, choice_from_env());
    if (!dev.backend) {
        printf("SKIP bench/device: no device backend: %s\n", dev.why);
        return 0;
    }
    const tally_device_backend_t *b = dev.backend;
    tally_device_write(&dev, "# ", stdout);
    void *a = NULL, *x = NULL, *d = NULL;
    if (b->alloc(dev.ctx, TALLY_MEM_DEVICE, bytes, &a) || b->alloc(dev.ctx, TALLY_MEM_DEVICE, bytes, &x) ||
        b->alloc(dev.ctx, TALLY_MEM_DEVICE, bytes, &d)) {
        printf("bench/device: cannot allocate 3 x %zu MiB of device memory\n", bytes >> 20);
        return 1;
    }
    char *host = calloc(1, bytes);
    if (!host)
        return 1;
    for (size_t i = 0; i < bytes; i += 4) /* small floats, finite in every 16-bit dtype */
        host[i + 1] = (char)(i >> 8 & 0x3f);
    if (b->copy(dev.ctx, a, host, bytes) || b->copy(dev.ctx, x, host, bytes))
        return 1;
    const tally_kernels_t *k = b->kernels(dev.ctx);
    double copy = 1e30;
    for (int p = 0; p < passes; p++) {
        double t0 = now();
        k->copy(d, a, bytes);
        const double t = now() - t0;
        copy = t < copy ? t : copy;
    }
    const double copy_rate = 2.0 * bytes / copy / 1e9; /* read + write */
    printf("# %zu MiB per operand, best of %d passes; GB/s counting bytes read and written\n",
           bytes >> 20, passes);
    printf("%-22s %10s %14s\n", "kernel", "GB/s", "of copy's");
    printf("%-22s %10.1f %13.0f%%\n", "copy (device to device)", copy_rate, 100.0);
    static const struct { tally_dtype_t dtype; tally_op_t op; const char *name; } rows[] = {
        {TALLY_FLOAT32, TALLY_SUM, "float32 sum"},   {TALLY_FLOAT32, TALLY_MAX, "float32 max"},
        {TALLY_FLOAT16, TALLY_SUM, "float16 sum"},   {TALLY_BFLOAT16, TALLY_SUM, "bfloat16 sum"},
        {TALLY_FLOAT64, TALLY_SUM, "float64 sum"},   {TALLY_INT32, TALLY_SUM, "int32 sum"},
        {TALLY_INT8, TALLY_BXOR, "int8 bxor"},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const size_t n = bytes / tally_dtype_size(rows[r].dtype);
        double best = 1e30;
        for (int p = 0; p < passes; p++) {
            double t0 = now();
            k->reduce[rows[r].dtype][rows[r].op](d, a, x, n);
            const double t = now() - t0;
            best = t < best ? t : best;
        }
        const char *err = b->check(dev.ctx);
        const double rate = 3.0 * bytes / best / 1e9;
        printf("%-22s %10.1f %13.0f%%%s%s\n", rows[r].name, rate, 100.0 * rate / copy_rate,
               err ? "  error: " : "", err ? err : "");
    }
    /* Classification of a host pointer, as every call asks. */
    const long calls = 10 * 1000 * 1000;
    volatile int sink = 0;
    double t0 = now();
    for (long i = 0; i < calls; i++)
        sink += tally_mem_classify(&dev, host + (i & 4095)) == TALLY_MEM_DEVICE;
    const double per_call = (now() - t0) / calls * 1e9;
    printf("classify a host pointer: %.1f ns per call (%ld calls)\n", per_call, calls);
    b->free(dev.ctx, d);
    b->free(dev.ctx, x);
    b->free(dev.ctx, a);
    free(host);
    tally_device_close(&dev);
    return sink < 0;
}
