"""allreduce_mpi4py.py - Debian's mpi4py (a program nobody here wrote)
calling comm.Allreduce on numpy arrays, for running under
libtally-preload.so.  Checks every result against numpy; prints one line
per case and "mpi4py: N wrong results"; exits 1 on any wrong result."""
import sys

try:
    import numpy as np
    from mpi4py import MPI
except ImportError as e:  # the runner turns this into SKIP
    print("SKIP: cannot import mpi4py and numpy with %s: %s" % (sys.executable, e))
    sys.exit(77)

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
wrong = 0

split = world.Split(rank % 2, rank)
rev = world.Split(0, size - rank)
dup = world.Dup()
comms = [("world", world), ("split", split), ("reversed", rev), ("dup", dup),
         ("self", MPI.COMM_SELF)]

# Values keep 8-bit sums and products from overflowing on 5 ranks.
def contribution(op, dtype, r, n, salt):
    rng = np.random.default_rng([salt, r])
    kind = np.dtype(dtype).kind
    if op is MPI.SUM:
        v = rng.integers(0 if kind == "u" else -3, 4, n)
    elif op is MPI.PROD:
        v = rng.choice([1, 2] if kind == "u" else [1, -1, 2], n)
    elif op in (MPI.MIN, MPI.MAX):
        v = rng.integers(0 if kind == "u" else -100, 101, n)
    elif op in (MPI.LAND, MPI.LOR, MPI.LXOR):
        v = rng.integers(0, 3, n)
    else:
        v = rng.integers(0, 1 << 62, n, dtype=np.int64)
    return v.astype(dtype)

def reference(op, vals):
    acc = vals[0].copy()
    if len(vals) > 1 and op in (MPI.LAND, MPI.LOR, MPI.LXOR):
        acc = (acc != 0).astype(acc.dtype)
    for v in vals[1:]:
        if op is MPI.SUM: acc = acc + v
        elif op is MPI.PROD: acc = acc * v
        elif op is MPI.MIN: acc = np.minimum(acc, v)
        elif op is MPI.MAX: acc = np.maximum(acc, v)
        elif op is MPI.BAND: acc = acc & v
        elif op is MPI.BOR: acc = acc | v
        elif op is MPI.BXOR: acc = acc ^ v
        elif op is MPI.LAND: acc = ((acc != 0) & (v != 0)).astype(acc.dtype)
        elif op is MPI.LOR: acc = ((acc != 0) | (v != 0)).astype(acc.dtype)
        else: acc = ((acc != 0) ^ (v != 0)).astype(acc.dtype)
    return acc

ints = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
floats = [np.float32, np.float64]
arith = [MPI.SUM, MPI.PROD, MPI.MIN, MPI.MAX]
bitwise = [MPI.BAND, MPI.BOR, MPI.BXOR, MPI.LAND, MPI.LOR, MPI.LXOR]
def _sum(inbuf, inoutbuf, datatype):
    a = np.frombuffer(inbuf, dtype=np.int32)
    b = np.frombuffer(inoutbuf, dtype=np.int32)
    b += a

user_sum = MPI.Op.Create(_sum, commute=True)
salt = 0
with np.errstate(over="ignore"):
    for cname, comm in comms:
        crank, csize = comm.Get_rank(), comm.Get_size()
        for dtype in ints + floats:
            for op in arith + (bitwise if dtype in ints else []):
                for n in (1, 5, 3000, 100000):
                    for in_place in (False, True):
                        salt += 1
                        vals = [contribution(op, dtype, r, n, salt) for r in range(csize)]
                        want = reference(op, vals)
                        if in_place:
                            got = vals[crank].copy()
                            comm.Allreduce(MPI.IN_PLACE, got, op=op)
                        else:
                            got = np.empty_like(want)
                            comm.Allreduce(vals[crank], got, op=op)
                        if not np.array_equal(got, want):
                            wrong += 1
                            print("FAIL rank %d: %s %s %s n=%d in_place=%s" % (
                                rank, cname, np.dtype(dtype).name, op, n, in_place))
        # A user op and MINLOC go to the MPI itself.
        a = np.arange(100, dtype=np.int32) + crank
        b = np.empty_like(a)
        comm.Allreduce(a, b, op=user_sum)
        if not np.array_equal(b, csize * np.arange(100, dtype=np.int32) +
                              csize * (csize - 1) // 2):
            wrong += 1
            print("FAIL rank %d: %s user op" % (rank, cname))
        pair = np.zeros(1, dtype=np.dtype([("v", "f8"), ("i", "i4")], align=True))
        pair["v"], pair["i"] = float(crank % 3), crank
        got = np.zeros_like(pair)
        comm.Allreduce([pair, 1, MPI.DOUBLE_INT], [got, 1, MPI.DOUBLE_INT], op=MPI.MINLOC)
        if got["v"][0] != 0.0 or got["i"][0] != 0:
            wrong += 1
            print("FAIL rank %d: %s MINLOC %s" % (rank, cname, got))

for c in (split, rev, dup):
    c.Free()
user_sum.Free()
total = world.allreduce(wrong, op=MPI.SUM)
if rank == 0:
    print("mpi4py: %d ranks, %d wrong results" % (size, total))
sys.exit(1 if total else 0)
