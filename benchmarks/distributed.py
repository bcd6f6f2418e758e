"""Strong scaling of data-parallel training: W2 (784-1024-1024-10, batch 256) on 1 and N ranks.

Run: python benchmarks/distributed.py [--ranks 2] [--epochs 2] [--rows 16384] [--repeat 3]

Each configuration is run as `mpiexec -n R python benchmarks/distributed.py --worker`
with one BLAS thread per rank, alternating 1 rank and R ranks; prints time per epoch,
parallel efficiency T1 / (R * TR) and the allreduce's share of the training time.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def worker(args):
    import numpy

    import polymlp as pm
    from polymlp.distributed import DataParallel

    rng = numpy.random.default_rng(12345)
    x = rng.standard_normal((args.rows, 784), dtype=numpy.float32)
    y = numpy.argmax(x @ rng.standard_normal((784, 10), dtype=numpy.float32), axis=1)
    net = pm.Network(784, seed=0).stack(pm.Dense(1024, "relu")).stack(pm.Dense(1024, "relu"))
    net.output(pm.Dense(10, "softmax"), loss="cross_entropy")
    dp = DataParallel()
    dp.comm.Barrier()
    t0 = time.perf_counter()
    net.fit(x, y, epochs=args.epochs, batch_size=256, record=None,
            distributed=dp if dp.size > 1 else False)
    seconds = time.perf_counter() - t0
    if dp.rank == 0:
        print(json.dumps({"ranks": dp.size, "seconds": seconds,
                          "epoch_seconds": seconds / args.epochs,
                          "allreduce_seconds": dp.allreduce_seconds}), flush=True)


def run(ranks, args):
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                           + os.environ.get("PATH", ""))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker",
           "--epochs", str(args.epochs), "--rows", str(args.rows)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rows", type=int, default=16384)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    runs = {1: [], args.ranks: []}
    run(1, args)  # warm-up, discarded
    for _ in range(args.repeat):
        for r in (1, args.ranks):
            runs[r].append(run(r, args))
    t1 = statistics.median(r["epoch_seconds"] for r in runs[1])
    tn = statistics.median(r["epoch_seconds"] for r in runs[args.ranks])
    share = statistics.median(r["allreduce_seconds"] / r["seconds"] for r in runs[args.ranks])
    result = {"workload": "W2 784-1024-1024-10, batch 256", "rows": args.rows,
              "epochs": args.epochs, "blas_threads_per_rank": 1,
              "epoch_seconds": {"1": t1, str(args.ranks): tn}, "speedup": t1 / tn,
              "efficiency": t1 / (args.ranks * tn), "allreduce_share": share}
    print(f"ranks  s/epoch  speed-up  efficiency  allreduce share\n"
          f"{1:>5}  {t1:>7.2f}  {1:>8.2f}  {1:>10.0%}  {'-':>15}\n"
          f"{args.ranks:>5}  {tn:>7.2f}  {t1 / tn:>8.2f}  {result['efficiency']:>10.0%}  "
          f"{share:>15.1%}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
