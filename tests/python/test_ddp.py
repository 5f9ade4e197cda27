"""test_ddp.py - tally's PyTorch DDP comm hook (python/tally/ddp.py) under
mpirun, with examples/ddp_digits.py's training: the same steps with
PyTorch's own gloo allreduce, with the tally hook and with the tally hook
compressed (int8, every bucket).  Asserts the tally hook's loss equals
gloo's at every evaluation to the summation-order tolerance (1e-3
relative: gloo and tally add in different orders, and float32 rounding
differences grow through 80 SGD steps), the weights are the same bits on every rank, the compressed
hook trains (its loss falls below 0.6 in 80 steps, from 2.3; on several
nodes it sent fewer bytes than it reduced, on one node nothing is
compressed) and a bad codec is a clear error.  Needs python3-torch and
python3-sklearn (install-deps.sh tries them); run with PYTHONPATH=python.
Prints "test_ddp.py: ok" on rank 0."""
import hashlib
import os
import sys

import torch
from mpi4py import MPI

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples"))
import ddp_digits  # noqa: E402
import tally  # noqa: E402
import tally.ddp  # noqa: E402

world = MPI.COMM_WORLD
TOLERANCE = 1e-3
COMPRESSED_LOSS = 0.6


def run(comm, hook, **extra):
    args = ddp_digits.parse(["--hook", hook, "--steps", "80", "--lr", "0.2", "--hidden", "256",
                             "--bucket-mb", "0.25", "--codec", "int8"])
    for k, v in extra.items():
        setattr(args, k, v)
    return ddp_digits.train(args, world, comm)


def weights_hash(comm, hook):
    """Trains a few steps and hashes the parameters (identical everywhere?)."""
    args = ddp_digits.parse(["--hook", hook, "--steps", "5", "--hidden", "64"])
    ddp_digits.init_process_group(world)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model = torch.nn.parallel.DistributedDataParallel(net)
    state = tally.ddp.State(comm, codec=args.codec if hook == "tally-compressed" else None,
                            min_bytes=0)
    model.register_comm_hook(state, tally.ddp.allreduce_hook)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = ddp_digits.load()
    rank = world.Get_rank()
    for step in range(5):
        batch = torch.arange(rank * 16 + step, x.shape[0], 97)[:16]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
    h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters()))
    state.free()
    return h.hexdigest()


def main():
    rank = world.Get_rank()
    nodes = len(set(world.allgather(MPI.Get_processor_name())))
    with tally.Comm(world) as comm:
        gloo = run(comm, "gloo")
        mine = run(comm, "tally")
        worst = 0.0
        for (step, a), (_, b) in zip(mine["losses"], gloo["losses"]):
            diff = abs(a - b) / max(1.0, abs(b))
            worst = max(worst, diff)
            assert diff <= TOLERANCE, "step %d: tally hook loss %.7f, gloo %.7f" % (step, a, b)
        assert gloo["final_loss"] < 1.0, gloo["losses"]  # it trained at all

        # The compressed hook: every bucket through an int8 compressor.
        args = ddp_digits.parse(["--hook", "tally-compressed", "--steps", "80", "--lr", "0.2",
                                 "--hidden", "256", "--bucket-mb", "0.25", "--codec", "int8"])
        ddp_digits.init_process_group(world)
        packed = run(comm, "tally-compressed")
        assert packed["final_loss"] < COMPRESSED_LOSS, packed["losses"]

        # Compression happened where it can (several nodes), per bucket.
        torch.manual_seed(args.seed)
        state = tally.ddp.State(comm, codec="int8", min_bytes=0)
        # Over DDP's first bucket (1 MiB): two buckets or more.
        net = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(),
                                  torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                  torch.nn.Linear(512, 10))
        model = torch.nn.parallel.DistributedDataParallel(net, bucket_cap_mb=0.25)
        model.register_comm_hook(state, tally.ddp.allreduce_hook)
        x, y = ddp_digits.load()
        for step in range(3):
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(x[:64]), y[:64]).backward()
        assert len(state.compressors) >= 2, "one compressor per bucket: %r" % state.compressors
        wire = sum(z.bytes()[0] for _, z in state.compressors.values())
        plain = sum(z.bytes()[1] for _, z in state.compressors.values())
        if nodes > 1:
            assert 0 < wire < plain, (wire, plain)
        else:
            assert wire == 0, wire
        state.free()

        same = world.allgather(weights_hash(comm, "tally"))
        assert len(set(same)) == 1, "tally hook: weights differ between ranks"
        same = world.allgather(weights_hash(comm, "tally-compressed"))
        assert len(set(same)) == 1, "compressed hook: weights differ between ranks"

        # A codec tally does not know is an error naming it, from backward.
        state = tally.ddp.State(comm, codec="nosuchcodec", min_bytes=0)
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(64, 10))
        model.register_comm_hook(state, tally.ddp.allreduce_hook)
        try:
            torch.nn.functional.cross_entropy(model(x[:8]), y[:8]).backward()
        except Exception as error:  # noqa: BLE001 - DDP wraps it
            assert "nosuchcodec" in str(error) or "tally" in str(error), str(error)
        else:
            raise AssertionError("a bad codec trained")
    if rank == 0:
        print("test_ddp.py: ok (%d ranks on %d nodes; tally vs gloo loss differs by at most "
              "%.2g relative; compressed final loss %.6f, gloo %.6f)"
              % (world.Get_size(), nodes, worst, packed["final_loss"], gloo["final_loss"]))


if __name__ == "__main__":
    main()
