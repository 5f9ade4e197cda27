/* mpi.c - the host MPI's own allreduce (PMPI_Allreduce), a candidate like
 * the others: tally chooses it where the MPI is as fast, and users compare
 * against it.
 *
 * MPI counts are int, so a larger count runs as several calls of at most
 * INT_MAX elements (element-wise, so the split changes nothing).  AVG is a
 * SUM followed by a division that every rank does on identical bits.
 * Cost and step table: whatever the MPI's own selection does.  The model
 * follows Open MPI 4.x's coll/tuned: recursive doubling for short vectors
 * (priced like tally's, without tally's per-call cost), a ring or
 * Rabenseifner without tally's pipelining beyond (priced as tally's ring
 * times mpi_factor, 1.3 by default; TALLY_CALIBRATE=1 fits the factor to
 * PMPI_Allreduce timed on the communicator at two sizes, since the MPI's
 * selection may change algorithm between them).
 * Restrictions: host memory; no float16/bfloat16 (no MPI datatype); no 8-
 * or 16-bit integers: Open MPI 4.1's AVX kernels (op/avx) saturate 8- and
 * 16-bit SUMs, open-mpi/ompi#8045, where tally wraps (checked on 4.1.4 with
 * 2 ranks: int16 30000 + 10000 gave 32767 and uint16 60000 + 10000 gave
 * 65535 in every full vector, while the scalar tail wrapped); no MIN/MAX on
 * floating types (the MPI does not promise tally's NaN propagation).  The
 * bitwise and logical ops map to MPI_BAND ... MPI_LXOR, whose logical
 * results are 1 or 0 in the element type as in tally.
 */
#include "algo.h"

#include <limits.h>
#include <math.h>

#include "../core/log.h"
#include "../transport/p2p.h"

/* Indexed by tally_dtype_t; MPI_DATATYPE_NULL where MPI has no equivalent
 * (excluded by the restrictions below). */
static MPI_Datatype mpi_datatype(tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_INT8: return MPI_INT8_T;
    case TALLY_UINT8: return MPI_UINT8_T;
    case TALLY_INT16: return MPI_INT16_T;
    case TALLY_UINT16: return MPI_UINT16_T;
    case TALLY_INT32: return MPI_INT32_T;
    case TALLY_UINT32: return MPI_UINT32_T;
    case TALLY_INT64: return MPI_INT64_T;
    case TALLY_UINT64: return MPI_UINT64_T;
    case TALLY_FLOAT32: return MPI_FLOAT;
    case TALLY_FLOAT64: return MPI_DOUBLE;
    case TALLY_FLOAT16:
    case TALLY_BFLOAT16: break;
    }
    return MPI_DATATYPE_NULL;
}

static MPI_Op mpi_op(tally_op_t op)
{
    switch (op) {
    case TALLY_SUM:
    case TALLY_AVG: return MPI_SUM;
    case TALLY_PROD: return MPI_PROD;
    case TALLY_MIN: return MPI_MIN;
    case TALLY_MAX: return MPI_MAX;
    case TALLY_BAND: return MPI_BAND;
    case TALLY_BOR: return MPI_BOR;
    case TALLY_BXOR: return MPI_BXOR;
    case TALLY_LAND: return MPI_LAND;
    case TALLY_LOR: return MPI_LOR;
    case TALLY_LXOR: return MPI_LXOR;
    }
    return MPI_OP_NULL;
}

static tally_status_t mpi_run(tally_call_t *call)
{
    const bool in_place = call->sendbuf == call->recvbuf;
    const MPI_Datatype type = mpi_datatype(call->dtype);
    const MPI_Op op = mpi_op(call->op);
    for (size_t done = 0; done < call->count;) {
        size_t left = call->count - done;
        int n = left > (size_t)INT_MAX ? INT_MAX : (int)left;
        size_t off = done * call->elem_size;
        const void *send = in_place ? MPI_IN_PLACE : (const char *)call->sendbuf + off;
        if (call->watch) { /* TALLY_TIMEOUT: started, then waited for with a deadline */
            MPI_Request req;
            TALLY_MPI_CHECK(call->comm, PMPI_Iallreduce(send, (char *)call->recvbuf + off, n,
                                                        type, op, call->mpi, &req));
            TALLY_CHECK(tally_p2p_wait_watched(call, 1, &req, true, NULL, NULL,
                                               "the MPI's allreduce", -1));
        } else {
            TALLY_MPI_CHECK(call->comm, PMPI_Allreduce(send, (char *)call->recvbuf + off, n,
                                                       type, op, call->mpi));
        }
        done += (size_t)n;
    }
    tally_call_finish(call, call->recvbuf, call->count);
    return TALLY_SUCCESS;
}

bool tally_algo_mpi_direct(const tally_call_t *call, MPI_Datatype *type, MPI_Op *op)
{
    if (call->op == TALLY_AVG || call->count > (size_t)INT_MAX)
        return false;
    *type = mpi_datatype(call->dtype);
    *op = mpi_op(call->op);
    return true;
}

#define MPI_DTYPES                                                                \
    (TALLY_DTYPE_BIT(TALLY_INT32) | TALLY_DTYPE_BIT(TALLY_UINT32) |               \
     TALLY_DTYPE_BIT(TALLY_INT64) | TALLY_DTYPE_BIT(TALLY_UINT64) |               \
     TALLY_DTYPE_BIT(TALLY_FLOAT32) | TALLY_DTYPE_BIT(TALLY_FLOAT64))

extern const tally_algo_t tally_algo_ring;
extern const tally_algo_t tally_algo_recursive_doubling;

static double mpi_predict(const tally_cost_t *c)
{
    const tally_model_t *m = c->model;
    if (c->bytes < (double)m->mpi_latency_bytes)
        return tally_algo_recursive_doubling.predict(c) - tally_cost_call(c);
    double factor = m->mpi_factor;
    if (m->mpi_seconds[0] > 0.0) {
        /* Calibrated: the ratio of a measured call to tally's ring at each
         * of two sizes, on this shape; between them interpolated on the
         * log of the size, outside them the nearer one. */
        double f[2], x[2];
        for (int s = 0; s < 2; s++) {
            tally_cost_t at = tally_cost_make(m, c->shape, m->mpi_bytes[s]);
            f[s] = m->mpi_seconds[s] / tally_algo_ring.predict(&at);
            x[s] = log((double)m->mpi_bytes[s]);
        }
        const double w = x[1] > x[0] ? (log(c->bytes) - x[0]) / (x[1] - x[0]) : 1.0;
        factor = w <= 0.0 ? f[0] : w >= 1.0 ? f[1] : f[0] + w * (f[1] - f[0]);
    }
    return tally_algo_ring.predict(c) * factor - tally_cost_call(c);
}

const tally_algo_t tally_algo_mpi = {
    .name = "mpi",
    .summary = "the MPI library's own allreduce, called as PMPI_Allreduce",
    .restrictions = {MPI_DTYPES, TALLY_ALL_OPS,
                     TALLY_ALGO_HOST_ONLY | TALLY_ALGO_NO_FLOAT_MINMAX,
                     "no float16/bfloat16 (no MPI type), no 8- or 16-bit "
                     "integers (Open MPI 4.1 saturates their sums), no float "
                     "MIN/MAX (NaN handling), host memory only"},
    .run = mpi_run,
    .predict = mpi_predict,
};
