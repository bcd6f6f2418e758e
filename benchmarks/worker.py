"""Run one measurement in this process and print it as one JSON line.

    python worker.py train IMPL WORKLOAD [--epochs N] [--memory]
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
}

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
