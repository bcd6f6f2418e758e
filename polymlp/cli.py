"""Command line: ``polymlp reproduce``, ``polymlp backends``, ``polymlp plugins``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

DESCRIPTION = """\
polymlp: multilayer perceptrons on any Array API library (NumPy, CuPy,
PyTorch, JAX, array-api-strict).

Run `polymlp COMMAND --help` for the options of a command."""

SEED_NETS = (
    # (name, hidden layer widths, the blog's test accuracy)
    ("14-100-40-4", (100, 40), 0.9774),
    # Shell-safe names (they name the files written): 6 hidden layers of 28, 28 of 14.
    ("14-28x6-4", (28,) * 6, 0.9150),
    ("14-14x28-4", (14,) * 28, 0.9340),
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
        callbacks = [progress] + _tensorboard_callbacks(args, name)
        t0 = time.perf_counter()
        history = net.fit(x_train, y_train, epochs=args.epochs, batch_size=32,
                          optimizer=optimizer, validation_data=(x_test, y_test),
                          record="iteration", validation_freq=args.validation_freq,
                          callbacks=callbacks)
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
    summary = os.path.join(args.out, "reproduce.json")
    with open(summary, "w") as fh:
        json.dump({"backend": args.backend, "device": str(args.device), "dtype": args.dtype,
                   "seed": args.seed, "epochs": args.epochs, "nets": rows,
                   "collapse_max_abs_diff": diff}, fh, indent=2)
    files = [r["csv"] for r in rows] + [r["png"] for r in rows if r["png"]] + [summary]
    print("\nWrote:\n" + "\n".join(f"  {f}" for f in files))
    return 0


def _tensorboard_callbacks(args, name):
    """``--tensorboard DIR``: each net's run in its own sub-directory, side by side."""
    if not args.tensorboard:
        return []
    import polymlp as pm

    # The batch loss as often as the test set is evaluated, beside the epoch points.
    return [pm.callbacks.TensorBoard(os.path.join(args.tensorboard, name),
                                     update_freq=args.validation_freq)]


def _try_plot(history, path, title):
    try:
        history.plot(path, title=title)
        return True
    except ImportError:
        print(f"(no plot for {title}: pip install 'polymlp[plot]' for PNGs)", file=sys.stderr)
        return False


def _table(rows, args):
    head = (f"\nSeed experiment on backend {args.backend} ({args.dtype}, seed {args.seed}, "
            f"Adam lr 0.002, batch 32, {plural(args.epochs, 'epoch')})\n")
    lines = [f"{'net':<14} {'params':>7} {'test acc':>9} {'blog':>7} {'train cost':>11} "
             f"{'test cost':>10} {'train s':>8}"]
    for r in rows:
        lines.append(f"{r['net']:<14} {r['parameters']:>7,} {r['test_accuracy']:>9.4f} "
                     f"{r['blog_test_accuracy']:>7.4f} {r['train_cost']:>11.4f} "
                     f"{r['test_cost']:>10.4f} {r['train_seconds']:>8.2f}")
    return head + "\n".join(lines)


def plural(count, noun):
    """``"1 epoch"``, ``"10 epochs"``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


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


def export(args):
    """``polymlp export MODEL.polymlp OUT.onnx``: a saved network as an ONNX model."""
    import polymlp as pm
    from polymlp import onnx

    net = pm.load(args.model)
    path = onnx.export(net, args.out, opset=args.opset, labels=not args.no_labels)
    import onnx as onnx_package

    model = onnx_package.load(path)
    outputs = ", ".join(o.name for o in model.graph.output)
    print(f"Wrote {path}: network {net.name!r} ({net.n_parameters:,} parameters, "
          f"{net.dtype_name}), opset {args.opset}; input 'input', outputs {outputs}.")
    return 0


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


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(prog="polymlp", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"polymlp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    rep = sub.add_parser(
        "reproduce", help="train the seed experiment's three nets",
        description="Train the seed experiment's nets 14-100-40-4, 14-28x6-4 and 14-14x28-4 "
                    "(ReLU, softmax + cross-entropy, Adam lr 0.002, batch 32) on the hypercube "
                    "data and print their test accuracies beside the blog's. Writes, into "
                    "--out (./results by default), one NET.csv (per-iteration history) and "
                    "NET.png (its plot, with matplotlib) per net and reproduce.json (the "
                    "table's numbers), and lists the files written.")
    rep.add_argument("--backend", default="numpy",
                     help="array backend: numpy, torch, jax, cupy, array_api_strict or a "
                          "plugin's (see `polymlp backends`); default: numpy")
    rep.add_argument("--device", default=None,
                     help="device of the backend, e.g. cpu or cuda:0; default: the backend's "
                          "default device")
    rep.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                     help="floating-point type of weights and data; default: float32")
    rep.add_argument("--epochs", type=int, default=10, help="training epochs per net; default: 10")
    rep.add_argument("--seed", type=int, default=0,
                     help="seed of the initial weights and the shuffling; default: 0")
    rep.add_argument("--validation-freq", type=int, default=10, metavar="N",
                     help="evaluate the test set every N iterations (minibatches) and at "
                          "each epoch's end; default: 10")
    rep.add_argument("--out", default="results", metavar="DIR",
                     help="directory for the files written, created if missing; default: "
                          "results (./results, in the current directory)")
    rep.add_argument("--tensorboard", metavar="DIR", default=None,
                     help="also write TensorBoard logs, one sub-directory per net "
                          "(view with: tensorboard --logdir DIR); default: none")
    rep.set_defaults(func=reproduce)
    ex = sub.add_parser("export", help="write a saved network as an ONNX model",
                        description="Write a network saved with net.save() as an ONNX model "
                                    "(needs the onnx extra: pip install 'polymlp[onnx]').")
    ex.add_argument("model", help="a file written by net.save() (.polymlp)")
    ex.add_argument("out", help="the ONNX file to write (.onnx)")
    ex.add_argument("--opset", type=int, default=18, help="ONNX opset; default: 18")
    ex.add_argument("--no-labels", action="store_true",
                    help="classifiers: probabilities only, no 'label' output")
    ex.set_defaults(func=export)
    be = sub.add_parser("backends", help="list array backends and whether they are usable here",
                        description="List the array backends polymlp knows, whether each is "
                                    "usable here, and the devices it can train on.")
    be.add_argument("--json", action="store_true", help="print JSON instead of a table")
    be.set_defaults(func=backends)
    pl = sub.add_parser("plugins", help="list registered names per kind and their status",
                        description="List every activation, loss, optimizer, layer type and "
                                    "initializer by name, where it comes from and its status.")
    pl.add_argument("--json", action="store_true",
                    help="print JSON: a list of {kind, name, source, version, value, "
                         "qualified_name, status} (see CONTRIBUTING.md)")
    pl.set_defaults(func=plugins)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `polymlp`: say what it can do
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (`polymlp plugins --json | head`): end quietly. Point stdout
        # at devnull so that the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # the CLI reports errors plainly; tracebacks with POLYMLP_DEBUG=1
        if os.environ.get("POLYMLP_DEBUG"):
            raise
        print(f"polymlp {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
