"""Command line: ``polymlp reproduce``, ``polymlp backends``, ``polymlp plugins``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

SEED_NETS = (
    # (name, hidden layer widths, the blog's test accuracy)
    ("14-100-40-4", (100, 40), 0.9774),
    ("14-(28x6)-4", (28,) * 6, 0.9150),
    ("14-(14x28)-4", (14,) * 28, 0.9340),
)


def build_seed_net(hidden, *, name=None, backend="numpy", device=None, dtype="float32", seed=0):
    """One of the seed experiment's nets: ReLU hidden layers, softmax + cross-entropy."""
    import polymlp as pm

    net = pm.Network(14, name=name, backend=backend, device=device, dtype=dtype, seed=seed)
    for width in hidden:
        net.stack(pm.Dense(width, activation="relu"))
    return net.output(pm.Dense(4, activation="softmax"), loss="cross_entropy")


def reproduce(args):
    import polymlp as pm

    os.makedirs(args.out, exist_ok=True)
    if pm.resolve_backend(args.backend, args.device).compiles:  # a second run skips compiling
        pm.enable_compilation_cache()
    x_train, y_train, x_test, y_test = pm.datasets.hypercube()
    rows = []
    for name, hidden, blog in SEED_NETS:
        net = build_seed_net(hidden, name=name, backend=args.backend, device=args.device,
                             dtype=args.dtype, seed=args.seed)
        optimizer = pm.Adam(learning_rate=0.002)
        # A tqdm bar per epoch on a terminal where tqdm is installed, else a line per epoch.
        mode = "bar" if sys.stderr.isatty() else "lines"
        progress = pm.callbacks.ProgressBar(mode, label=f"[{name}]")
        t0 = time.perf_counter()
        history = net.fit(x_train, y_train, epochs=args.epochs, batch_size=32,
                          optimizer=optimizer, validation_data=(x_test, y_test),
                          record="iteration", validation_freq=args.validation_freq,
                          callbacks=[progress])
        elapsed = time.perf_counter() - t0
        _, _, acc = net.test(x_test, y_test)
        stem = os.path.join(args.out, name)
        history.to_csv(stem + ".csv")
        plotted = _try_plot(history, stem + ".png", name)
        rows.append({"net": name, "parameters": net.n_parameters, "test_accuracy": acc,
                     "blog_test_accuracy": blog, "train_seconds": elapsed,
                     "train_cost": net.loss(x_train, y_train), "test_cost": net.loss(x_test, y_test),
                     "csv": stem + ".csv", "png": stem + ".png" if plotted else None})
    print(_table(rows, args))
    diff = _collapse_demo(args)
    print(f"\nBonus: a 5-5-5-5 network with identity activations collapses into one affine "
          f"layer; max |N_A(x) - N_B(x)| over 1,000 random inputs = {diff:.3g}")
    with open(os.path.join(args.out, "reproduce.json"), "w") as fh:
        json.dump({"backend": args.backend, "device": str(args.device), "dtype": args.dtype,
                   "seed": args.seed, "epochs": args.epochs, "nets": rows,
                   "collapse_max_abs_diff": diff}, fh, indent=2)
    return 0


def _try_plot(history, path, title):
    try:
        history.plot(path, title=title)
        return True
    except ImportError:
        print(f"(no plot for {title}: pip install 'polymlp[plot]' for PNGs)", file=sys.stderr)
        return False


def _table(rows, args):
    head = (f"\nSeed experiment on backend {args.backend} ({args.dtype}, seed {args.seed}, "
            f"Adam lr 0.002, batch 32, {args.epochs} epochs)\n")
    lines = [f"{'net':<14} {'params':>7} {'test acc':>9} {'blog':>7} {'train cost':>11} "
             f"{'test cost':>10} {'train s':>8}"]
    for r in rows:
        lines.append(f"{r['net']:<14} {r['parameters']:>7,} {r['test_accuracy']:>9.4f} "
                     f"{r['blog_test_accuracy']:>7.4f} {r['train_cost']:>11.4f} "
                     f"{r['test_cost']:>10.4f} {r['train_seconds']:>8.2f}")
    files = [r["csv"] for r in rows] + [r["png"] for r in rows if r["png"]]
    return head + "\n".join(lines) + f"\n\nWrote {', '.join(files)}"


def _collapse_demo(args):
    import numpy

    import polymlp as pm

    net = pm.Network(5, name="identity 5-5-5-5", backend=args.backend, device=args.device,
                     dtype="float64" if args.dtype == "float64" else "float32", seed=args.seed)
    for _ in range(3):
        net.stack(pm.Dense(5, activation="identity"))
    net.output(pm.Dense(5, activation="identity"), loss="mse")
    # Non-zero biases, so that the composed bias is really exercised.
    rng = numpy.random.default_rng(args.seed)
    net.set_weights([rng.standard_normal(w.shape) for w in net.get_weights()])
    single = net.collapse()
    x = rng.standard_normal((1000, 5))
    a = pm.to_numpy(net.predict(x))
    b = pm.to_numpy(single.predict(x))
    return float(numpy.max(numpy.abs(a - b)))


def backends(args):
    import polymlp as pm

    rows = pm.describe_backends()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        if r["usable"]:
            f64 = "" if r.get("float64", True) else " (no float64 on the default device)"
            print(f"{r['name']:<18} usable   devices: {', '.join(r['devices'])}{f64}")
        else:
            print(f"{r['name']:<18} no       {r['why']}")
    return 0


def plugins(args):
    import warnings

    from . import registry

    # Broken plugins warn on load; their status column already says why.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = registry.describe_plugins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if registry.autoload_disabled():
        print(f"({registry.DISABLE_ENV} is set: installed plugins are not listed)")
    for r in rows:
        src = {"builtin": "built-in", "registered": "registered"}.get(r["source"], r["source"])
        src = f"{src} {r['version']}".strip() if r["source"] != "registered" else src
        print(f"{r['kind']:<13} {r['name']:<22} {src:<28} {r['status']}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="polymlp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="train the seed experiment's three nets")
    rep.add_argument("--backend", default="numpy")
    rep.add_argument("--device", default=None)
    rep.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    rep.add_argument("--epochs", type=int, default=10)
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--validation-freq", type=int, default=10,
                     help="evaluate the test set every N iterations (default 10)")
    rep.add_argument("--out", default="results")
    rep.set_defaults(func=reproduce)
    be = sub.add_parser("backends", help="list array backends and whether they are usable here")
    be.add_argument("--json", action="store_true")
    be.set_defaults(func=backends)
    pl = sub.add_parser("plugins", help="list registered names per kind and their status")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=plugins)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # the CLI reports errors plainly; tracebacks with POLYMLP_DEBUG=1
        if os.environ.get("POLYMLP_DEBUG"):
            raise
        print(f"polymlp {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
