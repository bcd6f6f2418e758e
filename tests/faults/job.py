"""A training job that backs itself up, for the kill-and-resume tests (test_kill_resume.py).

Usage: job.py WORKDIR [--die-in-save K] [--pace SECONDS]

Trains a small net with BackupAndRestore(WORKDIR/backup, save_freq=3) and
ModelCheckpoint(WORKDIR/ckpt-{iteration}.polymlp, save_freq=4, keep_last=2),
then writes WORKDIR/result.json (weights and History). Prints "ready" once
imported. With --die-in-save K the process SIGKILLs itself in the middle of
its K-th file write (after part of the temporary file is written, before the
rename): a kill during a save, at a known point. --pace sleeps after each
batch (host time only: the arithmetic is unchanged), so that random kills land
inside training.
"""

import json
import math
import os
import signal
import sys
import time

import numpy

import polymlp as pm

workdir = sys.argv[1]
if "--die-in-save" in sys.argv:
    die_at = int(sys.argv[sys.argv.index("--die-in-save") + 1])
    writes = []
    real_write = os.write

    def dying_write(fd, data):
        writes.append(1)
        if len(writes) == die_at:
            real_write(fd, bytes(data)[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(fd, data)

    os.write = dying_write

rng = numpy.random.default_rng(0)
x = rng.standard_normal((320, 6)).astype("float32")
y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int) + (x[:, 3] > 0.5).astype(int)
net = pm.Network(6, seed=3).stack(pm.Dense(64, "relu")).stack(pm.Dense(64, "tanh"))
net.output(pm.Dense(3, "softmax"))
callbacks = [pm.callbacks.BackupAndRestore(os.path.join(workdir, "backup"), save_freq=3),
             pm.callbacks.ModelCheckpoint(os.path.join(workdir, "ckpt-{iteration}.polymlp"),
                                          save_freq=4, keep_last=2),
             pm.callbacks.LearningRateScheduler("step", step_size=2, gamma=0.5)]
if "--pace" in sys.argv:
    pace = float(sys.argv[sys.argv.index("--pace") + 1])

    class Pace(pm.callbacks.Callback):
        def on_batch_end(self, iteration, logs=None):
            time.sleep(pace)

    callbacks.append(Pace())
print("ready", flush=True)
hist = net.fit(x, y, epochs=8, batch_size=32, optimizer=pm.Adam(0.01), callbacks=callbacks,
               validation_data=(x[:50], y[:50]), validation_freq=5)
# Written under another name and renamed: a kill landing during this write must not
# leave a half-written result for the test to read.
part = os.path.join(workdir, "result.json.part")
with open(part, "w") as fh:
    json.dump({"weights": [w.tolist() for w in net.get_weights()],
               "history": {k: [None if math.isnan(v) else v for v in col]
                           for k, col in hist.columns.items()},
               "restored": callbacks[0].restored, "iterations": net.iterations}, fh)
os.replace(part, os.path.join(workdir, "result.json"))
