"""What every benchmark trains on: data, architectures, initial weights, batch order.

All competitors import this module, so they see the same float32 data, the
same architecture, the same He-uniform initial weights (zero biases), the
same Adam hyper-parameters and (all but scikit-learn) the same per-epoch
shuffles.  Nothing here is timed.
"""

import math

import numpy as np

LR, BETA1, BETA2, EPS = 0.002, 0.9, 0.999, 1e-8
WEIGHT_SEED = 0    # initial weights
SHUFFLE_SEED = 1   # the per-epoch permutations
WIDE_SEED = 12345  # W2's synthetic data

#: name -> layer widths, batch size, epochs, data set.
WORKLOADS = {
    "w1": dict(sizes=[14, 100, 40, 4], batch=32, epochs=10, data="hypercube"),
    "w1-6x28": dict(sizes=[14] + [28] * 6 + [4], batch=32, epochs=10, data="hypercube"),
    "w1-28x14": dict(sizes=[14] + [14] * 28 + [4], batch=32, epochs=10, data="hypercube"),
    "w2": dict(sizes=[784, 1024, 1024, 10], batch=256, epochs=2, data="wide"),
    # GPU only: a GEMM-bound net at a large batch.
    "gpu-4096": dict(sizes=[4096, 4096, 4096, 10], batch=4096, epochs=2, data="wide4096"),
}

#: The three seed nets of the hypercube experiment, in README order.
W1_NETS = ("w1", "w1-6x28", "w1-28x14")


def spec(name, epochs=None):
    """The workload's description, with `epochs` overridden when given (quick runs)."""
    out = dict(WORKLOADS[name], name=name)
    if epochs is not None:
        out["epochs"] = epochs
    return out


def n_params(sizes):
    return sum(fi * fo + fo for fi, fo in zip(sizes[:-1], sizes[1:]))


def wide(n_train=16384, n_test=2048, d=784, k=10, seed=WIDE_SEED):
    """MNIST-shaped synthetic data: standard-normal rows labelled by a random linear map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + n_test, d), dtype=np.float32)
    y = np.argmax(x @ rng.standard_normal((d, k), dtype=np.float32), axis=1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def load(workload):
    """``(x_train, y_train, x_test, y_test)`` as float32 features and int64 labels."""
    kind = WORKLOADS[workload]["data"]
    if kind == "hypercube":
        from polymlp.datasets import hypercube

        return hypercube()
    if kind == "wide":
        return wide()
    return wide(n_train=65536, n_test=4096, d=4096)


def initial_weights(sizes, seed=WEIGHT_SEED):
    """He-uniform weights of shape (inputs, outputs) and zero biases: ``[W1, b1, W2, b2, ...]``."""
    rng = np.random.default_rng(seed)
    out = []
    for fi, fo in zip(sizes[:-1], sizes[1:]):
        bound = math.sqrt(6.0 / fi)
        out += [rng.uniform(-bound, bound, size=(fi, fo)).astype(np.float32),
                np.zeros(fo, dtype=np.float32)]
    return out


def shuffle_rng():
    """The generator whose successive ``permutation(n)`` calls give each epoch's order."""
    return np.random.default_rng(SHUFFLE_SEED)


def one_hot(y, k):
    out = np.zeros((y.shape[0], k), dtype=np.float32)
    out[np.arange(y.shape[0]), y] = 1.0
    return out
