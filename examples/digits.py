"""Handwritten digits (scikit-learn's bundled 8x8 images): polymlp against scikit-learn.

Both libraries train the same model: 64 inputs, one hidden layer of 64 ReLU units,
softmax output, Adam (learning rate 0.001, batches of 200), at most 300 epochs with
scikit-learn's stopping rule, on standardised pixels. Each seed draws a new stratified
75/25 split and new initial weights; the script prints the test accuracy of both.

Run:  python examples/digits.py [--seeds 5] [--backend numpy] [--quick]
"""
import argparse
import time
import warnings

import numpy
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from polymlp.sklearn import MLPClassifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, default=5, help="train/test splits to average over")
parser.add_argument("--backend", default="numpy")
parser.add_argument("--quick", action="store_true", help="one seed, 30 epochs")
args = parser.parse_args()
seeds = 1 if args.quick else args.seeds
epochs = 30 if args.quick else 300

X, y = load_digits(return_X_y=True)  # 1,797 images of 8x8 pixels, labels 0..9
models = {
    "polymlp": lambda seed: MLPClassifier(hidden_layer_sizes=(64,), max_iter=epochs,
                                          learning_rate_init=0.001, random_state=seed,
                                          backend=args.backend),
    "scikit-learn": lambda seed: SklearnMLP(hidden_layer_sizes=(64,), max_iter=epochs,
                                            learning_rate_init=0.001, random_state=seed),
}
scores = {name: [] for name in models}
seconds = {name: 0.0 for name in models}
for seed in range(seeds):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=seed)
    for name, make in models.items():
        model = make_pipeline(StandardScaler(), make(seed))
        start = time.perf_counter()
        with warnings.catch_warnings():  # scikit-learn warns when --quick cuts training short
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        seconds[name] += time.perf_counter() - start
        scores[name].append(model.score(X_test, y_test))

print(f"digits, 64-64-10 MLP, {seeds} split(s), up to {epochs} epochs")
for name in models:
    print(f"  {name:<13} test accuracy {numpy.mean(scores[name]):.4f} "
          f"(per split: {', '.join(f'{s:.4f}' for s in scores[name])}), "
          f"train {seconds[name]:.1f}s")
gap = numpy.mean(scores["polymlp"]) - numpy.mean(scores["scikit-learn"])
print(f"  polymlp - scikit-learn: {gap:+.4f}")
