"""Generate docs/comparison.md: the same network written with polymlp, PyTorch and scikit-learn.

Each library's version of the seed network (14-100-40-4, ReLU, softmax + cross-entropy,
Adam with learning rate 0.002, batches of 32, reshuffled every epoch, 10 epochs) lives in
``benchmarks/api_snippets/``. This script counts each snippet's lines of code (without
docstring, comments and blank lines; imports included), trains each one ``--repeats``
times on the hypercube data, rotating the order between rounds, and writes a Markdown
table of the median time (training plus test predictions) and the mean test accuracy.

Run:  python benchmarks/compare_apis.py [--repeats 3] [--threads 1] [--out FILE] [--quick]
"""
import argparse
import ast
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
SNIPPETS = os.path.join(HERE, "api_snippets")
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "docs", "comparison.md")
ROWS = (  # (label, snippet file, module that must be importable)
    ("polymlp", "polymlp_mlp.py", "polymlp"),
    ("polymlp, scikit-learn API", "polymlp_sklearn_mlp.py", "sklearn"),
    ("PyTorch", "torch_mlp.py", "torch"),
    ("scikit-learn", "sklearn_mlp.py", "sklearn"),
)


def count_lines(path):
    """Lines of code: not blank, not a comment, not part of the module docstring."""
    with open(path) as fh:
        source = fh.read()
    tree = ast.parse(source)
    skip = set()
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str):
        skip.update(range(first.lineno, first.end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if number not in skip and line.strip() and not line.strip().startswith("#"))


def load(filename):
    spec = importlib.util.spec_from_file_location(filename[:-3], os.path.join(SNIPPETS, filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per library (median)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for BLAS and PyTorch (0: libraries' defaults)")
    parser.add_argument("--out", default=None, help=f"Markdown file (default {DEFAULT_OUT}; "
                                                     f"with --quick, print only)")
    parser.add_argument("--quick", action="store_true",
                        help="one run of one epoch on 2,000 rows (a smoke test)")
    parser.add_argument("--readme", default=None,
                        help="also put the table into this README's 'comparison' block")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs = 1, 1
    if args.threads:
        # Before numpy or torch is imported: they read these once.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    import numpy

    import polymlp as pm

    data = pm.datasets.hypercube()
    if args.quick:  # a smoke test: 2,000 training rows
        data = (data[0][:2000], data[1][:2000], data[2], data[3])
    rows, versions = [], {"numpy": numpy.__version__, "polymlp": pm.__version__}
    available = []
    for label, filename, needs in ROWS:
        lines = count_lines(os.path.join(SNIPPETS, filename))
        if importlib.util.find_spec(needs) is None:
            rows.append((label, filename, lines, None, None))
            continue
        module = load(filename)
        name = {"sklearn": "scikit-learn"}.get(needs, needs)
        versions[name] = getattr(sys.modules[needs], "__version__", "?")
        available.append((label, filename, lines, module))
    times = {label: [] for label, *_ in available}
    scores = {label: [] for label, *_ in available}
    for round_ in range(args.repeats):
        shift = round_ % len(available)
        for label, filename, lines, module in available[shift:] + available[:shift]:
            start = time.perf_counter()
            with warnings.catch_warnings():  # scikit-learn: "max_iter reached" is intended
                warnings.simplefilter("ignore")
                accuracy = module.train(*data, epochs=args.epochs)
            times[label].append(time.perf_counter() - start)
            scores[label].append(accuracy)
            print(f"{label:<26} run {round_ + 1}: {times[label][-1]:7.2f}s  "
                  f"accuracy {accuracy:.4f}", file=sys.stderr)
    for label, filename, lines, module in available:
        rows.append((label, filename, lines, statistics.median(times[label]),
                     statistics.fmean(scores[label])))
    rows.sort(key=lambda r: [label for label, *_ in ROWS].index(r[0]))
    text = markdown(rows, versions, args, data)
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as fh:
            fh.write(text)
        print(f"wrote {out}", file=sys.stderr)
    if args.readme:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from readme import splice

        splice(args.readme, "comparison", text.split("\n", 1)[1])  # without its heading
    print(text)
    return 0


def markdown(rows, versions, args, data):
    threads = f"{args.threads} thread(s)" if args.threads else "the libraries' default threads"
    head = [
        "## The same network in polymlp, PyTorch and scikit-learn",
        "",
        "<!-- Generated by `python benchmarks/compare_apis.py`; do not edit by hand. -->",
        "",
        f"The seed network (14-100-40-4, ReLU, softmax + cross-entropy, Adam with learning "
        f"rate 0.002, batches of 32, {args.epochs} epoch(s)) trained on the hypercube data "
        f"({len(data[0]):,} training rows, {len(data[2]):,} test rows) on the CPU with "
        f"{threads}. Time is the "
        f"median of {args.repeats} run(s) of training plus test predictions; accuracy is the "
        f"mean test accuracy. Lines of code count each snippet in `benchmarks/api_snippets/` "
        f"without its docstring, comments or blank lines (imports included).",
        "",
        "| library | snippet | lines of code | time (s) | test accuracy |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    body = []
    for label, filename, lines, seconds, accuracy in rows:
        if seconds is None:
            body.append(f"| {label} | `{filename}` | {lines} | not installed | |")
        else:
            body.append(f"| {label} | `{filename}` | {lines} | {seconds:.2f} | {accuracy:.4f} |")
    env = ", ".join(f"{k} {v}" for k, v in versions.items())
    tail = ["", f"Measured with Python {platform.python_version()}, {env}; "
                f"{os.cpu_count()} CPU core(s), {platform.machine()}.", ""]
    return "\n".join(head + body + tail)


if __name__ == "__main__":
    sys.exit(main())
