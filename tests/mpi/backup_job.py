"""Data-parallel training with BackupAndRestore (run by test_distributed_backup.py).

Usage: mpiexec -n N python backup_job.py WORKDIR [--kill-rank R --at K]
With --kill-rank, rank R SIGKILLs itself after iteration K (one rank of the
job dies); relaunching the same command resumes from the backup that rank 0
wrote, on every rank. Each rank that finishes writes WORKDIR/result.rankR.json.
"""

import json
import math
import os
import signal
import sys

import polymlp as pm
from mpi4py import MPI

workdir = sys.argv[1]
rank = MPI.COMM_WORLD.Get_rank()
kill_rank = int(sys.argv[sys.argv.index("--kill-rank") + 1]) if "--kill-rank" in sys.argv else -1
kill_at = int(sys.argv[sys.argv.index("--at") + 1]) if "--at" in sys.argv else -1


class KillAt(pm.callbacks.Callback):
    def on_batch_end(self, iteration, logs=None):
        if rank == kill_rank and iteration == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


x, y, _, _ = pm.datasets.hypercube()
x, y = x[:600], y[:600]
net = pm.Network(14, seed=5, dtype="float64").stack(pm.Dense(24, "relu"))
net.output(pm.Dense(4, "softmax"))
backup = pm.callbacks.BackupAndRestore(os.path.join(workdir, "backup"), save_freq=4)
hist = net.fit(x, y, epochs=3, batch_size=64, optimizer="adam", distributed=True,
               callbacks=[backup, KillAt()])
with open(os.path.join(workdir, f"result.rank{rank}.json"), "w") as fh:
    json.dump({"weights": [w.tolist() for w in net.get_weights()],
               "loss": [None if math.isnan(v) else v for v in hist.loss],
               "iteration": hist.iteration, "restored": backup.restored}, fh)
