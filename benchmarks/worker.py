"""Run one measurement in this process and print it as one JSON line.

    python worker.py train IMPL WORKLOAD [--epochs N] [--memory]
    python worker.py train polymlp-jax WORKLOAD --fits 2 [--recording] [--plugins] [--cache MODE:DIR]
    python worker.py predict IMPL WORKLOAD [--rows N] [--repeats R]
    python worker.py gemm {numpy,torch,cupy,torch-cuda}

The driver (run.py) starts one process per measurement, so that every
training run pays the same start-up and none inherits another's caches or
thread pools; it also times each process from outside (whole-process time).
"""

import argparse
import json
import os
import platform
import resource
import sys
from functools import partial

import numpy as np

import compiled
import competitors as c
import workloads as wl

#: implementation name -> function(spec, data, memory=False) running one training.
TRAIN = {
    "reference": c.train_reference,
    "polymlp-numpy": partial(c.train_polymlp, backend="numpy"),
    "polymlp-torch": partial(c.train_polymlp, backend="torch"),
    "polymlp-jax": partial(c.train_polymlp, backend="jax"),
    "polymlp-strict": partial(c.train_polymlp, backend="array_api_strict"),
    "polymlp-cupy": partial(c.train_polymlp, backend="cupy"),
    "torch": c.train_torch,
    "torch-fused": partial(c.train_torch, fused=True),
    "torch-cuda": partial(c.train_torch, device="cuda"),
    "torch-cuda-fused": partial(c.train_torch, fused=True, device="cuda"),
    "sklearn": c.train_sklearn,
    "jax-scan": partial(compiled.train_jax, variant="scan"),
    "jax-step": partial(compiled.train_jax, variant="step"),
    "keras-epoch": partial(compiled.train_keras, per_epoch=True),
    "keras-default": partial(compiled.train_keras, per_epoch=False),
}

#: implementations that --fits/--recording/--plugins/--cache apply to (polymlp fitted twice).
POLYMLP_BACKENDS = {"polymlp-numpy": "numpy", "polymlp-torch": "torch", "polymlp-jax": "jax",
                    "polymlp-cupy": "cupy"}

#: implementation name -> function(sizes, rows, repeats) timing predict.
PREDICT = {
    "reference": c.predict_reference,
    "polymlp-numpy": lambda s, r, k: c.predict_polymlp(s, r, k, "numpy"),
    "polymlp-torch": lambda s, r, k: c.predict_polymlp(s, r, k, "torch"),
    "polymlp-jax": lambda s, r, k: c.predict_polymlp(s, r, k, "jax"),
    "torch": lambda s, r, k: c.predict_torch(s, r, k),
    "sklearn": c.predict_sklearn,
}

GEMM = {
    "numpy": lambda: c.gemm_numpy(),
    "torch": lambda: c.gemm_torch(),
    "cupy": lambda: c.gemm_cupy(),
    "torch-cuda": lambda: c.gemm_torch(n=8192, device="cuda"),
}


def _train(args):
    spec = wl.spec(args.workload, args.epochs)
    if args.fits or args.recording or args.plugins or args.cache:
        if args.impl not in POLYMLP_BACKENDS:
            raise SystemExit(f"--fits/--recording/--plugins/--cache are for polymlp only, not {args.impl}")
        cache = tuple(args.cache.split(":", 1)) if args.cache else None
        return compiled.train_polymlp_twice(spec, wl.load(args.workload),
                                            POLYMLP_BACKENDS[args.impl], fits=args.fits or 2,
                                            recording=args.recording, plugins=args.plugins,
                                            cache=cache)
    return TRAIN[args.impl](spec, wl.load(args.workload), memory=args.memory)


def _predict(args):
    sizes = wl.WORKLOADS[args.workload]["sizes"]
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((args.rows, sizes[0]), dtype=np.float32)
    out = PREDICT[args.impl](sizes, rows, args.repeats)
    out["rows_per_s"] = args.rows / out["median_s"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("impl", choices=sorted(TRAIN))
    tr.add_argument("workload", choices=sorted(wl.WORKLOADS))
    tr.add_argument("--epochs", type=int, default=None)
    tr.add_argument("--memory", action="store_true", help="measure peak memory (untimed run)")
    tr.add_argument("--fits", type=int, default=0,
                    help="polymlp: fit this many times from the same weights (first_s, train_s = last)")
    tr.add_argument("--recording", action="store_true",
                    help="polymlp: record as `polymlp reproduce` (per-iteration loss, validation every 10)")
    tr.add_argument("--plugins", action="store_true",
                    help="polymlp: W1's net with a per-feature affine plugin layer and layer_norm")
    tr.add_argument("--cache", default=None, metavar="MODE:DIR",
                    help="polymlp: persistent compilation cache, MODE polymlp (its setting) or jax")
    pr = sub.add_parser("predict")
    pr.add_argument("impl", choices=sorted(PREDICT))
    pr.add_argument("workload", choices=sorted(wl.WORKLOADS))
    pr.add_argument("--rows", type=int, default=100_000)
    pr.add_argument("--repeats", type=int, default=5)
    ge = sub.add_parser("gemm")
    ge.add_argument("impl", choices=sorted(GEMM))
    args = ap.parse_args()
    if args.what == "train":
        out = _train(args)
    elif args.what == "predict":
        out = _predict(args)
    else:
        out = {"gflops": GEMM[args.impl]()}
    out["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["python"] = platform.python_version()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
