"""Trains one small net, distributed or not, and saves its weights (run by test_distributed)."""

import sys

import numpy

import polymlp as pm

out, dtype, distributed = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
x, y, xv, yv = pm.datasets.hypercube()
x, y = x[:1000], y[:1000]  # 1000 rows, batch 64: the last batch has 40 rows
net = pm.Network(14, seed=5, dtype=dtype).stack(pm.Dense(24, "relu")).stack(pm.Dense(12, "tanh"))
net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
checkpoint = pm.callbacks.ModelCheckpoint(out + ".ckpt{epoch}.polymlp")
hist = net.fit(x, y, epochs=3, batch_size=64, optimizer="adam", record="epoch",
               validation_data=(xv[:500], yv[:500]), distributed=distributed,
               callbacks=[checkpoint])
rank = 0
if distributed:
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
numpy.savez(f"{out}.rank{rank}.npz", checkpoints=numpy.array(len(checkpoint.saved)), *net.get_weights(), loss=numpy.array(hist.loss),
            val_accuracy=numpy.array(hist.val_accuracy))
