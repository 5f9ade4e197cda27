"""ddp_digits.py - data-parallel training with PyTorch DDP, its gradients
allreduced by gloo (PyTorch's own), by tally (tally.ddp's comm hook) or by
tally compressed; the proof that the hook trains like gloo and the
benchmark of its step time.

    mpirun -np N python3 examples/ddp_digits.py [--hook gloo|tally|tally-compressed]
        [--codec SPEC] [--steps S] [--hidden H] [--batch B] [--lr LR]
        [--target LOSS] [--bucket-mb MB] [--seed SEED]
    (PYTHONPATH=python from the source tree; make ddp-bench runs them all)

The data set is scikit-learn's digits (1797 8x8 images, shipped with
Debian's python3-sklearn, no download); the model a multilayer perceptron
64 -> H -> H -> 10 with ReLU; plain SGD.  Each rank draws its batches from
its own shard (sample i goes to rank i mod N), the same sequence for every
hook, so the hooks differ only in how gradients are averaged.  Rank 0
prints the loss over the whole training set every few steps (not counted
as training time) and a summary line: median step time, final loss and the
training time until the loss first fell below --target.

DDP needs a process group even with a comm hook: gloo over TCP, its
address (rank 0's host name and a free port) passed round with mpi4py.
"""
import argparse
import os
import socket
import statistics
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from mpi4py import MPI
from sklearn.datasets import load_digits

import tally
import tally.ddp


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hook", choices=("gloo", "tally", "tally-compressed"), default="tally")
    p.add_argument("--codec", default="int8", help="tally-compressed's codec (tally(7))")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=32, help="samples per rank and step")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--target", type=float, default=0.3, help="training loss to time")
    p.add_argument("--bucket-mb", type=float, default=25.0, help="DDP's bucket_cap_mb")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model and the gradients live (cuda: every rank on "
                        "the GPU torch.cuda.current_device() names)")
    return p.parse_args(argv)


def init_process_group(world):
    """gloo over TCP at rank 0's host, on a port rank 0 found free."""
    if not dist.is_initialized():
        address = None
        if world.Get_rank() == 0:
            with socket.socket() as s:
                s.bind(("", 0))
                address = "tcp://%s:%d" % (socket.gethostname(), s.getsockname()[1])
        address = world.bcast(address, root=0)
        dist.init_process_group("gloo", init_method=address, rank=world.Get_rank(),
                                world_size=world.Get_size())


def load():
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    return x, y


def train(args, world, comm=None):
    """Trains with args.hook; returns {"losses": [(step, loss)], "step_ms": [...],
    "time_to_target": seconds or None, "final_loss": float} (the same on
    every rank but step_ms, which is this rank's)."""
    init_process_group(world)
    rank, size = world.Get_rank(), world.Get_size()
    device = torch.device(args.device)
    x, y = (t.to(device) for t in load())
    mine = torch.arange(rank, x.shape[0], size)
    torch.manual_seed(args.seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, args.hidden), torch.nn.ReLU(),
                              torch.nn.Linear(args.hidden, args.hidden), torch.nn.ReLU(),
                              torch.nn.Linear(args.hidden, 10)).to(device)
    model = torch.nn.parallel.DistributedDataParallel(net, bucket_cap_mb=args.bucket_mb)
    state = None
    if args.hook != "gloo":
        state = tally.ddp.State(comm, codec=args.codec if args.hook == "tally-compressed"
                                else None)
        model.register_comm_hook(state, tally.ddp.allreduce_hook)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    lossf = torch.nn.CrossEntropyLoss()
    draw = np.random.default_rng([args.seed, rank])
    result = {"losses": [], "step_ms": [], "time_to_target": None}
    trained = 0.0
    for step in range(1, args.steps + 1):
        batch = mine[torch.from_numpy(draw.integers(0, len(mine), args.batch))]
        t0 = time.perf_counter()
        opt.zero_grad()
        lossf(model(x[batch]), y[batch]).backward()  # DDP averages during backward
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()  # the step's kernels, in its time
        dt = time.perf_counter() - t0
        result["step_ms"].append(dt * 1e3)
        trained += dt
        if step % args.eval_every == 0 or step == args.steps:
            with torch.no_grad():
                loss = float(lossf(net(x), y))
            result["losses"].append((step, loss))
            if result["time_to_target"] is None and loss < args.target:
                result["time_to_target"] = trained
    result["final_loss"] = result["losses"][-1][1]
    if state is not None:
        state.free()
    return result


def summary(args, result, world):
    """The slowest rank's median step time, and the run's figures."""
    warm = result["step_ms"][5:] or result["step_ms"]
    step_ms = world.allreduce(statistics.median(warm), op=MPI.MAX)
    ttt = result["time_to_target"]
    return ("summary hook=%s%s ranks=%d steps=%d step_ms_median=%.3f final_loss=%.5f "
            "time_to_target(%g)=%s" % (args.hook, ":" + args.codec if args.hook ==
                                       "tally-compressed" else "", world.Get_size(),
                                       args.steps, step_ms, result["final_loss"],
                                       args.target, "%.3fs" % ttt if ttt is not None
                                       else "not reached"))


def main():
    args = parse()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    world = MPI.COMM_WORLD
    with tally.Comm(world) as comm:
        result = train(args, world, comm)
        line = summary(args, result, world)
    if world.Get_rank() == 0:
        for step, loss in result["losses"]:
            print("step %5d loss %.5f" % (step, loss))
        print(line)
        sys.stdout.flush()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
