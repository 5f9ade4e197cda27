/* fusion.c - tally_allreduce_multi (see fusion.h).  The buffer belongs to
 * the communicator and grows on demand up to TALLY_FUSION_BYTES; growing
 * is agreed by every rank (one small allreduce), since a rank that could
 * not grow would otherwise run the tensors one by one while the others
 * run them packed. */
#include "fusion.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "compressor.h"
#include "dtype.h"
#include "entry.h"
#include "log.h"

tally_status_t tally_fusion_check(const char *fn, const tally_buffer_t *bufs, size_t n,
                                  tally_dtype_t dtype, tally_op_t op, const tally_comm_t *comm)
{
    TALLY_CHECK(tally_check_arguments(fn, comm, 0, dtype, op));
    if (n && !bufs) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: bufs is NULL with n = %zu", fn, n);
        return TALLY_ERR_NULL_BUFFER;
    }
    for (size_t i = 0; i < n; i++) {
        tally_status_t st = tally_check_call(fn, bufs[i].sendbuf, bufs[i].recvbuf,
                                             bufs[i].count, dtype, op, comm);
        if (st != TALLY_SUCCESS) {
            TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: tensor %zu of %zu is refused", fn, i, n);
            return st;
        }
    }
    return TALLY_SUCCESS;
}

/* The buffer holds at least `bytes` on every rank, or on none (then the
 * tensors run one by one everywhere). */
static bool grow(tally_comm_t *comm, size_t bytes)
{
    int ok = 1;
    if (bytes > comm->fusion_bytes) {
        void *p = realloc(comm->fusion, bytes);
        ok = p != NULL;
        if (p) {
            comm->fusion = p;
            comm->fusion_bytes = bytes;
        }
        int all = 0;
        if (PMPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, comm->mpi) != MPI_SUCCESS)
            return false;
        ok = all;
    }
    return ok;
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

tally_status_t tally_fusion_run(tally_comm_t *comm, const tally_buffer_t *bufs, size_t n,
                                tally_dtype_t dtype, tally_op_t op, tally_compressor_t *codec)
{
    const size_t es = tally_dtype_size(dtype);
    const size_t cap = comm->config.fusion_bytes / es; /* elements */
    size_t offset = 0; /* where tensor i starts in the compressor's tensor */
    for (size_t i = 0; i < n;) {
        /* Tensors i .. j - 1 fit together (every rank sees the same counts). */
        size_t j = i, used = 0;
        while (j < n && bufs[j].count < cap && used + bufs[j].count <= cap)
            used += bufs[j++].count;
        if (j <= i + 1 || !grow(comm, used * es)) {
            /* One tensor (a large one, or alone), or no buffer: as it is. */
            const size_t end = j > i ? j : i + 1;
            for (; i < end; offset += bufs[i].count, i++)
                TALLY_CHECK(reduce(comm, bufs[i].sendbuf, bufs[i].recvbuf, bufs[i].count, dtype,
                                   op, codec, offset));
            continue;
        }
        char *packed = comm->fusion;
        size_t at = 0;
        for (size_t k = i; k < j; k++) {
            const void *src = bufs[k].sendbuf == TALLY_IN_PLACE ? bufs[k].recvbuf
                                                                : bufs[k].sendbuf;
            memcpy(packed + at * es, src, bufs[k].count * es);
            at += bufs[k].count;
        }
        TALLY_CHECK(reduce(comm, TALLY_IN_PLACE, packed, used, dtype, op, codec, offset));
        at = 0;
        for (size_t k = i; k < j; k++) {
            memcpy(bufs[k].recvbuf, packed + at * es, bufs[k].count * es);
            at += bufs[k].count;
        }
        offset += used;
        i = j;
    }
    return TALLY_SUCCESS;
}
