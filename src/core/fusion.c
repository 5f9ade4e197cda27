/* fusion.c - tally_allreduce_multi (see fusion.h).  The buffers belong to
 * the communicator, one per memory type (host, device: device tensors are
 * packed on the device), and grow on demand up to TALLY_FUSION_BYTES;
 * growing is agreed by every rank (one small allreduce), since a rank that
 * could not grow would otherwise run the tensors one by one while the
 * others run them packed.  A group packs consecutive tensors of one memory
 * type (every rank passes the same kinds, tally_allreduce(3)). */
#include "fusion.h"

#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "compressor.h"
#include "dtype.h"
#include "entry.h"
#include "log.h"

/* What a tensor's buffers are, for grouping: host or device.  Host
 * without a backend, asked without a call: a fused call asks per tensor. */
static inline tally_memtype_t tensor_memtype(const tally_comm_t *comm, const tally_buffer_t *b)
{
    if (!comm->device.backend)
        return TALLY_MEM_HOST;
    return tally_mem_reach(tally_mem_classify(&comm->device, b->recvbuf));
}

tally_status_t tally_fusion_check(const char *fn, const tally_buffer_t *bufs, size_t n,
                                  tally_dtype_t dtype, tally_op_t op, const tally_comm_t *comm)
{
    TALLY_CHECK(tally_check_arguments(fn, comm, 0, dtype, op));
    if (n && !bufs) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: bufs is NULL with n = %zu", fn, n);
        return TALLY_ERR_NULL_BUFFER;
    }
    const size_t es = tally_dtype_size(dtype);
    for (size_t i = 0; i < n; i++) {
        const size_t count = bufs[i].count;
        /* The common case inline; the full check, which says what is
         * wrong, for the rest (a count this large may still fit a small
         * dtype). */
        const bool plainly_ok =
            count == 0 || (count <= (size_t)PTRDIFF_MAX / 8 &&
                           tally_buffers_ok(bufs[i].sendbuf, bufs[i].recvbuf, count * es));
        tally_status_t st = TALLY_SUCCESS;
        if (!plainly_ok)
            st = tally_check_buffers(fn, bufs[i].sendbuf, bufs[i].recvbuf, count, dtype, comm);
        /* A tensor is grouped by its recvbuf's memory: one whose sendbuf is
         * of the other kind would be copied with the wrong means. */
        if (st == TALLY_SUCCESS && comm->device.backend && count > 0 &&
            bufs[i].sendbuf != TALLY_IN_PLACE &&
            tally_mem_reach(tally_mem_classify(&comm->device, bufs[i].sendbuf)) !=
                tensor_memtype(comm, &bufs[i])) {
            TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: sendbuf and recvbuf are of different memory "
                      "types (host and device)", fn);
            st = TALLY_ERR_UNSUPPORTED;
        }
        if (st != TALLY_SUCCESS) {
            TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: tensor %zu of %zu is refused", fn, i, n);
            return st;
        }
    }
    return TALLY_SUCCESS;
}

/* The fusion buffer of memory type `type` holds at least `bytes` on every
 * rank, or on none (then the tensors run one by one everywhere).  f->bytes
 * is the size the ranks agreed on, the same everywhere, so that every rank
 * takes the agreement's collective step in the same calls: a rank whose
 * allocation succeeded while another's failed keeps the old size. */
static bool grow(tally_comm_t *comm, tally_memtype_t type, size_t bytes)
{
    tally_fusion_buffer_t *f = &comm->fusion[type == TALLY_MEM_DEVICE];
    if (bytes <= f->bytes)
        return true;
    const tally_device_t *dev = &comm->device;
    void *p = NULL;
    if (type == TALLY_MEM_DEVICE) {
        /* Freed first on every rank, so the agreed size is then 0. */
        if (f->buf)
            dev->backend->free(dev->ctx, f->buf);
        *f = (tally_fusion_buffer_t){0};
        if (dev->backend->alloc(dev->ctx, TALLY_MEM_DEVICE, bytes, &p) != NULL)
            p = NULL;
    } else {
        p = realloc(f->buf, bytes);
    }
    if (p)
        f->buf = p;
    int ok = p != NULL, all = 0;
    if (PMPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, comm->mpi) != MPI_SUCCESS)
        return false;
    if (all)
        f->bytes = bytes;
    return all;
}

/* Copies into or out of the fusion buffer, on the host or the device. */
static tally_status_t move(const tally_comm_t *comm, tally_memtype_t type, void *dst,
                           const void *src, size_t bytes)
{
    if (type != TALLY_MEM_DEVICE) {
        memcpy(dst, src, bytes);
        return TALLY_SUCCESS;
    }
    const tally_device_t *dev = &comm->device;
    const char *err = dev->backend->copy(dev->ctx, dst, src, bytes);
    if (!err)
        return TALLY_SUCCESS;
    TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_allreduce_multi: %s backend: %s", dev->backend->name,
              err);
    return TALLY_ERR_DEVICE;
}

/* Copies the n tensors' inputs into `packed`, end to end, or their parts
 * of the result back out of it. */
static tally_status_t pack(const tally_comm_t *comm, tally_memtype_t type, char *packed,
                           const tally_buffer_t *bufs, size_t n, size_t es)
{
    for (size_t k = 0, at = 0; k < n; at += bufs[k++].count) {
        const void *src = bufs[k].sendbuf == TALLY_IN_PLACE ? bufs[k].recvbuf : bufs[k].sendbuf;
        TALLY_CHECK(move(comm, type, packed + at * es, src, bufs[k].count * es));
    }
    return TALLY_SUCCESS;
}

static tally_status_t unpack(const tally_comm_t *comm, tally_memtype_t type, const char *packed,
                             const tally_buffer_t *bufs, size_t n, size_t es)
{
    for (size_t k = 0, at = 0; k < n; at += bufs[k++].count)
        TALLY_CHECK(move(comm, type, bufs[k].recvbuf, packed + at * es, bufs[k].count * es));
    return TALLY_SUCCESS;
}

/* One allreduce of a group of tensors: exact, or through the compressor at
 * `offset`, where the group starts in its tensor (compressor.h). */
static tally_status_t reduce(tally_comm_t *comm, const void *sendbuf, void *recvbuf,
                             size_t count, tally_dtype_t dtype, tally_op_t op,
                             tally_compressor_t *codec, size_t offset)
{
    if (count == 0)
        return TALLY_SUCCESS;
    if (codec)
        return tally_call_allreduce_coded(comm, sendbuf, recvbuf, count, dtype, op, codec,
                                          offset);
    return tally_call_allreduce(comm, sendbuf, recvbuf, count, dtype, op);
}

/* Whether `span` grown by `more` elements is in place or has its input
 * and output apart, as one call needs (each tensor was checked alone). */
static bool span_apart(const tally_span_t *span, size_t more, size_t es)
{
    return span->sendbuf == span->recvbuf ||
           tally_bytes_apart(span->sendbuf, span->recvbuf, (span->count + more) * es);
}

/* Tensors averaging fewer bytes than this are packed when the node's ranks
 * have cores of their own: walked, they make the window's copies many
 * short ones into and out of lines that another core reads, which cost far
 * more than the same bytes moved in long runs through a private buffer.
 * On ranks that outnumber the cores, walking stays the faster at every
 * size (packing's two extra copies weigh more there).  The commit that set
 * this has the measurement (bench/fusion on 1 x 2 and 1 x 4). */
#define WALK_MIN_TENSOR_BYTES 3072

/* Whether a group of `tensors` tensors (count > 0) of `bytes` in all is
 * reduced where it lies rather than packed.  Decided on what every rank
 * sees alike (counts, the algorithm, the node's shape), never on where a
 * rank's tensors lie: packing takes a collective step (grow). */
static bool walk_tensors(const tally_comm_t *comm, const tally_call_t *call, size_t tensors,
                         size_t bytes)
{
    if (!call->algo->spans || !comm->groups.shm)
        return false;
    return comm->shape.oversubscription > 1.0 || bytes >= tensors * WALK_MIN_TENSOR_BYTES;
}

/* A group of host tensors, exact, as one call: on the tensors where they
 * lie when they are one stretch of memory or walking them pays
 * (walk_tensors: no copy in or out), else packed into the fusion buffer.
 * Every rank runs the same algorithm on the same vector, so ranks may
 * differ in which of these they take.  *ran is false when the buffer could
 * not grow on some rank: then the caller runs the tensors one by one. */
static tally_status_t run_host_group(tally_comm_t *comm, const tally_buffer_t *bufs, size_t n,
                                     size_t used, tally_dtype_t dtype, tally_op_t op, bool *ran)
{
    const size_t es = tally_dtype_size(dtype);
    tally_span_t *spans = malloc(n * sizeof *spans);
    if (!spans)
        return TALLY_ERR_NO_MEMORY;
    size_t nspans = 0, tensors = 0, at = 0;
    for (size_t k = 0; k < n; at += bufs[k++].count) {
        if (bufs[k].count == 0)
            continue;
        tensors++;
        const char *send = bufs[k].sendbuf == TALLY_IN_PLACE ? bufs[k].recvbuf : bufs[k].sendbuf;
        tally_span_t *last = nspans ? &spans[nspans - 1] : NULL;
        /* Views of one flat buffer, one after the other, make one span,
         * in place or with its input and output apart. */
        if (last && (const char *)last->sendbuf + last->count * es == send &&
            (char *)last->recvbuf + last->count * es == (char *)bufs[k].recvbuf &&
            span_apart(last, bufs[k].count, es))
            last->count += bufs[k].count;
        else
            spans[nspans++] = (tally_span_t){send, bufs[k].recvbuf, at, bufs[k].count};
    }
    tally_call_t call;
    tally_status_t st = tally_call_init(&call, comm, spans[0].sendbuf, spans[0].recvbuf, used,
                                        dtype, op);
    const bool walk = st == TALLY_SUCCESS && walk_tensors(comm, &call, tensors, used * es);
    *ran = true;
    if (st == TALLY_SUCCESS && !walk && !grow(comm, TALLY_MEM_HOST, used * es)) {
        /* Grown even where this rank's tensors are one stretch: the
         * others may need the buffer, and growing is collective. */
        *ran = false;
    } else if (st == TALLY_SUCCESS && nspans == 1) {
        /* One stretch of memory: a plain call on it, whatever the algorithm. */
        st = tally_call_execute(&call);
    } else if (st == TALLY_SUCCESS && walk) {
        call.sendbuf = call.recvbuf = NULL;
        call.spans = spans;
        call.nspans = nspans;
        st = tally_call_execute(&call);
    } else if (st == TALLY_SUCCESS) {
        char *packed = comm->fusion[0].buf;
        call.sendbuf = call.recvbuf = packed;
        st = pack(comm, TALLY_MEM_HOST, packed, bufs, n, es);
        if (st == TALLY_SUCCESS)
            st = tally_call_execute(&call);
        if (st == TALLY_SUCCESS)
            st = unpack(comm, TALLY_MEM_HOST, packed, bufs, n, es);
    }
    free(spans);
    return st;
}

tally_status_t tally_fusion_run(tally_comm_t *comm, const tally_buffer_t *bufs, size_t n,
                                tally_dtype_t dtype, tally_op_t op, tally_compressor_t *codec)
{
    const size_t es = tally_dtype_size(dtype);
    const size_t cap = comm->config.fusion_bytes / es; /* elements */
    size_t offset = 0; /* where tensor i starts in the compressor's tensor */
    for (size_t i = 0; i < n;) {
        /* Tensors i .. j - 1 fit together (every rank sees the same counts
         * and memory types). */
        const tally_memtype_t type = tensor_memtype(comm, &bufs[i]);
        size_t j = i, used = 0;
        while (j < n && bufs[j].count < cap && used + bufs[j].count <= cap &&
               tensor_memtype(comm, &bufs[j]) == type)
            used += bufs[j++].count;
        bool ran = false;
        if (j > i + 1 && used > 0 && type == TALLY_MEM_HOST && !codec)
            TALLY_CHECK(run_host_group(comm, bufs + i, j - i, used, dtype, op, &ran));
        else if (j > i + 1 && used > 0 && grow(comm, type, used * es)) {
            char *packed = comm->fusion[type == TALLY_MEM_DEVICE].buf;
            TALLY_CHECK(pack(comm, type, packed, bufs + i, j - i, es));
            TALLY_CHECK(reduce(comm, TALLY_IN_PLACE, packed, used, dtype, op, codec, offset));
            TALLY_CHECK(unpack(comm, type, packed, bufs + i, j - i, es));
            ran = true;
        }
        if (ran) {
            offset += used;
            i = j;
            continue;
        }
        /* One tensor (a large one, or alone), or no buffer: as it is. */
        const size_t end = j > i ? j : i + 1;
        for (; i < end; offset += bufs[i].count, i++)
            TALLY_CHECK(reduce(comm, bufs[i].sendbuf, bufs[i].recvbuf, bufs[i].count, dtype, op,
                               codec, offset));
    }
    return TALLY_SUCCESS;
}
