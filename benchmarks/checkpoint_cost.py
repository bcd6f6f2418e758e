"""What a checkpoint every N iterations costs on W2 (784-1024-1024-10, batch 256, Adam).

    python benchmarks/checkpoint_cost.py          # 1 epoch (64 iterations), N = 64, 16, 4, 1
    python benchmarks/checkpoint_cost.py --freqs 32,8 --epochs 2 --repeats 3 --dir /scratch

For each N, trains W2 on NumPy with ``ModelCheckpoint(save_freq=N)`` (one
file, overwritten: weights, Adam state, counters and the position inside the
epoch, written atomically with fsync) and without any checkpoint, alternating
the runs within each round so that drift in machine speed cancels. Prints
the file size, the time per save, and the cost as a fraction of training
time: ``(time with checkpoints - time without) / time without``, the median
over rounds of the ratio within a round. Also reports the time of one save
measured alone, and the fraction it predicts, ``save time / (N * time per
iteration)``, which is steadier than the difference of two noisy timings on
a busy machine. The checkpoint directory matters (a local disk, a network
file system): choose it with --dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import workloads as wl  # noqa: E402  (after the path set-up)

import polymlp as pm  # noqa: E402


def build(sizes):
    net = pm.Network(sizes[0], seed=wl.WEIGHT_SEED, dtype="float32")
    for width in sizes[1:-1]:
        net.stack(pm.Dense(width, "relu"))
    net.output(pm.Dense(sizes[-1], "softmax"), loss="cross_entropy")
    net.set_weights(wl.initial_weights(sizes))
    return net


def train(x, y, spec, epochs, callbacks):
    net = build(spec["sizes"])
    opt = pm.Adam(wl.LR, beta1=wl.BETA1, beta2=wl.BETA2, epsilon=wl.EPS)
    start = time.perf_counter()
    net.fit(x, y, epochs=epochs, batch_size=spec["batch"], optimizer=opt, record=None,
            callbacks=callbacks)
    return time.perf_counter() - start, net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freqs", default="64,16,4,1",
                        help="comma-separated save_freq values (iterations)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="rounds (each: all N, and none)")
    parser.add_argument("--dir", default=None, help="where checkpoints go (default: a temp dir)")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    freqs = [int(f) for f in args.freqs.split(",") if f]
    spec = wl.spec("w2")
    x, y, _, _ = wl.load("w2")
    steps = -(-x.shape[0] // spec["batch"]) * args.epochs
    directory = tempfile.mkdtemp(prefix="polymlp-ckpt-", dir=args.dir)
    path = os.path.join(directory, "ckpt.polymlp")
    try:
        train(x[:2048], y[:2048], spec, 1, [])  # warm-up: BLAS threads, page cache, imports
        times = {None: [], **{n: [] for n in freqs}}
        for rnd in range(args.repeats):
            order = [None] + freqs
            for n in order if rnd % 2 == 0 else order[::-1]:
                cbs = [] if n is None else [pm.callbacks.ModelCheckpoint(path, save_freq=n)]
                seconds, net = train(x, y, spec, args.epochs, cbs)
                times[n].append(seconds)
        size = os.path.getsize(path)
        solo = []
        for _ in range(5):
            start = time.perf_counter()
            net.save(path)
            solo.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    base = statistics.median(times[None])
    rows = []
    for n in freqs:
        saves = steps // n
        ratios = [t / b - 1.0 for t, b in zip(times[n], times[None])]
        rows.append({"save_freq": n, "saves": saves, "seconds": statistics.median(times[n]),
                     "cost_fraction": statistics.median(ratios),
                     "predicted_fraction": statistics.median(solo) / (n * base / steps),
                     "seconds_per_save": (statistics.median(times[n]) - base) / saves})
    result = {"workload": "w2", "sizes": spec["sizes"], "batch": spec["batch"],
              "iterations": steps, "train_seconds_without": base, "file_bytes": size,
              "save_seconds_alone": statistics.median(solo), "rows": rows,
              "threads": os.environ.get("OMP_NUM_THREADS", "default")}
    print(f"W2 {'-'.join(map(str, spec['sizes']))}, batch {spec['batch']}, {steps} iterations, "
          f"NumPy, BLAS threads {result['threads']}; checkpoint file {size / 2**20:.1f} MiB, "
          f"one save alone {result['save_seconds_alone'] * 1e3:.0f} ms; training without "
          f"checkpoints {base:.2f} s")
    print(f"{'save_freq':>9} {'saves':>6} {'train s':>8} {'cost':>8} {'ms/save':>8} "
          f"{'predicted':>9}")
    for row in rows:
        print(f"{row['save_freq']:>9} {row['saves']:>6} {row['seconds']:>8.2f} "
              f"{row['cost_fraction']:>7.1%} {row['seconds_per_save'] * 1e3:>8.0f} "
              f"{row['predicted_fraction']:>8.1%}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
