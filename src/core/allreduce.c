/* allreduce.c - tally_allreduce(): validate, then the internal entry
 * (call.h) builds the call object and runs it. */
#include <stdbool.h>
#include <stddef.h>

#include "../algo/algo.h"
#include "../select/select.h"
#include "entry.h"
#include "comm.h"
#include "compressor.h"
#include "dtype.h"
#include "log.h"
#include "fusion.h"

/* Within PTRDIFF_MAX bytes, so that buffer arithmetic (the overlap check,
 * offsets into a buffer) cannot wrap: no object is larger. */
static tally_status_t count_fits(const char *fn, const tally_comm_t *comm, size_t count,
                                 tally_dtype_t dtype)
{
    /* No element is larger than 8 bytes: the division only for a count
     * that could be too large. */
    if (count > (size_t)PTRDIFF_MAX / 8 && count > (size_t)PTRDIFF_MAX / tally_dtype_size(dtype)) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "%s: count %zu of %s is more than PTRDIFF_MAX bytes, larger than any buffer",
                  fn, count, tally_dtype_name(dtype));
        return TALLY_ERR_COUNT_TOO_LARGE;
    }
    return TALLY_SUCCESS;
}

tally_status_t tally_check_arguments(const char *fn, const tally_comm_t *comm, size_t count,
                                     tally_dtype_t dtype, tally_op_t op)
{
    if (!comm) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "%s: comm is NULL", fn);
        return TALLY_ERR_NULL_COMM;
    }
    if (!tally_dtype_valid(dtype)) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: dtype %d is not a tally_dtype_t", fn, (int)dtype);
        return TALLY_ERR_INVALID_DTYPE;
    }
    if (!tally_op_valid(op)) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: op %d is not a tally_op_t", fn, (int)op);
        return TALLY_ERR_INVALID_OP;
    }
    if (!tally_op_defined_on(op, dtype)) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: %s is defined on %s types only, not %s", fn,
                  tally_op_name(op), op == TALLY_AVG ? "floating" : "integer",
                  tally_dtype_name(dtype));
        return TALLY_ERR_OP_DTYPE_MISMATCH;
    }
    return count_fits(fn, comm, count, dtype);
}

/* The fast path: comm->direct's PMPI_Allreduce on checked buffers,
 * numbered like any other call. */
static tally_status_t run_direct(tally_comm_t *comm, const void *sendbuf, void *recvbuf)
{
    const tally_direct_t *d = &comm->direct;
    comm->next_seq++;
    TALLY_MPI_CHECK(comm, PMPI_Allreduce(sendbuf == TALLY_IN_PLACE ? MPI_IN_PLACE : sendbuf,
                                         recvbuf, (int)d->count, d->type, d->mpi_op,
                                         comm->mpi));
    return TALLY_SUCCESS;
}

tally_status_t tally_check_call(const char *fn, const void *sendbuf, const void *recvbuf,
                                size_t count, tally_dtype_t dtype, tally_op_t op,
                                const tally_comm_t *comm)
{
    /* Count 0 here: tally_check_buffers checks the count's size. */
    TALLY_CHECK(tally_check_arguments(fn, comm, 0, dtype, op));
    return tally_check_buffers(fn, sendbuf, recvbuf, count, dtype, comm);
}

tally_status_t tally_check_buffers(const char *fn, const void *sendbuf, const void *recvbuf,
                                   size_t count, tally_dtype_t dtype, const tally_comm_t *comm)
{
    if (count == 0)
        return TALLY_SUCCESS;
    TALLY_CHECK(count_fits(fn, comm, count, dtype));
    const size_t es = tally_dtype_size(dtype);
    if (recvbuf == TALLY_IN_PLACE) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "%s: TALLY_IN_PLACE goes in sendbuf, not recvbuf", fn);
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    if (!sendbuf || !recvbuf) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: %s is NULL with count %zu", fn,
                  sendbuf ? "recvbuf" : "sendbuf", count);
        return TALLY_ERR_NULL_BUFFER;
    }
    if (sendbuf != TALLY_IN_PLACE && !tally_bytes_apart(sendbuf, recvbuf, count * es)) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "%s: sendbuf and recvbuf overlap%s; pass "
                  "TALLY_IN_PLACE as sendbuf to reduce in place",
                  fn, sendbuf == recvbuf ? " (they are the same buffer)" : "");
        return TALLY_ERR_ALIASED_BUFFERS;
    }
    return TALLY_SUCCESS;
}

tally_status_t tally_allreduce(const void *sendbuf, void *recvbuf, size_t count,
                               tally_dtype_t dtype, tally_op_t op, tally_comm_t *comm)
{
    /* The fast path: a repeat of the last call that was one PMPI_Allreduce;
     * the memo holds only checked dtype, op and count, so what is left to
     * check is the buffers (any failure takes the slow path, which says
     * what is wrong). */
    if (comm) /* after the calls started before it */
        tally_comm_drain(comm);
    if (comm && comm->direct.valid && count == comm->direct.count &&
        dtype == comm->direct.dtype && op == comm->direct.op &&
        tally_buffers_ok(sendbuf, recvbuf, comm->direct.bytes))
        return run_direct(comm, sendbuf, recvbuf);
    const tally_status_t st =
        tally_check_call("tally_allreduce", sendbuf, recvbuf, count, dtype, op, comm);
    if (comm && comm->config.check && (st != TALLY_SUCCESS || count == 0))
        return tally_call_check_unbuilt(comm, count, dtype, op, sendbuf == TALLY_IN_PLACE, st);
    if (st != TALLY_SUCCESS || count == 0)
        return st;
    return tally_call_allreduce(comm, sendbuf, recvbuf, count, dtype, op);
}

/* Whether c serves count elements of dtype reduced with op (c non-NULL). */
static tally_status_t compressor_fits(const char *fn, const tally_compressor_t *c, size_t count,
                                      tally_dtype_t dtype, tally_op_t op)
{
    if (count != c->count || dtype != c->dtype) {
        TALLY_LOG(c->comm, TALLY_LOG_ERROR,
                  "%s: the compressor serves %zu elements of %s, not %zu of %s", fn, c->count,
                  tally_dtype_name(c->dtype), count, tally_dtype_name(dtype));
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    if (op != TALLY_SUM && op != TALLY_AVG) {
        TALLY_LOG(c->comm, TALLY_LOG_ERROR, "%s: op %s; compression serves SUM and AVG only", fn,
                  tally_op_name(op));
        return TALLY_ERR_UNSUPPORTED;
    }
    return TALLY_SUCCESS;
}

static tally_status_t compressor_given(const char *fn, const tally_compressor_t *c)
{
    if (c)
        return TALLY_SUCCESS;
    TALLY_LOG(NULL, TALLY_LOG_ERROR, "%s: the compressor is NULL", fn);
    return TALLY_ERR_INVALID_ARGUMENT;
}

tally_status_t tally_check_compressed(const char *fn, const void *sendbuf, const void *recvbuf,
                                      size_t count, tally_dtype_t dtype, tally_op_t op,
                                      const tally_compressor_t *c)
{
    TALLY_CHECK(compressor_given(fn, c));
    TALLY_CHECK(tally_check_call(fn, sendbuf, recvbuf, count, dtype, op, c->comm));
    return compressor_fits(fn, c, count, dtype, op);
}

tally_status_t tally_allreduce_compressed(const void *sendbuf, void *recvbuf, size_t count,
                                          tally_dtype_t dtype, tally_op_t op,
                                          tally_compressor_t *c)
{
    TALLY_CHECK(tally_check_compressed("tally_allreduce_compressed", sendbuf, recvbuf, count,
                                       dtype, op, c));
    tally_comm_drain(c->comm); /* after the calls started before it */
    if (count == 0)
        return TALLY_SUCCESS;
    c->calls++;
    return tally_call_allreduce_coded(c->comm, sendbuf, recvbuf, count, dtype, op, c, 0);
}

tally_status_t tally_allreduce_multi(const tally_buffer_t *bufs, size_t n, tally_dtype_t dtype,
                                     tally_op_t op, tally_comm_t *comm)
{
    TALLY_CHECK(tally_fusion_check("tally_allreduce_multi", bufs, n, dtype, op, comm));
    tally_comm_drain(comm); /* after the calls started before it */
    return tally_fusion_run(comm, bufs, n, dtype, op, NULL);
}

tally_status_t tally_allreduce_multi_compressed(const tally_buffer_t *bufs, size_t n,
                                                tally_dtype_t dtype, tally_op_t op,
                                                tally_compressor_t *c)
{
    const char *fn = "tally_allreduce_multi_compressed";
    TALLY_CHECK(compressor_given(fn, c));
    TALLY_CHECK(tally_fusion_check(fn, bufs, n, dtype, op, c->comm));
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += bufs[i].count;
    /* The compressor's tensor is the tensors end to end. */
    TALLY_CHECK(compressor_fits(fn, c, total, dtype, op));
    tally_comm_drain(c->comm); /* after the calls started before it */
    c->calls++;
    return tally_fusion_run(c->comm, bufs, n, dtype, op, c);
}

tally_status_t tally_comm_get_algorithm_on(tally_comm_t *comm, tally_memtype_t memtype,
                                           size_t count, tally_dtype_t dtype, tally_op_t op,
                                           const char **name)
{
    const char *fn = "tally_comm_get_algorithm";
    if (!name)
        return TALLY_ERR_INVALID_ARGUMENT;
    TALLY_CHECK(tally_check_arguments(fn, comm, count, dtype, op));
    if ((unsigned)memtype > TALLY_MEM_DEVICE) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: memtype %d is not a tally_memtype_t", fn,
                  (int)memtype);
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    if (memtype == TALLY_MEM_DEVICE && !comm->device.backend) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: device memory, but no device backend: %s", fn,
                  comm->device.why);
        return TALLY_ERR_UNSUPPORTED;
    }
    tally_comm_drain(comm); /* the selection's state is the running calls' too */
    size_t es = tally_dtype_size(dtype);
    tally_choice_t choice;
    TALLY_CHECK(tally_select(&comm->sel, count * es, dtype, op, tally_mem_reach(memtype), true,
                             &choice));
    *name = choice.algo->name;
    return TALLY_SUCCESS;
}

tally_status_t tally_comm_get_algorithm(tally_comm_t *comm, size_t count,
                                        tally_dtype_t dtype, tally_op_t op,
                                        const char **name)
{
    return tally_comm_get_algorithm_on(comm, TALLY_MEM_HOST, count, dtype, op, name);
}
