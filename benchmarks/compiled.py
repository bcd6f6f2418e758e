"""Compiled training loops: hand-written JAX, Keras 3 on JAX, and polymlp on JAX fitted twice.

Every ``train_*`` function here follows :mod:`competitors`' contract (a spec
and its data in, a dict with ``train_s``, ``iterations``, ``test_acc`` and
``train_loss`` out) and adds what a compiled loop needs reported apart:
``compile_s`` (the hand-written loops' tracing plus XLA compilation, timed on
its own), ``first_s`` (polymlp's first ``fit``, compilation included) and
``warmup_s`` (Keras' untimed first epoch).  ``train_s`` is always the steady
state: the training loop with compilation already done.

Nothing here assumes a particular polymlp version: features of the new
training engine (``fit(steps_per_execution=...)``, a persistent compilation
cache setting) are detected, and their absence is reported, never an error.
"""

import inspect
import math
import os
import re
import time

import numpy as np

import workloads as wl
from competitors import _iterations, _log_loss


# --- hand-written JAX -----------------------------------------------------------------

def _jax_functions(sizes, n, batch):
    """The pure step and the two loops over an epoch built from it (not yet compiled)."""
    import jax
    import jax.numpy as jnp

    full, rest = n // batch, n % batch

    def loss_fn(params, x, y1h):
        h = x
        for W, b in params[:-1]:
            h = jax.nn.relu(h @ W + b)
        W, b = params[-1]
        return -jnp.mean(jnp.sum(y1h * jax.nn.log_softmax(h @ W + b), axis=1))

    def step(carry, batch_xy):
        # Adam exactly as benchmarks/reference.py (there the (1 - beta) factors are folded).
        params, m, v, t = carry
        g = jax.grad(loss_fn)(params, *batch_xy)
        t = t + 1.0
        m = jax.tree.map(lambda m, g: wl.BETA1 * m + (1 - wl.BETA1) * g, m, g)
        v = jax.tree.map(lambda v, g: wl.BETA2 * v + (1 - wl.BETA2) * g * g, v, g)
        c1, c2 = 1 - wl.BETA1 ** t, 1 - wl.BETA2 ** t
        params = jax.tree.map(lambda p, m, v: p - wl.LR * (m / c1) / (jnp.sqrt(v / c2) + wl.EPS),
                              params, m, v)
        return (params, m, v, t), None

    def scan_epoch(carry, X, Y, perm):
        # The whole epoch in one call: gather, scan over the full batches, the ragged tail.
        xs, ys = X[perm], Y[perm]
        cut = full * batch
        carry, _ = jax.lax.scan(step, carry, (xs[:cut].reshape(full, batch, -1),
                                              ys[:cut].reshape(full, batch, -1)))
        if rest:
            carry = step(carry, (xs[cut:], ys[cut:]))[0]
        return carry

    def gather(X, Y, perm):
        return X[perm], Y[perm]

    def one_step(carry, xs, ys, start):
        x = jax.lax.dynamic_slice_in_dim(xs, start, batch)
        y = jax.lax.dynamic_slice_in_dim(ys, start, batch)
        return step(carry, (x, y))[0]

    def tail_step(carry, xs, ys):
        return step(carry, (xs[full * batch:], ys[full * batch:]))[0]

    return loss_fn, scan_epoch, gather, one_step, tail_step, full, rest


def train_jax(spec, data, variant, memory=False, return_weights=False):
    """Hand-written JAX: ``variant="scan"`` (one jitted epoch) or ``"step"`` (one jitted step per batch).

    Same data, initial weights, per-epoch shuffles and Adam as the NumPy
    reference.  Compilation (tracing, lowering, XLA) is done ahead of time and
    reported as ``compile_s``; one untimed epoch then runs on a throw-away copy
    of the state, so ``train_s`` is the loop alone.
    """
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    x, y, xt, yt = data
    sizes, batch, n = spec["sizes"], spec["batch"], x.shape[0]
    weights = wl.initial_weights(sizes)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(weights[0::2], weights[1::2])]
    zeros = jax.tree.map(jnp.zeros_like, params)
    carry0 = (params, zeros, zeros, jnp.float32(0.0))
    X, Y = jnp.asarray(x), jnp.asarray(wl.one_hot(y, sizes[-1]))
    loss_fn, scan_epoch, gather, one_step, tail_step, full, rest = _jax_functions(sizes, n, batch)
    perm0 = jnp.asarray(np.arange(n, dtype=np.int32))

    t0 = time.perf_counter()
    if variant == "scan":
        epoch_c = jax.jit(scan_epoch).lower(carry0, X, Y, perm0).compile()

        def run_epoch(carry, perm):
            return epoch_c(carry, X, Y, jnp.asarray(perm.astype(np.int32)))
    else:
        gather_c = jax.jit(gather).lower(X, Y, perm0).compile()
        xs0, ys0 = gather_c(X, Y, perm0)
        step_c = jax.jit(one_step).lower(carry0, xs0, ys0, 0).compile()
        tail_c = jax.jit(tail_step).lower(carry0, xs0, ys0).compile() if rest else None

        def run_epoch(carry, perm):
            xs, ys = gather_c(X, Y, jnp.asarray(perm.astype(np.int32)))
            for i in range(full):
                carry = step_c(carry, xs, ys, i * batch)
            return tail_c(carry, xs, ys) if rest else carry
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(run_epoch(carry0, np.arange(n)))  # first execution, untimed

    rng = wl.shuffle_rng()
    carry = carry0
    t0 = time.perf_counter()
    for _ in range(spec["epochs"]):
        carry = run_epoch(carry, rng.permutation(n))
    jax.block_until_ready(carry)
    seconds = time.perf_counter() - t0

    params = [(np.asarray(W), np.asarray(b)) for W, b in carry[0]]
    if return_weights:
        return [a for pair in params for a in pair]
    return {"train_s": seconds, "compile_s": compile_s, "iterations": _iterations(spec, n),
            "test_acc": float(np.mean(_np_logits(params, xt).argmax(1) == yt)),
            "train_loss": _log_loss(_softmax(_np_logits(params, x)), y), "peak_bytes": None,
            "jax": jax.__version__}


def _np_logits(params, x):
    h = x
    for W, b in params[:-1]:
        h = np.maximum(h @ W + b, 0)
    return h @ params[-1][0] + params[-1][1]


def _softmax(z):
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# --- Keras 3 on JAX -------------------------------------------------------------------

def train_keras(spec, data, per_epoch, memory=False):
    """Keras 3 on its JAX backend; ``per_epoch``: ``steps_per_execution`` = the batches of an epoch.

    Timed: ``model.fit`` over the workload's epochs after an untimed one-epoch
    fit (compilation; ``warmup_s``) from the same initial weights.  Keras
    shuffles with its own generator.  This process must not have imported
    Keras with another backend (each measurement is its own process).
    """
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import keras

    x, y, xt, yt = data
    sizes, batch, n = spec["sizes"], spec["batch"], x.shape[0]
    spe = math.ceil(n / batch) if per_epoch else 1
    layers = [keras.Input((sizes[0],))]
    layers += [keras.layers.Dense(s, activation="relu") for s in sizes[1:-1]]
    layers += [keras.layers.Dense(sizes[-1], activation="softmax")]
    model = keras.Sequential(layers)
    start = wl.initial_weights(sizes)
    model.set_weights(start)
    opt = keras.optimizers.Adam(wl.LR, beta_1=wl.BETA1, beta_2=wl.BETA2, epsilon=wl.EPS)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", steps_per_execution=spe)
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)  # compiles
    warmup_s = time.perf_counter() - t0
    model.set_weights(start)
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=spec["epochs"], verbose=0, shuffle=True)
    seconds = time.perf_counter() - t0
    proba = model.predict(x, verbose=0, batch_size=4096)
    pred = np.argmax(model.predict(xt, verbose=0, batch_size=4096), axis=1)
    return {"train_s": seconds, "warmup_s": warmup_s, "iterations": _iterations(spec, n),
            "test_acc": float(np.mean(pred == yt)), "train_loss": _log_loss(proba, y),
            "peak_bytes": None, "keras": keras.__version__, "steps_per_execution": spe}


# --- polymlp, fitted twice ------------------------------------------------------------

def engine_features():
    """What the installed polymlp's training engine offers, detected (never assumed)."""
    import polymlp as pm

    params = inspect.signature(pm.Network.fit).parameters
    setting = cache_setting()
    return {"steps_per_execution": "steps_per_execution" in params,
            "compilation_cache": None if setting is None else "%s %s" % setting}


#: Public functions that would turn polymlp's persistent compilation cache on, given a folder.
CACHE_FUNCTIONS = ("enable_compilation_cache", "set_compilation_cache", "compilation_cache")


def cache_setting():
    """polymlp's persistent-compilation-cache setting: ``("function", name)``, ``("env", NAME)`` or None.

    A public function of one of the names in :data:`CACHE_FUNCTIONS`, else an
    environment variable ``POLYMLP_...CACHE...`` that polymlp's own source reads.
    """
    import polymlp as pm

    for name in CACHE_FUNCTIONS:
        if callable(getattr(pm, name, None)):
            return ("function", name)
    pattern = re.compile(r"POLYMLP_[A-Z0-9_]*CACHE[A-Z0-9_]*")
    root = os.path.dirname(pm.__file__)
    for dirpath, _, files in os.walk(root):
        for file in files:
            if file.endswith(".py"):
                with open(os.path.join(dirpath, file), encoding="utf-8") as fh:
                    found = pattern.search(fh.read())
                if found:
                    return ("env", found.group(0))
    return None


def enable_cache(mode, folder):
    """Turn a persistent compilation cache on in this process, before any compilation.

    ``mode="polymlp"``: polymlp's own setting (``RuntimeError`` when it has
    none); ``mode="jax"``: JAX's cache directly, with its size and time
    thresholds at zero (what such a setting could at best give).
    """
    if mode == "polymlp":
        setting = cache_setting()
        if setting is None:
            raise RuntimeError("this polymlp has no persistent compilation cache setting")
        kind, name = setting
        if kind == "env":
            os.environ[name] = folder
        else:
            import polymlp as pm

            getattr(pm, name)(folder)
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _plugin_net(sizes, backend):
    """W1's widths with a third-party-style per-feature affine layer and polymlp-extras' layer_norm."""
    import polymlp as pm
    from plugin_layers import PerFeatureAffine

    try:
        norm = pm.registry.get_layer("layer_norm")  # as a user names it: the entry point
    except Exception:
        try:  # polymlp-extras importable (the checkout's) but not installed
            from polymlp_extras.layers import LayerNorm

            norm = LayerNorm()
        except ImportError:  # not there at all: the affine layer alone
            norm = None
    net = pm.Network(sizes[0], name="bench-plugins", backend=backend, seed=0)
    net.stack(pm.Dense(sizes[1], activation="relu")).stack(PerFeatureAffine())
    for width in sizes[2:-1]:
        net.stack(pm.Dense(width, activation="relu"))
    if norm is not None:
        net.stack(norm)
    net.output(pm.Dense(sizes[-1], activation="softmax"), loss="cross_entropy")
    return net, ["per-feature affine (benchmarks/plugin_layers.py)"] + (
        ["layer_norm (polymlp-extras)"] if norm is not None else [])


def train_polymlp_twice(spec, data, backend, *, recording=False, plugins=False, cache=None,
                        fits=2, memory=False):
    """polymlp's ``fit`` called `fits` times on one network from the same weights and batches.

    ``first_s`` is the first call (compilation included on JAX), ``train_s``
    the last (the steady state: a second ``fit`` on the same network, the same
    optimizer object passed again).  ``recording=True`` records as
    ``polymlp reproduce`` does (per-iteration training loss, the test set
    validated every 10 iterations); otherwise ``record=None``.  ``cache``:
    ``(mode, folder)`` for :func:`enable_cache`.
    """
    if cache is not None:
        enable_cache(*cache)
    import polymlp as pm
    from competitors import polymlp_net, wait_for

    x, y, xt, yt = data
    if plugins:
        net, plugin_names = _plugin_net(spec["sizes"], backend)
    else:
        net, plugin_names = polymlp_net(spec["sizes"], backend), []
    start = net.get_weights()
    xb = net.backend.asarray(x)
    optimizer = pm.Adam(learning_rate=wl.LR, beta1=wl.BETA1, beta2=wl.BETA2, epsilon=wl.EPS)
    kwargs = {"record": None}
    if recording:
        kwargs = {"record": "iteration", "validation_data": (net.backend.asarray(xt), yt),
                  "validation_freq": 10}
    pm.to_numpy(xb[:1, :])
    times = []
    for _ in range(fits):
        net.set_weights(start)
        net.rng = wl.shuffle_rng()  # the reference's batches, every fit
        t0 = time.perf_counter()
        net.fit(xb, y, epochs=spec["epochs"], batch_size=spec["batch"], optimizer=optimizer,
                **kwargs)
        wait_for(net)
        times.append(time.perf_counter() - t0)
    out = {"train_s": times[-1], "first_s": times[0], "iterations": _iterations(spec, len(y)),
           "test_acc": float(np.mean(pm.to_numpy(net.predict(xt)) == yt)),
           "train_loss": _log_loss(pm.to_numpy(net.predict_proba(xb)), y), "peak_bytes": None,
           "engine": engine_features()}
    if plugins:
        out["plugins"] = plugin_names
    return out
