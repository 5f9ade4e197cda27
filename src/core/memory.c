/* memory.c - tally_mem_*: device and pinned memory through a
 * communicator's backend (mem/device.h), for tools and tests that must not
 * link a device runtime of their own. */
#include "comm.h"
#include "log.h"

#include <string.h>

/* comm's backend, or TALLY_ERR_UNSUPPORTED with the reason logged. */
static tally_status_t backend_of(const char *fn, const tally_comm_t *comm)
{
    if (!comm) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "%s: comm is NULL", fn);
        return TALLY_ERR_NULL_COMM;
    }
    if (!comm->device.backend) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: no device backend: %s", fn, comm->device.why);
        return TALLY_ERR_UNSUPPORTED;
    }
    return TALLY_SUCCESS;
}

/* A backend's failure as a status, logged. */
static tally_status_t device_error(const char *fn, const tally_comm_t *comm, const char *err)
{
    if (!err)
        return TALLY_SUCCESS;
    TALLY_LOG(comm, TALLY_LOG_ERROR, "%s: %s backend: %s", fn, comm->device.backend->name, err);
    return TALLY_ERR_DEVICE;
}

tally_status_t tally_mem_type(tally_comm_t *comm, const void *ptr, tally_memtype_t *type)
{
    if (!comm)
        return TALLY_ERR_NULL_COMM;
    if (!type)
        return TALLY_ERR_INVALID_ARGUMENT;
    *type = tally_mem_classify(&comm->device, ptr);
    return TALLY_SUCCESS;
}

tally_status_t tally_mem_alloc(tally_comm_t *comm, tally_memtype_t type, size_t bytes, void **ptr)
{
    const char *fn = "tally_mem_alloc";
    if (!ptr)
        return TALLY_ERR_INVALID_ARGUMENT;
    TALLY_CHECK(backend_of(fn, comm));
    if (type != TALLY_MEM_DEVICE && type != TALLY_MEM_PINNED) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "%s: type %d; TALLY_MEM_DEVICE or TALLY_MEM_PINNED (host memory comes from "
                  "malloc)", fn, (int)type);
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    void *p = NULL;
    const tally_device_t *dev = &comm->device;
    TALLY_CHECK(device_error(fn, comm, dev->backend->alloc(dev->ctx, type, bytes, &p)));
    *ptr = p;
    return TALLY_SUCCESS;
}

tally_status_t tally_mem_free(tally_comm_t *comm, void *ptr)
{
    if (!ptr)
        return TALLY_SUCCESS;
    TALLY_CHECK(backend_of("tally_mem_free", comm));
    const tally_device_t *dev = &comm->device;
    return device_error("tally_mem_free", comm, dev->backend->free(dev->ctx, ptr));
}

tally_status_t tally_mem_copy(tally_comm_t *comm, void *dst, const void *src, size_t bytes)
{
    if (!comm)
        return TALLY_ERR_NULL_COMM;
    if (bytes == 0)
        return TALLY_SUCCESS;
    if (!dst || !src)
        return TALLY_ERR_NULL_BUFFER;
    const tally_device_t *dev = &comm->device;
    if (!dev->backend) { /* everything is host memory */
        memmove(dst, src, bytes);
        return TALLY_SUCCESS;
    }
    return device_error("tally_mem_copy", comm, dev->backend->copy(dev->ctx, dst, src, bytes));
}
