"""One rank fails (mid-training or before fit); the job must end, not hang."""

import sys

import polymlp as pm
from mpi4py import MPI

where = sys.argv[1]
rank = MPI.COMM_WORLD.Get_rank()
x, y, _, _ = pm.datasets.hypercube()
net = pm.Network(14, seed=0).stack(pm.Dense(8, "relu"))
net.output(pm.Dense(4, "softmax"))
if where == "before" and rank == 1:
    x = x[:, :5]  # a bad input on rank 1 only: rank 0 would wait in the first allreduce
if where == "during" and rank == 1:
    layer = net.layers[0]
    calls = []

    def broken_forward(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("simulated failure on rank 1 at iteration 5")
        return type(layer).forward(layer, *args, **kwargs)

    layer.forward = broken_forward
net.fit(x, y, epochs=2, batch_size=32, distributed=True, record=None)
print("finished", rank)
