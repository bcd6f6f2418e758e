"""One training run or one prediction run of each competitor, timed in-script.

Every ``train_*`` function takes a workload spec and its data, trains from the
shared initial weights (scikit-learn: its own) with Adam, and returns a dict
with ``train_s`` (the training loop only: no import, data generation or
evaluation), ``iterations``, ``test_acc`` and ``train_loss``; with
``memory=True`` it reports ``peak_bytes`` of model set-up plus training instead
of a time.  Every
``predict_*`` function returns the best and median seconds of ``predict`` on
the given rows after one warm-up call.
"""

import statistics
import time
import tracemalloc

import numpy as np

import workloads as wl


def _sizes(spec):
    return spec["sizes"]


def _iterations(spec, n):
    return spec["epochs"] * -(-n // spec["batch"])


def _log_loss(proba, y):
    p = np.clip(np.asarray(proba, dtype=np.float64)[np.arange(len(y)), y], 1e-12, 1.0)
    return float(-np.mean(np.log(p)))


class Clock:
    """Times a block; with ``memory=True`` also its peak traced memory (then untimed).

    tracemalloc sees NumPy's buffers; memory that exists before the block (the
    data) is the baseline and is not counted.
    """

    def __init__(self, memory=False):
        self.memory, self.seconds, self.peak_bytes = memory, None, None

    def __enter__(self):
        if self.memory:
            tracemalloc.start()
            self._base = tracemalloc.get_traced_memory()[0]
        self._t0 = time.perf_counter()
        return self

    def restart(self):
        """Start the timer again here (the memory measurement keeps its start)."""
        self._t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        if self.memory:
            self.peak_bytes = tracemalloc.get_traced_memory()[1] - self._base
            tracemalloc.stop()
            self.seconds = None  # tracing slows the run: not a timing
        return False

    def result(self, **values):
        values.update(train_s=self.seconds, peak_bytes=self.peak_bytes)
        return values


def _timed(fn, repeats):
    fn()  # warm-up (first-call costs, lazy imports, compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"best_s": min(times), "median_s": statistics.median(times)}


# --- the reference (hand-written NumPy) ----------------------------------------------

def train_reference(spec, data, memory=False):
    from reference import ReferenceMLP

    x, y, xt, yt = data
    with Clock(memory) as clock:
        model = ReferenceMLP(_sizes(spec), wl.initial_weights(_sizes(spec)))
        y1h = wl.one_hot(y, _sizes(spec)[-1])
        clock.restart()  # the time covers the training loop only; memory, set-up too
        model.fit(x, y1h, spec["batch"], spec["epochs"], wl.shuffle_rng())
    return clock.result(iterations=_iterations(spec, len(y)),
                        test_acc=float(np.mean(model.predict_proba(xt).argmax(1) == yt)),
                        train_loss=_log_loss(model.predict_proba(x), y))


def predict_reference(sizes, rows, repeats):
    from reference import ReferenceMLP

    model = ReferenceMLP(sizes, wl.initial_weights(sizes))
    return _timed(lambda: model.predict_proba(rows).argmax(1), repeats)


# --- polymlp --------------------------------------------------------------------------

def polymlp_net(sizes, backend, device=None):
    import polymlp as pm

    net = pm.Network(sizes[0], name="bench", backend=backend, device=device, seed=0)
    for width in sizes[1:-1]:
        net.stack(pm.Dense(width, activation="relu"))
    net.output(pm.Dense(sizes[-1], activation="softmax"), loss="cross_entropy")
    net.set_weights(wl.initial_weights(sizes))
    return net


def train_polymlp(spec, data, backend, device=None, memory=False):
    import polymlp as pm

    x, y, xt, yt = data
    with Clock(memory) as clock:
        net = polymlp_net(_sizes(spec), backend, device)
        # The same batch order as the reference: polymlp draws each epoch's
        # permutation from net.rng, so hand it the shared shuffling generator.
        net.rng = wl.shuffle_rng()
        xb = net.backend.asarray(x)  # features on the backend first (labels as a user passes them)
        optimizer = pm.Adam(learning_rate=wl.LR, beta1=wl.BETA1, beta2=wl.BETA2, epsilon=wl.EPS)
        pm.to_numpy(xb[:1, :])  # the copy is finished before the clock starts
        clock.restart()
        net.fit(xb, y, epochs=spec["epochs"], batch_size=spec["batch"], optimizer=optimizer,
                record=None)
        wait_for(net)
    return clock.result(iterations=_iterations(spec, len(y)),
                        test_acc=float(np.mean(pm.to_numpy(net.predict(xt)) == yt)),
                        train_loss=_log_loss(pm.to_numpy(net.predict_proba(xb)), y))


def wait_for(net):
    """Block until `net`'s training has finished on asynchronous backends (JAX, GPUs)."""
    import polymlp as pm

    theta = getattr(net, "theta", None)  # the flat parameter buffer, where the network has one
    if theta is not None:
        pm.to_numpy(theta[:1])
    else:
        net.get_weights()


def predict_polymlp(sizes, rows, repeats, backend, device=None):
    import polymlp as pm

    net = polymlp_net(sizes, backend, device)
    data = net.backend.asarray(rows)
    return _timed(lambda: pm.to_numpy(net.predict(data)), repeats)


# --- PyTorch --------------------------------------------------------------------------

def torch_model(sizes, device="cpu"):
    import torch
    from torch import nn

    layers = []
    for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fi, fo))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    weights = wl.initial_weights(sizes)
    with torch.no_grad():
        for linear, W, b in zip(model[::2], weights[0::2], weights[1::2]):
            linear.weight.copy_(torch.from_numpy(W.T.copy()))  # torch stores (out, in)
            linear.bias.copy_(torch.from_numpy(b))
    return model.to(device)


def train_torch(spec, data, fused=False, device="cpu", memory=False):
    import torch

    x, y, xt, yt = data
    model = torch_model(_sizes(spec), device)
    X, Y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    kw = {"fused": True} if fused else {}
    opt = torch.optim.Adam(model.parameters(), lr=wl.LR, betas=(wl.BETA1, wl.BETA2),
                           eps=wl.EPS, **kw)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, batch = X.shape[0], spec["batch"]
    rng = wl.shuffle_rng()
    _sync(device)
    with Clock(memory) as clock:
        for _ in range(spec["epochs"]):
            perm = torch.from_numpy(rng.permutation(n)).to(device)
            Xs = Ys = None
            Xs, Ys = X[perm], Y[perm]
            for s in range(0, n, batch):
                loss = loss_fn(model(Xs[s:s + batch]), Ys[s:s + batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        _sync(device)
    with torch.no_grad():
        proba = torch.softmax(model(X), dim=1).cpu().numpy()
        pred = model(torch.from_numpy(xt).to(device)).argmax(1).cpu().numpy()
    return clock.result(iterations=_iterations(spec, n), test_acc=float(np.mean(pred == yt)),
                        train_loss=_log_loss(proba, y))


def _sync(device):
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def predict_torch(sizes, rows, repeats, device="cpu"):
    import torch

    model = torch_model(sizes, device)
    X = torch.from_numpy(rows).to(device)

    def run():
        with torch.no_grad():
            return model(X).argmax(1).cpu().numpy()

    return _timed(run, repeats)


# --- scikit-learn ---------------------------------------------------------------------

def _sklearn_model(spec, max_iter):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=tuple(_sizes(spec)[1:-1]), activation="relu",
                         solver="adam", batch_size=spec["batch"], learning_rate_init=wl.LR,
                         beta_1=wl.BETA1, beta_2=wl.BETA2, epsilon=wl.EPS, alpha=0.0,
                         max_iter=max_iter, tol=0.0, n_iter_no_change=10 ** 9, shuffle=True,
                         random_state=wl.WEIGHT_SEED)


def train_sklearn(spec, data, memory=False):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    x, y, xt, yt = data
    clf = _sklearn_model(spec, spec["epochs"])
    with warnings.catch_warnings(), Clock(memory) as clock:
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)  # float32 in, float32 weights (its own Glorot init and shuffle)
    return clock.result(iterations=_iterations(spec, len(y)),
                        test_acc=float(np.mean(clf.predict(xt) == yt)),
                        train_loss=_log_loss(clf.predict_proba(x), y))


def predict_sklearn(sizes, rows, repeats):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    # Fit one epoch on a few rows to get a fitted estimator, then load the shared weights.
    clf = _sklearn_model({"sizes": sizes, "batch": 32}, 1)
    k = sizes[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(rows[:4 * k], np.arange(4 * k) % k)
    weights = wl.initial_weights(sizes)
    clf.coefs_, clf.intercepts_ = weights[0::2], weights[1::2]
    return _timed(lambda: clf.predict(rows), repeats)


# --- GEMM throughput ------------------------------------------------------------------

def gemm_numpy(n=1024, reps=10, rounds=7):
    """Median float32 GFLOP/s of an n x n x n matrix product with NumPy's BLAS."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    return _gemm_rate(lambda: np.matmul(a, b, out=out), n, reps, rounds)


def gemm_torch(n=1024, reps=10, rounds=7, device="cpu"):
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return _gemm_rate(lambda: torch.mm(a, b), n, reps, rounds, sync=lambda: _sync(device))


def gemm_cupy(n=8192, reps=10, rounds=7):
    import cupy

    a = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    b = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    return _gemm_rate(lambda: a @ b, n, reps, rounds,
                      sync=cupy.cuda.Device().synchronize)


def _gemm_rate(product, n, reps, rounds, sync=lambda: None):
    for _ in range(3):
        product()
    sync()
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            product()
        sync()
        rates.append(2.0 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)
