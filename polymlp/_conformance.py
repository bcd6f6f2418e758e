"""The conformance kit: one check per plugin kind, run on every installed backend.

Plugin packages call these from their own tests (re-exported by
:mod:`polymlp.testing`)::

    from polymlp.testing import check_activation

    def test_swish():
        check_activation(Swish)

Each check runs the object on every selected backend (``POLYMLP_TEST_BACKENDS``,
or every installed one) in float32 and float64 — array-api-strict on its
non-default ``device1`` and on its ``no_float64`` device, NumPy also through a
read-only namespace — and fails with an ``AssertionError`` naming the object,
the backend, the dtype and what went wrong.  It checks that:

- results keep the input's shape, dtype, array library and device;
- inputs are never written in place (read-only arrays, unchanged values);
- results agree with NumPy's within a dtype-scaled tolerance;
- derivatives / backward passes / gradients match central finite differences
  in float64;
- ``get_config()`` is JSON-safe and ``from_config()`` rebuilds an equal object
  (and, when the name is registered, the registry resolves it to this class);
- on JAX, the computation also runs under ``jax.jit`` with the same result;
- an optimizer decreases a quadratic.

Each check returns the list of ``"backend dtype"`` labels it ran on.
"""

from __future__ import annotations

import functools
import json
import sys

import numpy

from . import registry
from .layers import check_param_spec
from ._array_api import array_backend_name, device_of, resolve_backend, same_device, to_numpy
from ._test_backends import atol_for, available, network_kwargs, selected_backends

__all__ = ["ConformanceError", "check_activation", "check_initializer", "check_layer",
           "check_loss", "check_optimizer"]

_DTYPES = ("float32", "float64")


class ConformanceError(AssertionError):
    """A plugin failed a conformance check."""


class _Target:
    """One backend (and device) to check on, with the dtypes it offers."""

    def __init__(self, label, backend, lib, dtypes):
        self.label, self.backend, self.lib, self.dtypes = label, backend, lib, dtypes
        self.xp = backend.xp

    def asarray(self, host, dtype):
        return self.backend.asarray(numpy.asarray(host, dtype=dtype))


def _targets(backends):
    names = list(backends) if backends is not None else selected_backends()
    out = []
    for name in names:
        if not available(name):
            continue
        kwargs = network_kwargs(name, enable_x64=False)  # x64 is scoped: see _scoped_x64
        backend = resolve_backend(kwargs["backend"], kwargs.get("device"))
        lib = "numpy" if name == "numpy_readonly" else name
        label = f"{name}:{kwargs['device']}" if kwargs.get("device") else name
        dtypes = tuple(d for d in _DTYPES if d in backend.float_dtypes())
        out.append(_Target(label, backend, lib, dtypes))
        if name == "array_api_strict":
            # A device without float64: float32 code must not create float64 arrays.
            strict = resolve_backend("array_api_strict", "no_float64")
            out.append(_Target("array_api_strict:no_float64", strict, lib, ("float32",)))
    if not out:
        _skip(f"no backend to check: none of {names} is available here "
              f"(POLYMLP_TEST_BACKENDS={','.join(names)}).")
    return out


def _scoped_x64(check):
    """Run `check` with JAX's float64 on, then restore JAX's configuration as it was.

    The kit checks float64 on every backend; JAX offers it only with
    ``jax_enable_x64``, which is process-wide. A plugin's test suite must not
    find it changed after a check.
    """
    @functools.wraps(check)
    def run(*args, backends=None, **kwargs):
        names = list(backends) if backends is not None else selected_backends()
        if "jax" not in names or not available("jax"):
            return check(*args, backends=backends, **kwargs)
        import jax

        with jax.enable_x64(True):
            return check(*args, backends=backends, **kwargs)
    return run


def _skip(reason):
    pytest = sys.modules.get("pytest")
    if pytest is not None:
        pytest.skip(reason)
    raise ConformanceError(reason)


_REFERENCE = _Target("numpy reference", resolve_backend("numpy"), "numpy", _DTYPES)


class _Context:
    """Who is being checked where, for error messages."""

    def __init__(self, check, obj):
        self.check, self.obj, self.where = check, obj, ""

    def fail(self, message):
        raise ConformanceError(f"{self.check}({self.obj!r}){self.where}: {message}")

    def run(self, what, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ConformanceError:
            raise
        except Exception as exc:
            self.fail(f"{what} raised {type(exc).__name__}: {exc}")


def _instance(kind, obj, config, ctx_name):
    if isinstance(obj, type):
        registry.check_protocol(kind, obj)
        return obj(**(config or {}))
    if config:
        raise TypeError(f"{ctx_name}: pass `config` only with a class; got an instance {obj!r}.")
    registry.check_protocol(kind, type(obj))
    return obj


# --- array checks -------------------------------------------------------------------

def _check_array(ctx, arr, target, dtype, shape, what):
    lib = ctx.run(f"inspecting {what}", array_backend_name, arr)
    if lib != target.lib:
        ctx.fail(f"{what} is a {lib} array ({type(arr).__name__}); expected a {target.lib} "
                 f"array: compute with the `xp` passed in, never with a library of your own.")
    if tuple(arr.shape) != tuple(shape):
        ctx.fail(f"{what} has shape {tuple(arr.shape)}; expected {tuple(shape)}.")
    if arr.dtype != getattr(target.xp, dtype):
        ctx.fail(f"{what} has dtype {arr.dtype}; expected {dtype}: keep the input's dtype "
                 f"(Python scalars keep it; arrays made with xp.asarray need dtype=x.dtype).")
    dev = device_of(arr)
    if not same_device(dev, target.backend.device):
        ctx.fail(f"{what} is on device {dev!r}; expected {target.backend.device!r}: create "
                 f"arrays with device=x.device (or xp.*_like).")


def _snapshot(arrays):
    return [to_numpy(a).copy() for a in arrays]


def _check_unchanged(ctx, arrays, before, names):
    for a, b, name in zip(arrays, before, names):
        if not numpy.array_equal(to_numpy(a), b, equal_nan=True):
            ctx.fail(f"the input {name} was modified in place; return new arrays instead "
                     f"(JAX arrays are immutable).")


def _close(ctx, actual, expected, rtol, atol, what):
    actual, expected = numpy.asarray(actual, dtype=float), numpy.asarray(expected, dtype=float)
    if actual.shape != expected.shape:
        ctx.fail(f"{what}: shape {actual.shape} != expected {expected.shape}.")
    bad = ~(numpy.abs(actual - expected) <= atol + rtol * numpy.abs(expected))
    bad &= ~(numpy.isnan(actual) & numpy.isnan(expected))
    if bad.any():
        i = tuple(int(k) for k in numpy.argwhere(bad)[0])
        ctx.fail(f"{what}: {int(bad.sum())} of {actual.size} values differ beyond "
                 f"rtol={rtol:g}, atol={atol:g}; e.g. at index {i}: {actual[i]!r} vs "
                 f"expected {expected[i]!r}.")


def _tol(dtype, scale=10.0):
    t = atol_for(dtype) * scale
    return {"rtol": t, "atol": t}


def _finite_difference(f, x, eps=1e-6):
    """Central differences of scalar function `f` at host float64 array `x`."""
    grad = numpy.zeros_like(x)
    for idx in numpy.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (f(up) - f(down)) / (2 * eps)
    return grad


_FD_TOL = {"rtol": 1e-5, "atol": 1e-7}


def _jit(target, func):
    """`func` compiled with jax.jit on the JAX backend, else None."""
    if target.lib != "jax":
        return None
    import jax

    return jax.jit(func)


def _check_config(ctx, kind, obj):
    """JSON round trip of the config, rebuild, and the registry's name for the class."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        ctx.fail(f"`name` must be a non-empty string (the registered name); got {name!r}.")
    config = ctx.run("get_config()", obj.get_config)
    if not isinstance(config, dict):
        ctx.fail(f"get_config() must return a dict; got {type(config).__name__}.")
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        ctx.fail(f"get_config() must be JSON-safe (str, numbers, bools, None, lists, "
                 f"dicts): {exc}; got {config!r}.")
    again = json.loads(text)
    if again != config:
        ctx.fail(f"get_config() does not survive a JSON round trip: {config!r} became "
                 f"{again!r} (use lists, not tuples; str keys).")
    rebuilt = ctx.run("from_config(get_config())", type(obj).from_config, again)
    if type(rebuilt) is not type(obj):
        ctx.fail(f"from_config() returned a {type(rebuilt).__name__}, not a {type(obj).__name__}.")
    if rebuilt.get_config() != config:
        ctx.fail(f"from_config(get_config()) has config {rebuilt.get_config()!r}; "
                 f"expected {config!r}.")
    if name in registry.names(kind):
        cls = ctx.run(f"registry.load({kind!r}, {name!r})", registry.load, kind,
                      registry.qualified_name(obj))
        # An unregistered subclass (a test double, say) inherits the name: not an error.
        if cls is not type(obj) and not issubclass(type(obj), cls):
            ctx.fail(f"the registry resolves {registry.qualified_name(obj)!r} to {cls!r}, not "
                     f"to {type(obj)!r}: check the entry point's name and object.")
        if cls is type(obj):
            ctx.run("registry.get(kind, to_config(obj))", registry.get, kind,
                    registry.to_config(obj))
    return rebuilt


def _done(results, target, dtype):
    results.append(f"{target.label} {dtype}")


# --- activations --------------------------------------------------------------------

def _activation_inputs(seed=0, shape=(4, 5)):
    rng = numpy.random.default_rng(seed)
    # Away from 0, where rectifiers have their kink.
    z = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 3.0, size=shape)
    return z, rng.standard_normal(shape)


@_scoped_x64
def check_activation(activation, *, config=None, backends=None, z=None, finite_range=100.0):
    """Check an activation (class or instance) on every backend.

    Parameters
    ----------
    activation : Activation subclass or instance
    config : dict, optional
        Constructor arguments when `activation` is a class.
    backends : list of str, optional
        Test backend names (default: ``polymlp.testing.selected_backends()``).
    z : array_like, optional
        Host pre-activations of shape ``(n, k)`` to check at (default: random,
        with ``0.1 <= |z| <= 3``). Keep them away from kinks.
    finite_range : float or None
        Values up to ``±finite_range`` (float32 and float64) must give finite
        outputs and gradients; None skips that check (unbounded activations).

    Returns
    -------
    list of str
        ``"backend dtype"`` for every combination checked.
    """
    act = _instance("activations", activation, config, "check_activation")
    ctx = _Context("check_activation", act)
    zh, gh = _activation_inputs() if z is None else (numpy.asarray(z, dtype=float),
                                                      numpy.random.default_rng(1).standard_normal(numpy.shape(z)))
    elementwise = isinstance(act, registry.activations.ElementwiseActivation)
    rebuilt = _check_config(ctx, "activations", act)
    ref = {}
    ctx.where = " on numpy (reference)"
    for dtype in _DTYPES:
        ref[dtype] = _activation_run(ctx, act, _REFERENCE, dtype, zh, gh, elementwise)
    ctx.where = " on numpy (reference)"
    _close(ctx, _activation_run(ctx, rebuilt, _REFERENCE, "float64", zh, gh, elementwise)[0],
           ref["float64"][0], rtol=0, atol=0, what="forward of from_config(get_config())")
    results = []
    for target in _targets(backends):
        for dtype in target.dtypes:
            ctx.where = f" on {target.label} {dtype}"
            a, dz = _activation_run(ctx, act, target, dtype, zh, gh, elementwise)
            _close(ctx, a, ref[dtype][0], **_tol(dtype), what="forward vs NumPy")
            _close(ctx, dz, ref[dtype][1], **_tol(dtype), what="backward vs NumPy")
            if dtype == "float64":
                def loss(zz, target=target):
                    out = act.forward(target.asarray(zz, "float64"), xp=target.xp)
                    return float(numpy.sum(to_numpy(out) * gh))
                fd = _finite_difference(loss, zh)
                _close(ctx, dz, fd, **_FD_TOL, what="backward vs finite differences")
            if finite_range is not None:
                _activation_extremes(ctx, act, target, dtype, finite_range)
            _activation_jit(ctx, act, target, dtype, zh, gh, a, dz)
            _done(results, target, dtype)
    return results


def _activation_run(ctx, act, target, dtype, zh, gh, elementwise):
    xp = target.xp
    z, g = target.asarray(zh, dtype), target.asarray(gh, dtype)
    before = _snapshot([z, g])
    a = ctx.run("forward(z, xp=xp)", act.forward, z, xp=xp)
    _check_array(ctx, a, target, dtype, zh.shape, "forward(z)")
    a_before = _snapshot([a])
    dz = ctx.run("backward(z, a, grad, xp=xp)", act.backward, z, a, g, xp=xp)
    _check_array(ctx, dz, target, dtype, zh.shape, "backward(z, a, grad)")
    _check_unchanged(ctx, [z, g, a], before + a_before, ["z", "grad", "a"])
    if elementwise:
        d = ctx.run("derivative(z, xp=xp)", act.derivative, z, xp=xp)
        _check_array(ctx, d, target, dtype, zh.shape, "derivative(z)")
        v = ctx.run("value(z, xp=xp)", act.value, z, xp=xp)
        _close(ctx, to_numpy(v), to_numpy(a), **_tol(dtype), what="value(z) vs forward(z)")
        _close(ctx, to_numpy(dz), to_numpy(d) * to_numpy(g), **_tol(dtype),
               what="backward(z, a, grad) vs grad * derivative(z)")
    return to_numpy(a), to_numpy(dz)


def _activation_extremes(ctx, act, target, dtype, limit):
    zh = numpy.concatenate([numpy.linspace(-limit, limit, 21), [-limit, limit, 0.0]])[None, :]
    z = target.asarray(zh, dtype)
    a = ctx.run("forward at extreme inputs", act.forward, z, xp=target.xp)
    dz = ctx.run("backward at extreme inputs", act.backward, z, a,
                 target.xp.ones_like(z), xp=target.xp)
    for arr, what in ((a, "forward"), (dz, "backward")):
        host = to_numpy(arr)
        if not numpy.all(numpy.isfinite(host)):
            bad = zh[0][~numpy.isfinite(host[0])]
            ctx.fail(f"{what} is not finite at z = {bad[:3].tolist()} (inputs within "
                     f"±{limit:g}); use a numerically stable formula, or pass "
                     f"finite_range=None for an unbounded activation.")


def _activation_jit(ctx, act, target, dtype, zh, gh, a, dz):
    def step(z, g):
        out = act.forward(z, xp=target.xp)
        return out, act.backward(z, out, g, xp=target.xp)
    compiled = _jit(target, step)
    if compiled is None:
        return
    ja, jdz = ctx.run("forward/backward under jax.jit", compiled, target.asarray(zh, dtype),
                      target.asarray(gh, dtype))
    _close(ctx, to_numpy(ja), a, **_tol(dtype), what="forward under jax.jit vs eager")
    _close(ctx, to_numpy(jdz), dz, **_tol(dtype), what="backward under jax.jit vs eager")


# --- losses -------------------------------------------------------------------------

def _softmax_host(z):
    e = numpy.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _loss_inputs(classification, shape, seed=0):
    rng = numpy.random.default_rng(seed)
    n, k = shape
    z = rng.standard_normal(shape)
    if classification:
        if k == 1:
            y = rng.integers(0, 2, size=shape).astype(float)
            y_hat = 1.0 / (1.0 + numpy.exp(-z))
        else:
            y = numpy.eye(k)[rng.integers(0, k, size=n)]
            y_hat = _softmax_host(z)
    else:
        y, y_hat = rng.standard_normal(shape), z
    return y_hat, y


@_scoped_x64
def check_loss(loss, *, config=None, backends=None, shapes=((6, 3),), y_hat=None, y=None,
               activations=None):
    """Check a loss (class or instance) on every backend.

    Checks ``value`` (a 0-d array) and ``gradient`` (shape of ``y_hat``)
    against finite differences, and ``output_value``/``output_delta`` with each
    of `activations` against ``value`` and finite differences with respect to
    the pre-activations.

    Parameters
    ----------
    loss : Loss subclass or instance
    config : dict, optional
        Constructor arguments when `loss` is a class.
    shapes : sequence of (n, k)
        Batch shapes to check (random one-hot targets when the loss is a
        classification loss, Gaussian targets otherwise); e.g. add ``(6, 1)``
        for a loss that supports binary outputs.
    y_hat, y : array_like, optional
        Host inputs to use instead of random ones (then `shapes` is ignored).
    activations : sequence of str, optional
        Output activations for the fused ``output_value``/``output_delta`` check;
        by default ``sigmoid`` and ``softmax`` for classification losses (whose
        inputs are probabilities) and ``identity`` and ``tanh`` otherwise.
    """
    fn = _instance("losses", loss, config, "check_loss")
    ctx = _Context("check_loss", fn)
    if not isinstance(getattr(fn, "classification", None), bool):
        ctx.fail(f"`classification` must be True or False; got {fn.classification!r}.")
    rebuilt = _check_config(ctx, "losses", fn)
    if y_hat is not None or y is not None:
        cases = [(numpy.asarray(y_hat, dtype=float), numpy.asarray(y, dtype=float))]
    else:
        cases = [_loss_inputs(fn.classification, tuple(s), seed=i) for i, s in enumerate(shapes)]
    if activations is None:
        activations = ("sigmoid", "softmax") if fn.classification else ("identity", "tanh")
    acts = [registry.get_activation(a) for a in activations]
    results = []
    ctx.where = " on numpy (reference)"
    refs = {(c, d): _loss_run(ctx, fn, _REFERENCE, d, *cases[c], acts)
            for c in range(len(cases)) for d in _DTYPES}
    ctx.where = " on numpy (reference)"
    again = _loss_run(ctx, rebuilt, _REFERENCE, "float64", *cases[0], acts)
    _close(ctx, again[0], refs[(0, "float64")][0], rtol=0, atol=0,
           what="value of from_config(get_config())")
    for target in _targets(backends):
        for dtype in target.dtypes:
            ctx.where = f" on {target.label} {dtype}"
            for c, (yh, yy) in enumerate(cases):
                out = _loss_run(ctx, fn, target, dtype, yh, yy, acts)
                for got, want, what in zip(out, refs[(c, dtype)], _LOSS_OUTPUTS):
                    _close(ctx, got, want, **_tol(dtype, 100), what=f"{what} vs NumPy")
                if dtype == "float64":
                    _loss_fd(ctx, fn, target, yh, yy, acts, out)
                _loss_jit(ctx, fn, target, dtype, yh, yy, out)
            _done(results, target, dtype)
    return results


_LOSS_OUTPUTS = ("value", "gradient", "output_value", "output_delta")


def _acts_for(acts, shape):
    # A softmax over one column is the constant 1: no output for a loss to work on.
    return [a for a in acts if not (shape[1] == 1 and a.name == "softmax")]


def _check_finite(ctx, arr, what):
    if not numpy.all(numpy.isfinite(to_numpy(arr))):
        ctx.fail(f"{what} is not finite for finite inputs (NaN or inf); clip or use a "
                 f"numerically stable formula that holds in float32 too.")


def _loss_run(ctx, fn, target, dtype, yh, yy, acts):
    xp = target.xp
    y_hat, y = target.asarray(yh, dtype), target.asarray(yy, dtype)
    before = _snapshot([y_hat, y])
    v = ctx.run("value(y_hat, y, xp=xp)", fn.value, y_hat, y, xp=xp)
    _check_array(ctx, v, target, dtype, (), "value(y_hat, y)")
    g = ctx.run("gradient(y_hat, y, xp=xp)", fn.gradient, y_hat, y, xp=xp)
    _check_array(ctx, g, target, dtype, yh.shape, "gradient(y_hat, y)")
    _check_finite(ctx, v, "value(y_hat, y)")
    _check_finite(ctx, g, "gradient(y_hat, y)")
    _check_unchanged(ctx, [y_hat, y], before, ["y_hat", "y"])
    ovs, ods = [], []
    rng = numpy.random.default_rng(3)
    for act in _acts_for(acts, yh.shape):
        z = target.asarray(rng.standard_normal(yh.shape), dtype)
        a = act.forward(z, xp=xp)
        before = _snapshot([z, a, y])
        ov = ctx.run(f"output_value(z, a, y, {act.name})", fn.output_value, z, a, y, act, xp=xp)
        _check_array(ctx, ov, target, dtype, (), f"output_value with {act.name}")
        od = ctx.run(f"output_delta(z, a, y, {act.name})", fn.output_delta, z, a, y, act, xp=xp)
        _check_array(ctx, od, target, dtype, yh.shape, f"output_delta with {act.name}")
        _check_finite(ctx, ov, f"output_value with {act.name}")
        _check_finite(ctx, od, f"output_delta with {act.name}")
        _check_unchanged(ctx, [z, a, y], before, ["z", "y_hat", "y"])
        plain = fn.value(a, y, xp=xp)
        _close(ctx, to_numpy(ov), to_numpy(plain), **_tol(dtype, 1000),
               what=f"output_value(z, ...) vs value(y_hat, y) with {act.name}")
        ovs.append(to_numpy(ov))
        ods.append(to_numpy(od))
    return to_numpy(v), to_numpy(g), numpy.array(ovs), numpy.array(ods)


def _loss_fd(ctx, fn, target, yh, yy, acts, out):
    xp = target.xp
    y = target.asarray(yy, "float64")

    def value(v):
        return float(to_numpy(fn.value(target.asarray(v, "float64"), y, xp=xp)))
    _close(ctx, out[1], _finite_difference(value, yh), **_FD_TOL,
           what="gradient vs finite differences")
    rng = numpy.random.default_rng(3)
    for i, act in enumerate(_acts_for(acts, yh.shape)):
        zh = rng.standard_normal(yh.shape)

        def fused(zz, act=act):
            z = target.asarray(zz, "float64")
            return float(to_numpy(fn.output_value(z, act.forward(z, xp=xp), y, act, xp=xp)))
        _close(ctx, out[3][i], _finite_difference(fused, zh), **_FD_TOL,
               what=f"output_delta with {act.name} vs finite differences of output_value")


def _loss_jit(ctx, fn, target, dtype, yh, yy, out):
    compiled = _jit(target, lambda a, b: (fn.value(a, b, xp=target.xp),
                                         fn.gradient(a, b, xp=target.xp)))
    if compiled is None:
        return
    v, g = ctx.run("value/gradient under jax.jit", compiled, target.asarray(yh, dtype),
                   target.asarray(yy, dtype))
    _close(ctx, to_numpy(v), out[0], **_tol(dtype, 100), what="value under jax.jit vs eager")
    _close(ctx, to_numpy(g), out[1], **_tol(dtype, 100), what="gradient under jax.jit vs eager")


# --- optimizers ---------------------------------------------------------------------

@_scoped_x64
def check_optimizer(optimizer, *, config=None, backends=None, steps=100, size=12):
    """Check an optimizer (class or instance) on every backend.

    Runs ``init`` and ``update`` on the flat parameter vector of a convex
    quadratic ``0.5 * sum(a * (p - c) ** 2)``: the state must keep its keys,
    arrays must stay in the backend (shape, dtype, device), inputs must not be
    written, `steps` steps must decrease the quadratic, the first 10 steps must
    match NumPy's, and on JAX a jitted ``update`` must match the eager one.

    Parameters
    ----------
    optimizer : Optimizer subclass or instance
        With its default hyperparameters, or the ones given; choose a learning
        rate at which `steps` steps make progress.
    config : dict, optional
        Constructor arguments when `optimizer` is a class.
    steps : int
        Steps on the quadratic.
    size : int
        Length of the parameter vector.
    """
    opt = _instance("optimizers", optimizer, config, "check_optimizer")
    ctx = _Context("check_optimizer", opt)
    rebuilt = _check_config(ctx, "optimizers", opt)
    rng = numpy.random.default_rng(0)
    problem = (rng.standard_normal(size), rng.standard_normal(size), rng.uniform(0.5, 2.0, size))
    compare = min(10, steps)
    ctx.where = " on numpy (reference)"
    ref = {d: _optimizer_run(ctx, opt, _REFERENCE, d, problem, compare, check=False)
           for d in _DTYPES}
    ctx.where = " on numpy (reference)"
    _close(ctx, _optimizer_run(ctx, rebuilt, _REFERENCE, "float64", problem, compare,
                               check=False)[0],
           ref["float64"][0], rtol=0, atol=0, what="steps of from_config(get_config())")
    results = []
    for target in _targets(backends):
        for dtype in target.dtypes:
            ctx.where = f" on {target.label} {dtype}"
            p, _, _ = _optimizer_run(ctx, opt, target, dtype, problem, compare, check=True)
            _close(ctx, p, ref[dtype][0], **_tol(dtype, 100),
                   what=f"parameters after {compare} steps vs NumPy")
            _, values, _ = _optimizer_run(ctx, opt, target, dtype, problem, steps, check=False)
            if not (numpy.isfinite(values[-1]) and values[-1] < values[0]):
                ctx.fail(f"{steps} steps on a quadratic did not decrease it: "
                         f"{values[0]:.6g} -> {values[-1]:.6g}. Check the sign of the step, "
                         f"or pass a config with a larger learning rate.")
            _optimizer_jit(ctx, opt, target, dtype, problem, ref[dtype][2])
            _done(results, target, dtype)
    return results


def _quadratic(target, dtype, problem):
    p0, c, a = (target.asarray(v, dtype) for v in problem)
    return p0, c, a


def _optimizer_run(ctx, opt, target, dtype, problem, steps, check):
    xp = target.xp
    params, c, a = _quadratic(target, dtype, problem)
    state = ctx.run("init(params, xp=xp)", opt.init, params, xp=xp)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        ctx.fail(f"init() must return a dict with str keys; got {state!r}.")
    keys = set(state)
    values = [0.5 * float(numpy.sum(problem[2] * (problem[0] - problem[1]) ** 2))]
    first_step = None
    for step in range(steps):
        grads = a * (params - c)
        arrays = [params, grads] + [v for v in state.values() if _is_array(v)]
        before = _snapshot(arrays) if check and step < 3 else None
        out = ctx.run("update(params, grads, state, xp=xp)", opt.update, params, grads,
                      state, xp=xp)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            ctx.fail(f"update() must return (new_params, new_state); got {type(out).__name__}.")
        new_params, new_state = out
        if check:
            _check_array(ctx, new_params, target, dtype, (len(problem[0]),), "new params")
            if set(new_state) != keys:
                ctx.fail(f"update() changed the state's keys from {sorted(keys)} to "
                         f"{sorted(new_state)}: keep one structure (it is saved and jitted).")
            for k, v in new_state.items():
                if _is_array(v):
                    floating = target.xp.isdtype(v.dtype, "real floating")
                    _check_array(ctx, v, target, dtype if floating else _dtype_name(v),
                                 tuple(v.shape), f"state[{k!r}]")
                elif not isinstance(v, (int, float)):
                    ctx.fail(f"state[{k!r}] must be an array of the backend or a Python "
                             f"number; got {type(v).__name__}.")
            if before is not None:
                _check_unchanged(ctx, arrays, before,
                                 ["params", "grads"] + [f"state[{k!r}]" for k, v in state.items()
                                                        if _is_array(v)])
        params, state = new_params, new_state
        if step == 0:
            first_step = to_numpy(params)
        host = to_numpy(params).astype(float)
        values.append(0.5 * float(numpy.sum(problem[2] * (host - problem[1]) ** 2)))
    return to_numpy(params), values, first_step


def _is_array(v):
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, (int, float))


def _dtype_name(v):
    return str(to_numpy(v).dtype)


def _optimizer_jit(ctx, opt, target, dtype, problem, eager_first):
    compiled = _jit(target, lambda p, g, s: opt.update(p, g, s, xp=target.xp))
    if compiled is None:
        return
    params, c, a = _quadratic(target, dtype, problem)
    state = opt.init(params, xp=target.xp)
    new, _ = ctx.run("update under jax.jit", compiled, params, a * (params - c), state)
    _close(ctx, to_numpy(new), eager_first, **_tol(dtype, 100),
           what="first step under jax.jit vs eager")


# --- layers -------------------------------------------------------------------------

def _init_params(layer, rng):
    """Host parameter values as the network draws them, plus noise (so nothing is trivial)."""
    host = []
    for spec in layer.parameter_specs():
        spec = check_param_spec(spec, layer, 0)
        shape = tuple(spec.shape)
        fan_in = shape[0] if shape else 1
        fan_out = shape[1] if len(shape) > 1 else fan_in
        w = numpy.asarray(spec.initializer(shape, rng=rng, fan_in=fan_in, fan_out=fan_out),
                          dtype=float)
        host.append(w + 0.1 * rng.standard_normal(shape))
    return host


@_scoped_x64
def check_layer(layer, *, config=None, backends=None, input_size=5, batch=4, seed=0):
    """Check a layer type (class or instance) on every backend.

    Builds the layer for `input_size` inputs, draws its parameters from its
    specs, and checks ``forward`` in inference and training mode (with a
    freshly seeded ``rng`` each call: the same seed must give the same output)
    and ``backward`` (input and parameter gradients against finite
    differences in float64, ``need_input_grad=False`` giving the same
    parameter gradients).  Finally a small network with the layer trains two
    steps on every backend (in its widest float dtype) and must match NumPy.

    Parameters
    ----------
    layer : Layer subclass or instance
        An instance is copied through ``from_config(get_config())`` before building.
    config : dict, optional
        Constructor arguments when `layer` is a class.
    input_size, batch : int
        Width and number of rows of the input.
    """
    proto = _instance("layers", layer, config, "check_layer")
    ctx = _Context("check_layer", proto)
    _check_config(ctx, "layers", proto)
    rng = numpy.random.default_rng(seed)
    xh = rng.standard_normal((batch, input_size))

    def fresh():
        return type(proto).from_config(json.loads(json.dumps(proto.get_config())))

    probe = fresh()
    width = ctx.run(f"build({input_size})", probe.build, input_size)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        ctx.fail(f"build(input_size) must return the output width, a positive int; got {width!r}.")
    specs = ctx.run("parameter_specs()", probe.parameter_specs)
    for s in specs:
        try:
            s = check_param_spec(s, probe, 0)
        except (TypeError, ValueError) as exc:
            ctx.fail(f"parameter_specs() must list ParamSpec(name: str, shape: tuple of "
                     f"positive ints, initializer: Initializer or registered name); {exc}")
        if not all(d > 0 for d in s.shape):
            ctx.fail(f"parameter_specs() must list positive shapes; got {s!r}.")
    params_h = _init_params(probe, numpy.random.default_rng(seed + 1))
    gh = rng.standard_normal((batch, width))
    ctx.where = " on numpy (reference)"
    ref = {d: _layer_run(ctx, fresh, _REFERENCE, d, xh, params_h, gh, width, input_size)
           for d in _DTYPES}
    results = []
    for target in _targets(backends):
        for dtype in target.dtypes:
            ctx.where = f" on {target.label} {dtype}"
            out = _layer_run(ctx, fresh, target, dtype, xh, params_h, gh, width, input_size)
            for mode in (False, True):
                for got, want, what in zip(out[mode], ref[dtype][mode], ("output", "input grad")):
                    _close(ctx, got, want, **_tol(dtype, 100),
                           what=f"{what} (training={mode}) vs NumPy")
                for i, (got, want) in enumerate(zip(out[mode][2], ref[dtype][mode][2])):
                    _close(ctx, got, want, **_tol(dtype, 100),
                           what=f"gradient of {specs[i].name} (training={mode}) vs NumPy")
            if dtype == "float64":
                _layer_fd(ctx, fresh, target, xh, params_h, gh, out, specs, input_size)
            _layer_jit(ctx, fresh, target, dtype, xh, params_h, out, input_size)
            if dtype == target.dtypes[-1]:  # once per backend: training compiles a lot on JAX
                _layer_network(ctx, fresh, target, dtype, input_size)
            _done(results, target, dtype)
    return results


def _layer_run(ctx, fresh, target, dtype, xh, params_h, gh, width, input_size):
    xp = target.xp
    layer = fresh()
    layer.build(input_size)
    x, g = target.asarray(xh, dtype), target.asarray(gh, dtype)
    params = tuple(target.asarray(p, dtype) for p in params_h)
    before = _snapshot([x, g, *params])
    names = ["x", "grad"] + [s.name for s in layer.parameter_specs()]
    out = {}
    for training in (False, True):
        fwd = ctx.run(f"forward(params, x, training={training})", layer.forward, params, x,
                      xp=xp, training=training, rng=numpy.random.default_rng(7))
        if not (isinstance(fwd, tuple) and len(fwd) == 2):
            ctx.fail(f"forward() must return (output, cache); got {type(fwd).__name__}.")
        y, cache = fwd
        _check_array(ctx, y, target, dtype, (xh.shape[0], width),
                     f"forward output (training={training})")
        again, _ = layer.forward(params, x, xp=xp, training=training,
                                 rng=numpy.random.default_rng(7))
        _close(ctx, to_numpy(again), to_numpy(y), rtol=0, atol=0,
               what=f"forward twice with the same rng seed (training={training})")
        bwd = ctx.run("backward(params, cache, grad)", layer.backward, params, cache, g, xp=xp,
                      need_input_grad=True)
        if not (isinstance(bwd, tuple) and len(bwd) == 2):
            ctx.fail(f"backward() must return (input_grad, param_grads); got {type(bwd).__name__}.")
        gin, pgrads = bwd
        _check_array(ctx, gin, target, dtype, xh.shape, f"input gradient (training={training})")
        if len(pgrads) != len(params):
            ctx.fail(f"backward() returned {len(pgrads)} parameter gradients for "
                     f"{len(params)} parameters (one per ParamSpec, in order).")
        for p_h, pg, name in zip(params_h, pgrads, names[2:]):
            _check_array(ctx, pg, target, dtype, p_h.shape, f"gradient of {name}")
        gin2, pgrads2 = ctx.run("backward(..., need_input_grad=False)", layer.backward, params,
                                cache, g, xp=xp, need_input_grad=False)
        for pg, pg2, name in zip(pgrads, pgrads2, names[2:]):
            _close(ctx, to_numpy(pg2), to_numpy(pg), rtol=0, atol=0,
                   what=f"gradient of {name} with need_input_grad=False")
        _check_unchanged(ctx, [x, g, *params], before, names)
        out[training] = (to_numpy(y), to_numpy(gin), [to_numpy(p) for p in pgrads])
    return out


def _layer_fd(ctx, fresh, target, xh, params_h, gh, out, specs, input_size):
    xp = target.xp
    layer = fresh()
    layer.build(input_size)
    for training in (False, True):
        def loss(xx, ps, training=training):
            y, _ = layer.forward(tuple(target.asarray(p, "float64") for p in ps),
                                 target.asarray(xx, "float64"), xp=xp, training=training,
                                 rng=numpy.random.default_rng(7))
            return float(numpy.sum(to_numpy(y) * gh))
        _close(ctx, out[training][1], _finite_difference(lambda xx: loss(xx, params_h), xh),
               **_FD_TOL, what=f"input gradient (training={training}) vs finite differences")
        for i, spec in enumerate(specs):
            def loss_p(pp, i=i):
                ps = list(params_h)
                ps[i] = pp
                return loss(xh, ps)
            _close(ctx, out[training][2][i], _finite_difference(loss_p, params_h[i]), **_FD_TOL,
                   what=f"gradient of {spec.name} (training={training}) vs finite differences")


def _layer_jit(ctx, fresh, target, dtype, xh, params_h, out, input_size):
    layer = fresh()
    layer.build(input_size)
    compiled = _jit(target, lambda ps, x: layer.forward(ps, x, xp=target.xp, training=False,
                                                          rng=None)[0])
    if compiled is None:
        return
    y = ctx.run("forward (inference) under jax.jit", compiled,
                tuple(target.asarray(p, dtype) for p in params_h), target.asarray(xh, dtype))
    _close(ctx, to_numpy(y), out[False][0], **_tol(dtype, 100),
           what="forward (inference) under jax.jit vs eager")


def _tiny_network(fresh, backend, dtype, input_size):
    from .layers import Dense
    from .network import Network

    net = Network(input_size, backend=backend, dtype=dtype, seed=0)
    net.stack(fresh())
    return net.output(Dense(3, activation="identity"), loss="mse")


def _layer_network(ctx, fresh, target, dtype, input_size):
    """Two training steps of a small network with the layer, against NumPy's."""
    rng = numpy.random.default_rng(5)
    # Host data in the network's dtype: a float64 host array cannot even be moved
    # onto a device without float64 (array-api-strict's no_float64).
    x = rng.standard_normal((16, input_size)).astype(dtype)
    y = rng.standard_normal((16, 3)).astype(dtype)

    def train(backend):
        net = _tiny_network(fresh, backend, dtype, input_size)
        net.fit(x, y, epochs=1, batch_size=8, optimizer="gd", record=None)
        return [w for w in net.get_weights()], to_numpy(net.predict(x))
    want = train(_REFERENCE.backend)
    got = ctx.run("training a network with the layer", train, target.backend)
    for i, (g, w) in enumerate(zip(got[0] + [got[1]], want[0] + [want[1]])):
        _close(ctx, g, w, **_tol(dtype, 100),
               what=f"network weight {i} after two training steps vs NumPy")


# --- initializers -------------------------------------------------------------------

def _global_random_state():
    name, key, pos, has_gauss, cached = numpy.random.get_state()
    return name, key.tobytes(), pos, has_gauss, cached


@_scoped_x64
def check_initializer(initializer, *, config=None, backends=None, shapes=((5, 3), (7,))):
    """Check an initializer (class or instance).

    Initializers run on the host by contract: ``init(shape, rng=..., fan_in=...,
    fan_out=...)`` must return a float NumPy array of `shape`, draw only from
    `rng` (the same seed gives the same values; the global NumPy state is left
    alone) and be finite.  Then a Dense layer initialised with it must get the
    same weights on every backend.
    """
    init = _instance("initializers", initializer, config, "check_initializer")
    ctx = _Context("check_initializer", init)
    rebuilt = _check_config(ctx, "initializers", init)
    for shape in shapes:
        fan_in = shape[0]
        fan_out = shape[1] if len(shape) > 1 else shape[0]
        state = _global_random_state()
        w = ctx.run(f"init({shape})", init, shape, rng=numpy.random.default_rng(0),
                    fan_in=fan_in, fan_out=fan_out)
        if _global_random_state() != state:
            ctx.fail("it used NumPy's global random state; draw from `rng` only.")
        if not isinstance(w, numpy.ndarray) or w.dtype.kind != "f":
            ctx.fail(f"init(shape, ...) must return a float NumPy array (drawn on the host); "
                     f"got {type(w).__name__} {getattr(w, 'dtype', '')}.")
        if w.shape != tuple(shape):
            ctx.fail(f"init({shape}) returned shape {w.shape}.")
        if not numpy.all(numpy.isfinite(w)):
            ctx.fail(f"init({shape}) returned non-finite values.")
        again = rebuilt(shape, rng=numpy.random.default_rng(0), fan_in=fan_in, fan_out=fan_out)
        _close(ctx, again, w, rtol=0, atol=0,
               what="the same seed (and from_config(get_config())) gives the same values")
    results = []
    from .layers import Dense
    from .network import Network

    def weights(backend, dtype):
        net = Network(4, backend=backend, dtype=dtype, seed=0)
        net.output(Dense(3, kernel_initializer=init, bias_initializer=init), loss="mse")
        return net.get_weights()
    for target in _targets(backends):
        for dtype in target.dtypes:
            ctx.where = f" on {target.label} {dtype}"
            got = ctx.run("building a Dense layer with it", weights, target.backend, dtype)
            for g, w in zip(got, weights(_REFERENCE.backend, dtype)):
                _close(ctx, g, w, rtol=0, atol=0, what="initial weights vs NumPy")
            _done(results, target, dtype)
    return results
