"""tally - fast allreduce for MPI programs and distributed training, from Python.

A ctypes binding over libtally.so (no compiler needed): a communicator made
from an mpi4py communicator, blocking and non-blocking allreduce, and
gradient compression with error feedback, on numpy arrays and torch
tensors, CPU or CUDA (zero copy: tally reads and writes the array's own
memory; CUDA tensors where tally loaded its device backend, tally-info).

    from mpi4py import MPI
    import numpy as np, tally
    comm = tally.Comm(MPI.COMM_WORLD)
    g = np.ones(1000, dtype=np.float32)
    comm.allreduce(g, op="avg")                 # in place
    req = comm.iallreduce(g); ...; req.wait()   # overlapped
    z = comm.compressor("topk:0.01", g)         # error feedback per tensor
    z.allreduce(g)

The library is found, in order: TALLY_LIBRARY (a path to libtally.so);
../../build/lib/libtally.so next to this package when it runs from the
source tree (so PYTHONPATH=python is the one variable needed there); the
system's (ctypes.util.find_library, after make install).  See
python/README or tally(7).
"""
import ctypes
import ctypes.util
import os

__all__ = ["Comm", "Request", "Compressor", "TallyError", "library"]


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("TALLY_LIBRARY"),
                  os.path.join(here, "..", "..", "build", "lib", "libtally.so"),
                  ctypes.util.find_library("tally")]
    tried = []
    for path in candidates:
        if not path:
            continue
        tried.append(path)
        try:
            # RTLD_GLOBAL: libtally's MPI symbols resolve against the MPI
            # library mpi4py already loaded.
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
    raise ImportError("tally: cannot load libtally.so (tried %s); set TALLY_LIBRARY to its "
                      "path or run make install" % (", ".join(tried) or "nothing"))


library = _load()
_IN_PLACE = ctypes.c_void_p(1)   # TALLY_IN_PLACE
_p = ctypes.c_void_p
_status = ctypes.c_int

library.tally_strerror.restype = ctypes.c_char_p
library.tally_strerror.argtypes = [_status]
library.tally_dtype_parse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
library.tally_op_parse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
library.tally_comm_create.argtypes = [_p, ctypes.POINTER(_p)]
library.tally_comm_destroy.argtypes = [_p]
library.tally_allreduce.argtypes = [_p, _p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, _p]
library.tally_iallreduce.argtypes = [_p, _p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, _p,
                                     ctypes.POINTER(_p)]
library.tally_wait.argtypes = [ctypes.POINTER(_p)]
library.tally_test.argtypes = [ctypes.POINTER(_p), ctypes.POINTER(ctypes.c_int)]
library.tally_compressor_create.argtypes = [_p, ctypes.c_char_p, ctypes.c_size_t,
                                            ctypes.c_int, ctypes.POINTER(_p)]
library.tally_compressor_destroy.argtypes = [_p]
library.tally_allreduce_compressed.argtypes = [_p, _p, ctypes.c_size_t, ctypes.c_int,
                                               ctypes.c_int, _p]
library.tally_iallreduce_compressed.argtypes = [_p, _p, ctypes.c_size_t, ctypes.c_int,
                                                ctypes.c_int, _p, ctypes.POINTER(_p)]
library.tally_mem_type.argtypes = [_p, _p, ctypes.POINTER(ctypes.c_int)]
library.tally_compressor_bytes.argtypes = [_p, ctypes.POINTER(ctypes.c_size_t),
                                           ctypes.POINTER(ctypes.c_size_t)]
for _name in ("tally_strerror", "tally_dtype_parse", "tally_op_parse", "tally_comm_create",
              "tally_comm_destroy", "tally_allreduce", "tally_iallreduce", "tally_wait",
              "tally_test", "tally_compressor_create", "tally_compressor_destroy",
              "tally_allreduce_compressed", "tally_iallreduce_compressed",
              "tally_compressor_bytes"):
    if _name != "tally_strerror":
        getattr(library, _name).restype = _status


class TallyError(RuntimeError):
    """A tally call failed; .status is its tally_status_t."""

    def __init__(self, what, status):
        self.status = status
        super().__init__("%s: %s" % (what, library.tally_strerror(status).decode()))


def _check(what, status):
    if status != 0:
        raise TallyError(what, status)


def _enum(parse, name, kind):
    value = ctypes.c_int()
    if parse(name.encode(), ctypes.byref(value)) != 0:
        raise ValueError("tally: unknown %s %r" % (kind, name))
    return value.value


# numpy / torch dtype names -> tally's.
_DTYPES = {"int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
           "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64",
           "float16": "float16", "bfloat16": "bfloat16", "float32": "float32",
           "float64": "float64"}


_MEM_DEVICE = 3  # tally_memtype_t's TALLY_MEM_DEVICE


def _view(array, what, comm=None):
    """(address, count, tally dtype) of a contiguous numpy array or torch tensor.
    A CUDA tensor needs comm (a tally_comm_t handle) whose device backend sees
    it; the work queued on its stream is finished first, since tally reads
    device memory on streams of its own."""
    if hasattr(array, "data_ptr") and hasattr(array, "is_contiguous"):  # torch.Tensor
        if not array.is_contiguous():
            raise ValueError("tally: %s is not contiguous (call .contiguous())" % what)
        name = str(array.dtype).replace("torch.", "")
        count, address = array.numel(), array.data_ptr()
        device = getattr(array, "device", None)
        if device is not None and device.type != "cpu" and count > 0:
            kind = ctypes.c_int(-1)
            if (device.type != "cuda" or comm is None or
                    library.tally_mem_type(comm, _p(address), ctypes.byref(kind)) != 0 or
                    kind.value != _MEM_DEVICE):
                raise ValueError("tally: %s is on %s, which tally's device backend does not "
                                 "serve here (tally-info says why)" % (what, device))
            import torch
            torch.cuda.current_stream(device).synchronize()
    elif hasattr(array, "__array_interface__"):  # numpy.ndarray and friends
        if not array.flags["C_CONTIGUOUS"]:
            raise ValueError("tally: %s is not C-contiguous (numpy.ascontiguousarray)" % what)
        if not array.flags["WRITEABLE"]:
            raise ValueError("tally: %s is read-only" % what)
        name = array.dtype.name
        count, address = array.size, array.__array_interface__["data"][0]
    else:
        raise TypeError("tally: %s must be a numpy array or a torch tensor, not %s"
                        % (what, type(array).__name__))
    if name not in _DTYPES:
        raise TypeError("tally: %s has dtype %s, which tally does not reduce (%s)"
                        % (what, name, ", ".join(sorted(_DTYPES))))
    return address, count, _enum(library.tally_dtype_parse, _DTYPES[name], "dtype")


def _buffers(send, recv, what, comm):
    """The C arguments for send (and recv, or in place when None)."""
    s_addr, count, dtype = _view(send, what, comm)
    if recv is None:
        return _IN_PLACE, _p(s_addr), count, dtype
    r_addr, r_count, r_dtype = _view(recv, what + "'s recv", comm)
    if r_count != count or r_dtype != dtype:
        raise ValueError("tally: %s: send and recv differ in size or dtype" % what)
    return _p(s_addr), _p(r_addr), count, dtype


def _run(fn, name, handle, send, recv, op, comm):
    """A blocking call: fn(send, recv, count, dtype, op, handle); its result array."""
    s, r, count, dtype = _buffers(send, recv, name, comm)
    _check(name, fn(s, r, count, dtype, _enum(library.tally_op_parse, op, "op"), handle))
    return send if recv is None else recv


def _start(fn, name, handle, send, recv, op, comm):
    """A started call: fn(..., handle, &request); a Request keeping the arrays."""
    s, r, count, dtype = _buffers(send, recv, name, comm)
    req = _p()
    _check(name, fn(s, r, count, dtype, _enum(library.tally_op_parse, op, "op"), handle,
                    ctypes.byref(req)))
    return Request(req, (send, recv))


class Request:
    """A started call; its arrays stay referenced until it completes."""

    def __init__(self, handle, keep):
        self._handle = handle
        self._keep = keep

    def wait(self):
        if self._handle.value is None:
            return
        _check("tally_wait", library.tally_wait(ctypes.byref(self._handle)))
        self._keep = None

    def test(self):
        """True when complete (then as wait); False while it runs."""
        if self._handle.value is None:
            return True
        done = ctypes.c_int()
        _check("tally_test", library.tally_test(ctypes.byref(self._handle), ctypes.byref(done)))
        if done.value:
            self._keep = None
        return bool(done.value)


class Comm:
    """A tally communicator over an mpi4py communicator (collective)."""

    def __init__(self, mpi_comm):
        from mpi4py import MPI
        self._mpi = mpi_comm
        self._handle = _p()
        _check("tally_comm_create",
               library.tally_comm_create(_p(MPI._handleof(mpi_comm)), ctypes.byref(self._handle)))

    def free(self):
        """Collective: frees the communicator (wait for its requests first)."""
        if self._handle.value is not None:
            _check("tally_comm_destroy", library.tally_comm_destroy(self._handle))
            self._handle = _p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()

    def allreduce(self, send, recv=None, op="sum"):
        """recv = op over all ranks of send (in place on send when recv is None)."""
        return _run(library.tally_allreduce, "tally_allreduce", self._handle, send, recv, op,
                    self._handle)

    def iallreduce(self, send, recv=None, op="sum"):
        """Starts allreduce; returns a Request (wait() before using the result)."""
        return _start(library.tally_iallreduce, "tally_iallreduce", self._handle, send, recv, op,
                      self._handle)

    def compressor(self, spec, like):
        """A compressor (codec spec, tally(7)) for tensors shaped like `like`."""
        return Compressor(self, spec, like)


class Compressor:
    """Gradient compression with error feedback for one tensor (collective)."""

    def __init__(self, comm, spec, like):
        _, count, dtype = _view(like, "the compressor's tensor", comm._handle)
        self._comm = comm
        self._count, self._dtype = count, dtype
        self._handle = _p()
        _check("tally_compressor_create", library.tally_compressor_create(
            comm._handle, spec.encode(), count, dtype, ctypes.byref(self._handle)))

    def free(self):
        if self._handle.value is not None:
            library.tally_compressor_destroy(self._handle)
            self._handle = _p()

    def allreduce(self, send, recv=None, op="sum"):
        return _run(library.tally_allreduce_compressed, "tally_allreduce_compressed",
                    self._handle, send, recv, op, self._comm._handle)

    def iallreduce(self, send, recv=None, op="sum"):
        return _start(library.tally_iallreduce_compressed, "tally_iallreduce_compressed",
                      self._handle, send, recv, op, self._comm._handle)

    def bytes(self):
        """(bytes sent across nodes, bytes uncompressed) on this rank so far."""
        wire, plain = ctypes.c_size_t(), ctypes.c_size_t()
        _check("tally_compressor_bytes", library.tally_compressor_bytes(
            self._handle, ctypes.byref(wire), ctypes.byref(plain)))
        return wire.value, plain.value
