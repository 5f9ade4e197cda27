/* nccl.c - the CUDA plugin's NCCL functions (mem/device.h).  NCCL is
 * optional at run time as CUDA is for libtally.so: libnccl.so.2 is opened
 * with dlopen when the plugin is (the build's NCCL directory first, then
 * the loader's path), and a node without it runs the other device
 * algorithms.  Built without nccl.h (configure --without-nccl), every
 * function says so. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nccl_api.h"

#if TALLY_HAVE_NCCL
#include <nccl.h>

_Static_assert(sizeof(ncclUniqueId) <= TALLY_NCCL_ID_BYTES, "the id fits");

struct tally_nccl_lib {
    void *lib;
    char why[256];
    ncclResult_t (*get_unique_id)(ncclUniqueId *id);
    ncclResult_t (*init_rank)(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
    ncclResult_t (*all_reduce)(const void *send, void *recv, size_t count, ncclDataType_t type,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
    ncclResult_t (*destroy)(ncclComm_t comm);
    ncclResult_t (*abort)(ncclComm_t comm);
    ncclResult_t (*async_error)(ncclComm_t comm, ncclResult_t *error);
    const char *(*error_string)(ncclResult_t result);
};

typedef struct nccl_comm {
    ncclComm_t comm;
    cudaStream_t stream;
} nccl_comm_t;

tally_nccl_lib_t *tally_nccl_load(void)
{
    tally_nccl_lib_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->lib = dlopen(TALLY_NCCL_LIBDIR "/libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!n->lib)
        n->lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        snprintf(n->why, sizeof n->why, "NCCL: %s", dlerror());
        return n;
    }
#define SYMBOL(field, name)                                                        \
    if (!(*(void **)&n->field = dlsym(n->lib, name))) {                           \
        snprintf(n->why, sizeof n->why, "NCCL: libnccl.so.2 has no %s", name);   \
        dlclose(n->lib);                                                           \
        n->lib = NULL;                                                             \
        return n;                                                                  \
    }
    SYMBOL(get_unique_id, "ncclGetUniqueId")
    SYMBOL(init_rank, "ncclCommInitRank")
    SYMBOL(all_reduce, "ncclAllReduce")
    SYMBOL(destroy, "ncclCommDestroy")
    SYMBOL(abort, "ncclCommAbort")
    SYMBOL(async_error, "ncclCommGetAsyncError")
    SYMBOL(error_string, "ncclGetErrorString")
#undef SYMBOL
    return n;
}

void tally_nccl_unload(tally_nccl_lib_t *n)
{
    if (!n)
        return;
    if (n->lib)
        dlclose(n->lib);
    free(n);
}

const char *tally_nccl_missing(const tally_nccl_lib_t *n)
{
    if (!n)
        return "NCCL: out of memory";
    return n->lib ? NULL : n->why;
}

static const char *nccl_why(const tally_nccl_lib_t *n, ncclResult_t r)
{
    return r == ncclSuccess ? NULL : n->error_string(r);
}

const char *tally_nccl_id(const tally_nccl_lib_t *n, unsigned char id[TALLY_NCCL_ID_BYTES])
{
    const char *err = tally_nccl_missing(n);
    if (err)
        return err;
    ncclUniqueId u;
    err = nccl_why(n, n->get_unique_id(&u));
    if (!err) {
        memset(id, 0, TALLY_NCCL_ID_BYTES);
        memcpy(id, &u, sizeof u);
    }
    return err;
}

const char *tally_nccl_join(const tally_nccl_lib_t *n, const unsigned char id[TALLY_NCCL_ID_BYTES],
                            int size, int rank, void **out)
{
    const char *err = tally_nccl_missing(n);
    if (err)
        return err;
    nccl_comm_t *c = calloc(1, sizeof *c);
    if (!c)
        return "out of memory";
    if (cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking) != cudaSuccess) {
        free(c);
        return cudaGetErrorString(cudaGetLastError());
    }
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    err = nccl_why(n, n->init_rank(&c->comm, size, u, rank));
    if (err) {
        cudaStreamDestroy(c->stream);
        free(c);
        return err;
    }
    *out = c;
    return NULL;
}

void tally_nccl_leave(const tally_nccl_lib_t *n, void *handle)
{
    nccl_comm_t *c = handle;
    if (!c)
        return;
    n->destroy(c->comm);
    cudaStreamDestroy(c->stream);
    free(c);
}

static int nccl_type(tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_INT8: return ncclInt8;
    case TALLY_UINT8: return ncclUint8;
    case TALLY_INT32: return ncclInt32;
    case TALLY_UINT32: return ncclUint32;
    case TALLY_INT64: return ncclInt64;
    case TALLY_UINT64: return ncclUint64;
    case TALLY_FLOAT16: return ncclFloat16;
    case TALLY_BFLOAT16: return ncclBfloat16;
    case TALLY_FLOAT32: return ncclFloat32;
    case TALLY_FLOAT64: return ncclFloat64;
    case TALLY_INT16:
    case TALLY_UINT16: break;
    }
    return -1;
}

static int nccl_op(tally_op_t op)
{
    switch (op) {
    case TALLY_SUM:
    case TALLY_AVG: return ncclSum;
    case TALLY_PROD: return ncclProd;
    case TALLY_MIN: return ncclMin;
    case TALLY_MAX: return ncclMax;
    default: return -1;
    }
}

const char *tally_nccl_allreduce(const tally_nccl_lib_t *n, void *handle, const void *send,
                                 void *recv, size_t count, tally_dtype_t dtype, tally_op_t op)
{
    nccl_comm_t *c = handle;
    const int type = nccl_type(dtype), red = nccl_op(op);
    if (type < 0 || red < 0)
        return "NCCL has no such dtype or op"; /* excluded by the algorithm's restrictions */
    const char *err = nccl_why(n, n->all_reduce(send, recv, count, (ncclDataType_t)type,
                                                (ncclRedOp_t)red, c->comm, c->stream));
    if (err)
        return err;
    if (cudaStreamSynchronize(c->stream) != cudaSuccess)
        return cudaGetErrorString(cudaGetLastError());
    ncclResult_t async = ncclSuccess;
    n->async_error(c->comm, &async);
    return nccl_why(n, async);
}

#else /* built without NCCL */

#define NO_NCCL "built without NCCL (configure found no nccl.h)"

tally_nccl_lib_t *tally_nccl_load(void)
{
    return NULL;
}

void tally_nccl_unload(tally_nccl_lib_t *n)
{
    (void)n;
}

const char *tally_nccl_missing(const tally_nccl_lib_t *n)
{
    (void)n;
    return NO_NCCL;
}

const char *tally_nccl_id(const tally_nccl_lib_t *n, unsigned char id[TALLY_NCCL_ID_BYTES])
{
    (void)n, (void)id;
    return NO_NCCL;
}

const char *tally_nccl_join(const tally_nccl_lib_t *n, const unsigned char id[TALLY_NCCL_ID_BYTES],
                            int size, int rank, void **out)
{
    (void)n, (void)id, (void)size, (void)rank, (void)out;
    return NO_NCCL;
}

void tally_nccl_leave(const tally_nccl_lib_t *n, void *handle)
{
    (void)n, (void)handle;
}

const char *tally_nccl_allreduce(const tally_nccl_lib_t *n, void *handle, const void *send,
                                 void *recv, size_t count, tally_dtype_t dtype, tally_op_t op)
{
    (void)n, (void)handle, (void)send, (void)recv, (void)count, (void)dtype, (void)op;
    return NO_NCCL;
}

#endif
