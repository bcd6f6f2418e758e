"""Trains one small net data-parallel with a TensorBoard callback on every rank
(run by test_tensorboard_mpi): only rank 0 may write events."""

import sys

import numpy

import polymlp as pm

log_dir, out = sys.argv[1], sys.argv[2]
x, y, xv, yv = pm.datasets.hypercube()
x, y = x[:600], y[:600]
net = pm.Network(14, seed=5).stack(pm.Dense(24, "relu")).output(pm.Dense(4, "softmax"),
                                                                loss="cross_entropy")
tb = pm.callbacks.TensorBoard(log_dir, update_freq=3)
hist = net.fit(x, y, epochs=2, batch_size=60, record="iteration", validation_data=(xv[:200], yv[:200]),
               distributed=True, callbacks=[tb])
from mpi4py import MPI  # noqa: E402

rank = MPI.COMM_WORLD.Get_rank()
numpy.savez(f"{out}.rank{rank}.npz", loss=numpy.array(hist.loss),
            val_loss=numpy.array(hist.val_loss))
