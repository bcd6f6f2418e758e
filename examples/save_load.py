"""Saving a trained network and loading it on another backend.

Train on NumPy, ``net.save(path)``, then ``pm.load(path, backend=...)`` on PyTorch, JAX
or array-api-strict (whichever is installed): the predictions agree.

Run:  python examples/save_load.py [--quick]
"""
import argparse
import os
import tempfile

import numpy

import polymlp as pm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="one epoch instead of five")
args = parser.parse_args()

x_train, y_train, x_test, y_test = pm.datasets.hypercube()
net = pm.Network(14, name="14-100-40-4", seed=0)
net.stack(pm.Dense(100, "relu")).stack(pm.Dense(40, "relu"))
net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
net.fit(x_train, y_train, epochs=1 if args.quick else 5, batch_size=32, record=None)

usable = [row["name"] for row in pm.describe_backends() if row["usable"]]
target = next((b for b in ("torch", "jax", "array_api_strict", "cupy") if b in usable), "numpy")
with tempfile.TemporaryDirectory() as folder:
    # One zip file: the architecture as JSON, the weights and the optimizer state.
    path = net.save(os.path.join(folder, "seed-net.polymlp"))
    print(f"saved network {net.name!r} ({net.n_parameters:,} parameters, trained on "
          f"{net.backend.name}) to {os.path.basename(str(path))} "
          f"({os.path.getsize(path):,} bytes)")
    loaded = pm.load(path, backend=target)

before = pm.to_numpy(net.predict_proba(x_test))
after = pm.to_numpy(loaded.predict_proba(x_test))
print(f"loaded on {loaded.backend.name}: test accuracy {loaded.test(x_test, y_test)[2]:.4f} "
      f"(was {net.test(x_test, y_test)[2]:.4f}); max |difference| of probabilities "
      f"{numpy.max(numpy.abs(before - after)):.2e}")
