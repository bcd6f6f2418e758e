"""ONNX inference throughput: the W2 net (784-1024-1024-10) in onnxruntime against
polymlp's ``predict`` on NumPy, at the same batch sizes, on one thread and on the
libraries' default threads.

Both sides get the same float32 network (He-uniform weights from workloads.py)
and the same input rows. Each measurement runs in its own process (BLAS reads
its thread count at import); within one, onnxruntime and NumPy alternate
round by round, and each round times enough calls to cover about the same
number of rows. Printed: the median seconds per call of each side, rows per
second, and the ratio numpy time / onnxruntime time (> 1: onnxruntime is faster).

Run:  python benchmarks/onnx_inference.py [--quick] [--json OUT]
Needs: pip install 'polymlp[onnx]'
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BATCHES = (1, 32, 256, 4096)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def measure(threads, batches, rounds, rows_per_round):
    """In this process: median seconds per call of onnxruntime and of predict, per batch."""
    import numpy as np
    import onnxruntime

    sys.path.insert(0, HERE)
    import workloads as wl

    import polymlp as pm
    import polymlp.onnx  # noqa: F401

    sizes = wl.WORKLOADS["w2"]["sizes"]
    net = pm.Network(sizes[0], name="w2", seed=0)
    for width in sizes[1:-1]:
        net.stack(pm.Dense(width, "relu"))
    net.output(pm.Dense(sizes[-1], "softmax"), loss="cross_entropy")
    net.set_weights(wl.initial_weights(sizes))
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(pm.onnx.to_onnx(net).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    x_all = wl.wide(n_train=max(batches), n_test=0)[0]
    out = {}
    for b in batches:
        x = x_all[:b]
        calls = max(1, rows_per_round // b)
        # Same answers first (and a warm-up of both).
        labels = session.run(None, {"input": x})[1]
        assert (labels == net.predict(x)).all()
        times = {"onnxruntime": [], "numpy": []}
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(calls):
                session.run(None, {"input": x})
            times["onnxruntime"].append((time.perf_counter() - t0) / calls)
            t0 = time.perf_counter()
            for _ in range(calls):
                net.predict(x)
            times["numpy"].append((time.perf_counter() - t0) / calls)
        out[b] = {k: statistics.median(v) for k, v in times.items()}
    return out


def run_worker(threads, args):
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        if threads:
            env[name] = str(threads)
        else:
            env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads or 0),
           "--rounds", str(args.rounds), "--rows-per-round", str(args.rows_per_round),
           "--batches", ",".join(map(str, args.batches))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed:\n{proc.stderr[-3000:]}")
    return {int(k): v for k, v in json.loads(proc.stdout.splitlines()[-1]).items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and rows (a smoke run)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--rows-per-round", type=int, default=None)
    ap.add_argument("--batches", type=lambda s: tuple(int(v) for v in s.split(",")),
                    default=BATCHES)
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.rows_per_round = args.rows_per_round or (1024 if args.quick else 8192)
    if args.worker is not None:
        result = measure(args.worker, args.batches, args.rounds, args.rows_per_round)
        print(json.dumps(result))
        return 0
    import numpy
    import onnxruntime

    results = {"one thread": run_worker(1, args), "default threads": run_worker(None, args)}
    print(f"W2 784-1024-1024-10 inference, float32: onnxruntime {onnxruntime.__version__} "
          f"against polymlp predict on NumPy {numpy.__version__}; median of {args.rounds} rounds "
          f"of about {args.rows_per_round:,} rows; {os.cpu_count()} CPU cores, "
          f"{platform.machine()}")
    print(f"{'threads':<16} {'batch':>6} {'numpy s/call':>13} {'ort s/call':>12} "
          f"{'numpy rows/s':>13} {'ort rows/s':>12} {'numpy/ort':>10}")
    for label, rows in results.items():
        for b, r in rows.items():
            print(f"{label:<16} {b:>6} {r['numpy']:>13.3e} {r['onnxruntime']:>12.3e} "
                  f"{b / r['numpy']:>13,.0f} {b / r['onnxruntime']:>12,.0f} "
                  f"{r['numpy'] / r['onnxruntime']:>10.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rounds": args.rounds, "rows_per_round": args.rows_per_round,
                       "results": {k: {str(b): r for b, r in v.items()}
                                   for k, v in results.items()}}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
