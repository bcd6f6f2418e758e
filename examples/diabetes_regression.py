"""Regression on scikit-learn's bundled diabetes data: polymlp against scikit-learn.

Both train the same model: 10 inputs, 16 ReLU units, one identity output, mean squared
error, Adam (learning rate 0.001, batches of 200), at most 200 epochs with scikit-learn's
stopping rule. Inputs and target are standardised (the target through
TransformedTargetRegressor, so R^2 is reported on the original scale). A linear
regression is printed too: with 442 patients, it is the bar to beat.

Run:  python examples/diabetes_regression.py [--seeds 5] [--backend numpy] [--quick]
"""
import argparse
import time
import warnings

import numpy
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from polymlp.sklearn import MLPRegressor

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, default=5, help="train/test splits to average over")
parser.add_argument("--backend", default="numpy")
parser.add_argument("--quick", action="store_true", help="one seed, 50 epochs")
args = parser.parse_args()
seeds = 1 if args.quick else args.seeds
epochs = 50 if args.quick else 200

X, y = load_diabetes(return_X_y=True)  # 442 patients, 10 features, disease progression
models = {
    "polymlp": lambda seed: MLPRegressor(hidden_layer_sizes=(16,), max_iter=epochs,
                                         learning_rate_init=0.001, random_state=seed,
                                         backend=args.backend),
    "scikit-learn": lambda seed: SklearnMLP(hidden_layer_sizes=(16,), max_iter=epochs,
                                            learning_rate_init=0.001, random_state=seed),
    "linear model": lambda seed: LinearRegression(),
}
scores = {name: [] for name in models}
seconds = {name: 0.0 for name in models}
for seed in range(seeds):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    for name, make in models.items():
        model = make_pipeline(StandardScaler(), TransformedTargetRegressor(
            make(seed), transformer=StandardScaler()))
        start = time.perf_counter()
        with warnings.catch_warnings():  # scikit-learn warns when training is cut short
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        seconds[name] += time.perf_counter() - start
        scores[name].append(model.score(X_test, y_test))

print(f"diabetes, 10-16-1 MLP, {seeds} split(s), up to {epochs} epochs: test R^2")
for name in models:
    print(f"  {name:<13} R^2 {numpy.mean(scores[name]):.4f} "
          f"(per split: {', '.join(f'{s:.3f}' for s in scores[name])}), "
          f"train {seconds[name]:.2f}s")
gap = numpy.mean(scores["polymlp"]) - numpy.mean(scores["scikit-learn"])
print(f"  polymlp - scikit-learn: {gap:+.4f}")
