"""Time ``fit`` of polymlp.sklearn against scikit-learn's own MLP, same recipe.

Two workloads: the digits set (1,797 x 64, 10 classes) and a 100,000-row
tabular set from ``make_classification`` (20 features, 2 classes).  Both
estimators get the same parameters (scikit-learn's defaults but for
`max_iter`, with `tol=0` so both run every iteration, and a fixed seed); the
script prints the median wall time of each over `--repeats` fits and the
ratio scikit-learn / polymlp (above 1: polymlp is faster), plus the test
accuracy of each.  Run it with one BLAS thread so that neither gets more
cores than the other::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python benchmarks/sklearn_fit.py [--backend numpy] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from polymlp.sklearn import MLPClassifier  # noqa: E402


def _digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _tabular():
    X, y = make_classification(n_samples=100_000, n_features=20, n_informative=10,
                               random_state=0)
    return StandardScaler().fit_transform(X), y


WORKLOADS = {
    "digits (1797x64, adam, 30 epochs)": (_digits, dict(solver="adam", max_iter=30)),
    "digits (1797x64, lbfgs, 100 iterations)": (_digits, dict(solver="lbfgs", max_iter=100)),
    "tabular (100000x20, adam, 5 epochs)": (_tabular, dict(solver="adam", max_iter=5)),
}


def _time_fit(make, X, y, repeats):
    times, model = [], None
    for _ in range(repeats):
        model = make()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times), model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="numpy", help="polymlp backend (default numpy)")
    parser.add_argument("--repeats", type=int, default=5, help="fits per estimator (median)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    rows = []
    print(f"fit time, median of {args.repeats}; ratio = scikit-learn / polymlp "
          f"(backend {args.backend}; > 1 means polymlp is faster)")
    for name, (load, params) in WORKLOADS.items():
        X, y = load()
        Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
        common = dict(random_state=0, tol=0.0, **params)
        ours_t, ours = _time_fit(lambda: MLPClassifier(**common, backend=args.backend),
                                 Xtr, ytr, args.repeats)
        sk_t, sk = _time_fit(lambda: SkMLPClassifier(**common), Xtr, ytr, args.repeats)
        row = {"workload": name, "polymlp_s": ours_t, "sklearn_s": sk_t,
               "ratio": sk_t / ours_t, "polymlp_accuracy": ours.score(Xte, yte),
               "sklearn_accuracy": sk.score(Xte, yte)}
        rows.append(row)
        print(f"{name:42s} polymlp {ours_t:7.3f} s  scikit-learn {sk_t:7.3f} s  "
              f"ratio {row['ratio']:5.2f}  accuracy {row['polymlp_accuracy']:.4f} vs "
              f"{row['sklearn_accuracy']:.4f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"backend": args.backend, "repeats": args.repeats, "rows": rows}, fh,
                      indent=1)
    return rows


if __name__ == "__main__":
    numpy.seterr(all="ignore")
    main()
