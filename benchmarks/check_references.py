"""Check that the hand-written loops compute the same training: JAX (scan, step) against NumPy.

    python benchmarks/check_references.py [--epochs 1] [--workload w1]

The ratios of the suite only mean something if the hand-written JAX loops do
the work of the hand-written NumPy reference: same data, initial weights,
batches and Adam.  This trains each from the shared initial weights and
compares the final weights after one epoch (410 Adam steps on W1), float32
against float32, to 1e-4: they agree to about 1e-6, while any error in the
math moves weights by about the learning rate per step.  Over several epochs
float32 rounding alone makes the runs part (ReLU nets are chaotic), so longer
checks prove nothing.  It also checks the weights moved, so that it cannot pass
by training nothing.  Exits 1 and says by how much when they part.  The suite's
quick mode runs it.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compiled  # noqa: E402
import workloads as wl  # noqa: E402
from reference import ReferenceMLP  # noqa: E402


def reference_weights(spec, data):
    x, y, _, _ = data
    model = ReferenceMLP(spec["sizes"], wl.initial_weights(spec["sizes"]))
    model.fit(x, wl.one_hot(y, spec["sizes"][-1]), spec["batch"], spec["epochs"], wl.shuffle_rng())
    return [a.copy() for pair in zip(model.W, model.b) for a in pair]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    # W1 only: on the deep nets float32 rounding makes the runs part within one epoch.
    ap.add_argument("--workload", default="w1", choices=["w1"])
    args = ap.parse_args(argv)
    spec, data = wl.spec(args.workload, args.epochs), wl.load(args.workload)
    ref = reference_weights(spec, data)
    atol = 1e-4
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, wl.initial_weights(spec["sizes"])))
    report, ok = {}, moved > 100 * atol
    for variant in ("scan", "step"):
        got = compiled.train_jax(spec, data, variant, return_weights=True)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(got, ref))
        report[variant] = diff
        ok &= diff <= atol
    print(json.dumps({"workload": args.workload, "epochs": args.epochs, "max_abs_diff": report,
                      "atol": atol, "reference_moved": moved, "ok": bool(ok)}))
    if not ok:
        print(f"the hand-written JAX loops part from the NumPy reference by more than {atol:g} "
              f"(or the reference did not train: it moved {moved:g})", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
