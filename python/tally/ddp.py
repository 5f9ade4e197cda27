"""tally.ddp - a PyTorch DistributedDataParallel communication hook that
allreduces DDP's gradient buckets through tally, optionally compressed.

    import torch.distributed as dist, tally, tally.ddp
    from mpi4py import MPI
    dist.init_process_group("gloo", ...)      # DDP still needs a process group
    model = torch.nn.parallel.DistributedDataParallel(net)
    state = tally.ddp.State(tally.Comm(MPI.COMM_WORLD))             # exact
    state = tally.ddp.State(comm, codec="topk:0.01")                # compressed
    model.register_comm_hook(state, tally.ddp.allreduce_hook)

The hook starts tally_iallreduce (or tally_iallreduce_compressed) of the
bucket's flat buffer in place with op avg and returns a torch Future.  One
waiter thread per State completes the futures in the order the buckets
were started (tally completes a communicator's calls in that order), so
the backward pass goes on computing while tally's progress thread runs the
allreduce; DDP waits on the futures at the end of backward.

Compression keeps error-feedback state per bucket, keyed by the bucket's
index as PyTorch's own PowerSGD hook does: one tally compressor per index,
made again (collectively: every rank sees the same buckets) when DDP
rebuilds its buckets after the first iteration and a bucket's size changes.
Buckets smaller than min_bytes go exact: compressing them saves nothing.

Every rank must register the same hook with the same arguments.  The
buckets may be CPU or CUDA tensors (CUDA: where tally loaded its device
backend; every rank's on the same kind).
"""
import queue
import threading

import torch

__all__ = ["State", "allreduce_hook"]


class State:
    """What the hook needs: a tally.Comm, an optional codec spec (tally(7)
    COMPRESSION) and the smallest bucket, in bytes, worth compressing."""

    def __init__(self, comm, codec=None, min_bytes=64 * 1024):
        self.comm = comm
        self.codec = codec if codec not in (None, "", "none") else None
        self.min_bytes = min_bytes
        self.compressors = {}  # bucket index -> (count, tally.Compressor)
        self._pending = queue.Queue()
        self._waiter = None

    def _compressor(self, index, buffer):
        entry = self.compressors.get(index)
        if entry is not None and entry[0] == buffer.numel():
            return entry[1]
        if entry is not None:  # DDP rebuilt its buckets: this index has a new size
            entry[1].free()
        z = self.comm.compressor(self.codec, buffer)
        self.compressors[index] = (buffer.numel(), z)
        return z

    def _complete(self):
        """The waiter thread: completes each started bucket's future in order."""
        while True:
            request, future, buffer = self._pending.get()
            try:
                request.wait()  # ctypes releases the GIL while tally waits
            except Exception as error:  # noqa: BLE001 - handed to DDP's wait
                future.set_exception(error)
            else:
                future.set_result(buffer)

    def start(self, buffer, index):
        """Starts the allreduce (avg) of one bucket; a Future of the result."""
        if self.codec is not None and buffer.numel() * buffer.element_size() >= self.min_bytes:
            request = self._compressor(index, buffer).iallreduce(buffer, op="avg")
        else:
            request = self.comm.iallreduce(buffer, op="avg")
        future = torch.futures.Future()
        if self._waiter is None:
            self._waiter = threading.Thread(target=self._complete, name="tally-ddp",
                                            daemon=True)
            self._waiter.start()
        self._pending.put((request, future, buffer))
        return future

    def free(self):
        """Frees the compressors (after the last step; collective)."""
        for _, z in self.compressors.values():
            z.free()
        self.compressors = {}


def allreduce_hook(state, bucket):
    """DDP communication hook: the bucket's gradients averaged over the ranks
    by tally (see State)."""
    return state.start(bucket.buffer(), bucket.index())
