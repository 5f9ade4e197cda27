"""test_tally.py - the Python binding (python/tally) under mpirun: blocking
and non-blocking allreduce on numpy arrays, in place and not, several
dtypes and ops, a compressor, identical results on every rank, and clear
errors for what it cannot serve.  Run with PYTHONPATH=python; prints
"test_tally.py: ok" on rank 0 and exits 0, or raises."""
import hashlib
import sys

import numpy as np
from mpi4py import MPI

import tally

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()


def same_everywhere(a):
    h = hashlib.sha256(a.tobytes()).hexdigest()
    return len(set(world.allgather(h))) == 1


def main():
    with tally.Comm(world) as comm:
        expect = size * (size + 1) / 2
        # In place, float32, and the result is returned.
        a = np.full(100003, rank + 1, dtype=np.float32)
        assert comm.allreduce(a) is a
        assert np.all(a == expect), a[:4]
        # Out of place, float64, avg.
        b = np.arange(1000, dtype=np.float64) * (rank + 1)
        r = np.empty_like(b)
        comm.allreduce(b, r, op="avg")
        assert np.allclose(r, np.arange(1000) * expect / size)
        assert same_everywhere(r)
        # int32 max, a 2-D array (contiguous).
        c = np.full((30, 7), rank, dtype=np.int32)
        comm.allreduce(c, op="max")
        assert np.all(c == size - 1)
        # Non-blocking: started together, completed with wait and test.
        reqs, arrays = [], []
        for k in range(4):
            x = np.full(5000 * (k + 1), float(rank + k), dtype=np.float32)
            arrays.append(x)
            reqs.append(comm.iallreduce(x))
        while not reqs[0].test():
            pass
        for q in reqs[1:]:
            q.wait()
        reqs[1].wait()  # a second wait is a no-op
        for k, x in enumerate(arrays):
            assert np.all(x == sum(float(r + k) for r in range(size))), (k, x[:3])
        # A compressor (on one node nothing is compressed: exact).
        g = np.full(4096, rank + 1, dtype=np.float32)
        z = comm.compressor("fp16", g)
        z.allreduce(g)
        assert same_everywhere(g)
        assert np.all(g == expect)  # small integers are exact in fp16
        q = z.iallreduce(g)
        q.wait()
        wire, plain = z.bytes()
        assert wire <= plain
        z.free()
        # Clear errors, nothing sent.
        for bad, kind in ((np.zeros(10, dtype=np.float32)[::2], ValueError),
                          (np.zeros(4, dtype=np.complex64), TypeError),
                          ([1.0, 2.0], TypeError)):
            try:
                comm.allreduce(bad)
            except kind as e:
                assert "tally" in str(e)
            else:
                raise AssertionError("accepted %r" % (bad,))
        try:
            comm.allreduce(np.zeros(4, dtype=np.float32), op="median")
        except ValueError as e:
            assert "op" in str(e)
        else:
            raise AssertionError("accepted op median")
        try:
            comm.allreduce(np.zeros(4, dtype=np.float32), np.zeros(5, dtype=np.float32))
        except ValueError:
            pass
        else:
            raise AssertionError("accepted send and recv of different sizes")
        # A tensor on a device tally's backend does not serve (here: none,
        # or a pointer it does not know) is refused, never read.
        class FakeDevice:
            type = "cuda"

        class FakeCudaTensor:
            device = FakeDevice()
            dtype = "torch.float32"

            def is_contiguous(self):
                return True

            def numel(self):
                return 4

            def data_ptr(self):
                return 4096  # not memory of this process: must not be touched

        try:
            comm.allreduce(FakeCudaTensor())
        except ValueError as e:
            assert "device backend" in str(e) and "tally-info" in str(e), str(e)
        else:
            raise AssertionError("accepted a CUDA tensor without a device backend")
        try:
            comm.compressor("zip", np.zeros(4, dtype=np.float32))
        except tally.TallyError as e:
            assert e.status == -13 and "argument" in str(e), str(e)
        else:
            raise AssertionError("accepted codec zip")
    if rank == 0:
        print("test_tally.py: ok (%d ranks)" % size)


if __name__ == "__main__":
    main()
    sys.exit(0)
