/* emulated.c - the host-emulated device backend: the device interface
 * (device.h) over host memory, so that the staged pipeline's ordering and
 * double buffering run in `make check` on machines without a GPU.
 * TALLY_DEVICE=emulated selects it; it is for tests, never chosen on its own.
 *
 * It is strict where a real device would be:
 * - Device memory is a memfd mapped twice: the pointer handed out maps it
 *   PROT_NONE, so host code that touches "device" memory faults as it
 *   would on a GPU; the backend works on a second, writable mapping a fixed
 *   SHADOW_OFFSET below it (so kernels translate without a lookup).
 * - Each stream is a worker thread that runs its copies in order, each
 *   after a short sleep: a caller that reads a bounce buffer before waiting
 *   for its event reads stale data, and the tests see it.
 * - Copies that leave an allocation are refused, as the CUDA runtime does.
 * - IPC handles name the memfd (process id, descriptor, a serial number
 *   that changes with every allocation): a peer on the node maps it
 *   through /proc/PID/fd, both views, as a device pointer of its own.
 * Memory is known to the context that allocated it (one communicator and
 * its groups), not process-wide as with a real device. */
#define _GNU_SOURCE /* memfd_create, MAP_FIXED_NOREPLACE */
#include "device.h"

#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SHADOW_OFFSET ((uintptr_t)1 << 44)
#define COPY_DELAY_NS 20000L

typedef struct region {
    uintptr_t base;
    size_t len;
    tally_memtype_t type; /* DEVICE (base is the PROT_NONE view) or PINNED */
    int fd;               /* a device allocation's memfd, for peers; -1 otherwise */
    bool peer;            /* mapped from a peer (ipc_open) */
    uint64_t serial;      /* tells allocations at a reused address apart */
} region_t;

/* An IPC handle's contents. */
typedef struct emu_handle {
    int32_t pid, fd;
    uint64_t len, serial;
} emu_handle_t;
_Static_assert(sizeof(emu_handle_t) <= TALLY_IPC_HANDLE_BYTES, "handle fits");

typedef struct emu {
    pthread_mutex_t lock;
    region_t *regions;
    size_t n, cap;
    uint64_t serials;
    tally_kernels_t kernels;
} emu_t;

struct stream;

/* A copy, or (after) a wait for another stream to reach a ticket. */
typedef struct copy_op {
    void *dst;
    const void *src;
    size_t bytes;
    struct stream *after;
    uint64_t ticket;
} copy_op_t;

typedef struct stream {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    copy_op_t *ops; /* ring of cap entries: op k at k % cap */
    size_t cap;
    uint64_t queued, done;
    bool stop;
} stream_t;

typedef struct event {
    stream_t *stream; /* NULL until recorded */
    uint64_t ticket;  /* complete when stream->done reaches it */
} event_t;

static void *shadow(const void *device_ptr)
{
    return (void *)((uintptr_t)device_ptr - SHADOW_OFFSET);
}

/* --- kernels: the host ones on the shadow mapping ------------------------ */

#define EMU_REDUCE(D, O)                                                                   \
    static void emu_reduce_##D##_##O(void *dst, const void *a, const void *b, size_t n)    \
    {                                                                                      \
        tally_kernels_for(TALLY_MEM_HOST)->reduce[D][O](shadow(dst), shadow(a), shadow(b), \
                                                        n);                                \
    }
#define EMU_DIVIDE(D, ...)                                                                 \
    static void emu_divide_##D(void *buf, size_t n, int divisor)                           \
    {                                                                                      \
        tally_kernels_for(TALLY_MEM_HOST)->divide[D](shadow(buf), n, divisor);             \
    }
#define OPS(X, D) X(D, 0) X(D, 1) X(D, 2) X(D, 3) X(D, 4) X(D, 5) X(D, 6) X(D, 7) X(D, 8) \
    X(D, 9) X(D, 10)
#define DTYPES(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__)               \
    X(3, __VA_ARGS__) X(4, __VA_ARGS__) X(5, __VA_ARGS__) X(6, __VA_ARGS__)                \
    X(7, __VA_ARGS__) X(8, __VA_ARGS__) X(9, __VA_ARGS__) X(10, __VA_ARGS__)               \
    X(11, __VA_ARGS__)
_Static_assert(TALLY_KERNEL_DTYPES == 12 && TALLY_KERNEL_OPS == 11, "DTYPES and OPS lists");

#define EMU_REDUCE_ROW(D, X) OPS(X, D)
DTYPES(EMU_REDUCE_ROW, EMU_REDUCE)
DTYPES(EMU_DIVIDE, _)

#define REDUCE_ENTRY(D, O) emu_reduce_##D##_##O,
#define REDUCE_ROW(D, X) {OPS(X, D)},
static const tally_reduce_fn emu_reduce[TALLY_KERNEL_DTYPES][TALLY_KERNEL_OPS] = {
    DTYPES(REDUCE_ROW, REDUCE_ENTRY)};
#define DIVIDE_ENTRY(D, ...) emu_divide_##D,
static const tally_divide_fn emu_divide[TALLY_KERNEL_DTYPES] = {DTYPES(DIVIDE_ENTRY, _)};

static void emu_copy(void *dst, const void *src, size_t bytes)
{
    memcpy(shadow(dst), shadow(src), bytes);
}

/* The host table's shape: NULL where the host has no kernel. */
static void build_kernels(tally_kernels_t *k)
{
    const tally_kernels_t *host = tally_kernels_for(TALLY_MEM_HOST);
    *k = (tally_kernels_t){.name = "emulated", .copy = emu_copy};
    for (int d = 0; d < TALLY_KERNEL_DTYPES; d++) {
        for (int o = 0; o < TALLY_KERNEL_OPS; o++)
            k->reduce[d][o] = host->reduce[d][o] ? emu_reduce[d][o] : NULL;
        k->divide[d] = host->divide[d] ? emu_divide[d] : NULL;
    }
}

/* --- memory ---------------------------------------------------------------- */

/* The region holding [p, p + bytes), with *inside false if p is in none;
 * NULL if p is in one but the range leaves it.  Called with the lock held. */
static const region_t *find(const emu_t *e, const void *p, size_t bytes, bool *inside)
{
    const uintptr_t a = (uintptr_t)p;
    *inside = false;
    for (size_t i = 0; i < e->n; i++) {
        const region_t *r = &e->regions[i];
        if (a >= r->base && a - r->base < r->len) {
            *inside = true;
            return bytes <= r->len - (a - r->base) ? r : NULL;
        }
    }
    return NULL;
}

static void unmap(const region_t *r)
{
    munmap((void *)r->base, r->len);
    if (r->type == TALLY_MEM_DEVICE)
        munmap(shadow((void *)r->base), r->len);
    if (r->fd >= 0)
        close(r->fd);
}

static tally_memtype_t emu_classify(void *ctx, const void *ptr)
{
    emu_t *e = ctx;
    bool inside;
    pthread_mutex_lock(&e->lock);
    const region_t *r = find(e, ptr, 1, &inside);
    const tally_memtype_t type = r ? r->type : TALLY_MEM_HOST;
    pthread_mutex_unlock(&e->lock);
    return type;
}

/* The address the host reads for [p, p + bytes): the shadow for device
 * memory, p itself for host memory; NULL if the range leaves an allocation. */
static void *host_address(emu_t *e, const void *p, size_t bytes)
{
    bool inside;
    pthread_mutex_lock(&e->lock);
    const region_t *r = find(e, p, bytes, &inside);
    pthread_mutex_unlock(&e->lock);
    if (inside && !r)
        return NULL;
    return r && r->type == TALLY_MEM_DEVICE ? shadow(p) : (void *)p;
}

/* Maps the memfd fd of len bytes as device memory: the PROT_NONE view
 * (*out) and the writable shadow below it. */
static const char *map_views(int fd, size_t len, void **out)
{
    const char *err = NULL;
    void *view = mmap(NULL, len, PROT_NONE, MAP_SHARED, fd, 0);
    if (view == MAP_FAILED || (uintptr_t)view < SHADOW_OFFSET) {
        err = "cannot map the device view";
        goto out;
    }
    void *want = shadow(view);
    void *host = mmap(want, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    if (host != want) {
        if (host != MAP_FAILED)
            munmap(host, len);
        err = "cannot map the host view at its fixed offset";
        goto out;
    }
    *out = view;
    view = MAP_FAILED;
out:
    if (view != MAP_FAILED)
        munmap(view, len);
    return err;
}

/* A new memfd of len bytes mapped as device memory; *fd stays open for
 * peers. */
static const char *map_device(size_t len, void **out, int *fd_out)
{
    int fd = memfd_create("tally-emulated-device", MFD_CLOEXEC);
    if (fd < 0)
        return "memfd_create failed";
    const char *err = ftruncate(fd, (off_t)len) != 0 ? "out of memory (ftruncate of the memfd)"
                                                     : map_views(fd, len, out);
    if (err)
        close(fd);
    else
        *fd_out = fd;
    return err;
}

/* Records a mapping; on failure unmaps it. */
static const char *add_region(emu_t *e, region_t r)
{
    pthread_mutex_lock(&e->lock);
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 16;
        region_t *grown = realloc(e->regions, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&e->lock);
            unmap(&r);
            return "out of memory";
        }
        e->regions = grown;
        e->cap = cap;
    }
    r.serial = ++e->serials;
    e->regions[e->n++] = r;
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static const char *emu_alloc(void *ctx, tally_memtype_t type, size_t bytes, void **ptr)
{
    emu_t *e = ctx;
    if (type != TALLY_MEM_DEVICE && type != TALLY_MEM_PINNED)
        return "only device and pinned memory are allocated by the backend";
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t len = ((bytes ? bytes : 1) + page - 1) / page * page;
    void *p = NULL;
    int fd = -1;
    if (type == TALLY_MEM_DEVICE) {
        const char *err = map_device(len, &p, &fd);
        if (err)
            return err;
    } else {
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return "out of memory";
    }
    const char *err = add_region(e, (region_t){(uintptr_t)p, len, type, fd, false, 0});
    if (!err)
        *ptr = p;
    return err;
}

static const char *emu_free(void *ctx, void *ptr)
{
    emu_t *e = ctx;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n; i++) {
        if (e->regions[i].base == (uintptr_t)ptr && !e->regions[i].peer) {
            region_t r = e->regions[i];
            e->regions[i] = e->regions[--e->n];
            pthread_mutex_unlock(&e->lock);
            unmap(&r);
            return NULL;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return "not an allocation of this backend";
}

static const char *emu_copy_sync(void *ctx, void *dst, const void *src, size_t bytes)
{
    void *d = host_address(ctx, dst, bytes);
    const void *s = host_address(ctx, src, bytes);
    if (!d || !s)
        return "the copy runs past the end of an allocation";
    memmove(d, s, bytes);
    return NULL;
}

/* --- memory shared with peers on the node --------------------------------- */

static const char *emu_ipc_export(void *ctx, const void *ptr, tally_ipc_handle_t *handle,
                                  size_t *offset)
{
    emu_t *e = ctx;
    bool inside;
    pthread_mutex_lock(&e->lock);
    const region_t *r = find(e, ptr, 1, &inside);
    const region_t copy = r ? *r : (region_t){0};
    pthread_mutex_unlock(&e->lock);
    if (!r || copy.type != TALLY_MEM_DEVICE || copy.peer)
        return "not device memory allocated here";
    const emu_handle_t h = {(int32_t)getpid(), copy.fd, copy.len, copy.serial};
    memset(handle, 0, sizeof *handle);
    memcpy(handle->bytes, &h, sizeof h);
    *offset = (uintptr_t)ptr - copy.base;
    return NULL;
}

static const char *emu_ipc_open(void *ctx, const tally_ipc_handle_t *handle, void **base)
{
    emu_handle_t h;
    memcpy(&h, handle->bytes, sizeof h);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)h.pid, (int)h.fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return "cannot open the peer's memfd";
    void *view = NULL;
    const char *err = map_views(fd, h.len, &view);
    close(fd);
    if (err)
        return err;
    err = add_region(ctx, (region_t){(uintptr_t)view, h.len, TALLY_MEM_DEVICE, -1, true, 0});
    if (!err)
        *base = view;
    return err;
}

static void emu_ipc_close(void *ctx, void *base)
{
    emu_t *e = ctx;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n; i++) {
        if (e->regions[i].base == (uintptr_t)base && e->regions[i].peer) {
            region_t r = e->regions[i];
            e->regions[i] = e->regions[--e->n];
            pthread_mutex_unlock(&e->lock);
            unmap(&r);
            return;
        }
    }
    pthread_mutex_unlock(&e->lock);
}

/* --- streams and events ---------------------------------------------------- */

static void *stream_worker(void *arg)
{
    stream_t *s = arg;
    const struct timespec delay = {0, COPY_DELAY_NS};
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->done == s->queued && !s->stop)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->done == s->queued)
            break; /* stopping, nothing left */
        const copy_op_t op = s->ops[s->done % s->cap];
        pthread_mutex_unlock(&s->lock);
        if (op.after) {
            stream_t *other = op.after;
            pthread_mutex_lock(&other->lock);
            while (other->done < op.ticket)
                pthread_cond_wait(&other->cond, &other->lock);
            pthread_mutex_unlock(&other->lock);
        } else {
            nanosleep(&delay, NULL);
            memcpy(op.dst, op.src, op.bytes);
        }
        pthread_mutex_lock(&s->lock);
        s->done++;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static const char *emu_stream_create(void *ctx, void **out)
{
    (void)ctx;
    stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return "out of memory";
    s->cap = 8;
    s->ops = calloc(s->cap, sizeof *s->ops);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (!s->ops || pthread_create(&s->thread, NULL, stream_worker, s) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s->ops);
        free(s);
        return "cannot start the stream's worker thread";
    }
    *out = s;
    return NULL;
}

static void emu_stream_destroy(void *ctx, void *stream)
{
    (void)ctx;
    stream_t *s = stream;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->ops);
    free(s);
}

/* Appends op to s's queue. */
static const char *enqueue(stream_t *s, copy_op_t op)
{
    pthread_mutex_lock(&s->lock);
    if (s->queued - s->done == s->cap) { /* full: grow the ring, oldest first */
        copy_op_t *ops = malloc(2 * s->cap * sizeof *ops);
        if (!ops) {
            pthread_mutex_unlock(&s->lock);
            return "out of memory";
        }
        for (uint64_t k = s->done; k < s->queued; k++)
            ops[k % (2 * s->cap)] = s->ops[k % s->cap];
        free(s->ops);
        s->ops = ops;
        s->cap *= 2;
    }
    s->ops[s->queued % s->cap] = op;
    s->queued++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static const char *emu_copy_async(void *ctx, void *dst, const void *src, size_t bytes,
                                  void *stream)
{
    void *d = host_address(ctx, dst, bytes);
    const void *from = host_address(ctx, src, bytes);
    if (!d || !from)
        return "the copy runs past the end of an allocation";
    return enqueue(stream, (copy_op_t){.dst = d, .src = from, .bytes = bytes});
}

static const char *emu_event_create(void *ctx, void **out)
{
    (void)ctx;
    event_t *ev = calloc(1, sizeof *ev);
    if (!ev)
        return "out of memory";
    *out = ev;
    return NULL;
}

static void emu_event_destroy(void *ctx, void *event)
{
    (void)ctx;
    free(event);
}

static const char *emu_event_record(void *ctx, void *event, void *stream)
{
    (void)ctx;
    event_t *ev = event;
    stream_t *s = stream;
    pthread_mutex_lock(&s->lock);
    ev->stream = s;
    ev->ticket = s->queued;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static const char *emu_event_wait(void *ctx, void *event)
{
    (void)ctx;
    event_t *ev = event;
    stream_t *s = ev->stream;
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->lock);
    while (s->done < ev->ticket)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static const char *emu_stream_wait(void *ctx, void *stream, void *event)
{
    (void)ctx;
    event_t *ev = event;
    if (!ev->stream || ev->stream == stream) /* nothing to wait for, or in order already */
        return NULL;
    return enqueue(stream, (copy_op_t){.after = ev->stream, .ticket = ev->ticket});
}

/* --- no NCCL ---------------------------------------------------------------- */

static const char *emu_nccl_missing(void *ctx)
{
    (void)ctx;
    return "the emulated device has no NCCL";
}

static const char *emu_nccl_id(void *ctx, unsigned char id[TALLY_NCCL_ID_BYTES])
{
    (void)id;
    return emu_nccl_missing(ctx);
}

static const char *emu_nccl_join(void *ctx, const unsigned char id[TALLY_NCCL_ID_BYTES],
                                 int size, int rank, void **nccl)
{
    (void)id, (void)size, (void)rank, (void)nccl;
    return emu_nccl_missing(ctx);
}

static void emu_nccl_leave(void *ctx, void *nccl)
{
    (void)ctx, (void)nccl;
}

static const char *emu_nccl_allreduce(void *ctx, void *nccl, const void *send, void *recv,
                                      size_t count, tally_dtype_t dtype, tally_op_t op)
{
    (void)nccl, (void)send, (void)recv, (void)count, (void)dtype, (void)op;
    return emu_nccl_missing(ctx);
}

/* --- the backend --------------------------------------------------------- */

static const char *emu_open(void **ctx, int *devices)
{
    emu_t *e = calloc(1, sizeof *e);
    if (!e)
        return "out of memory";
    pthread_mutex_init(&e->lock, NULL);
    build_kernels(&e->kernels);
    *ctx = e;
    *devices = 1;
    return NULL;
}

static void emu_close(void *ctx)
{
    emu_t *e = ctx;
    for (size_t i = 0; i < e->n; i++) /* what the program did not free */
        unmap(&e->regions[i]);
    free(e->regions);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

static const char *emu_describe(void *ctx, int device, char *name, size_t name_len, char *pci,
                                size_t pci_len)
{
    (void)ctx;
    (void)device;
    snprintf(name, name_len, "emulated device (host memory, copies on worker threads)");
    snprintf(pci, pci_len, "%s", "");
    return NULL;
}

static int emu_current(void *ctx)
{
    (void)ctx;
    return 0;
}

static int emu_bind_thread(void *ctx)
{
    (void)ctx; /* one device, no per-thread state */
    return 0;
}

static void emu_restore_thread(void *ctx, int previous)
{
    (void)ctx, (void)previous;
}

static const tally_kernels_t *emu_kernels(void *ctx)
{
    return &((emu_t *)ctx)->kernels;
}

static const char *emu_check(void *ctx)
{
    (void)ctx;
    return NULL; /* host kernels cannot fail */
}

const tally_device_backend_t tally_device_backend_emulated = {
    .abi = TALLY_DEVICE_ABI,
    .name = "emulated",
    .open = emu_open,
    .close = emu_close,
    .describe = emu_describe,
    .current = emu_current,
    .bind_thread = emu_bind_thread,
    .restore_thread = emu_restore_thread,
    .classify = emu_classify,
    .alloc = emu_alloc,
    .free = emu_free,
    .copy = emu_copy_sync,
    .stream_create = emu_stream_create,
    .stream_destroy = emu_stream_destroy,
    .copy_async = emu_copy_async,
    .event_create = emu_event_create,
    .event_destroy = emu_event_destroy,
    .event_record = emu_event_record,
    .event_wait = emu_event_wait,
    .stream_wait = emu_stream_wait,
    .ipc_export = emu_ipc_export,
    .ipc_open = emu_ipc_open,
    .ipc_close = emu_ipc_close,
    .nccl_missing = emu_nccl_missing,
    .nccl_id = emu_nccl_id,
    .nccl_join = emu_nccl_join,
    .nccl_leave = emu_nccl_leave,
    .nccl_allreduce = emu_nccl_allreduce,
    .kernels = emu_kernels,
    .check = emu_check,
};
