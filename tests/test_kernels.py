"""Each in-place kernel a component declares gives the numbers of its pure methods.

Kernels run only where arrays may be written (NumPy, PyTorch), so these
tests run there; the whole-step comparison is in test_engine.py.
"""

import numpy
import pytest

import polymlp as pm
from polymlp import _kernels


def _backend(net_kwargs, backend_name):
    backend = pm.resolve_backend(net_kwargs["backend"], net_kwargs.get("device"))
    if not backend.writable:
        pytest.skip(f"no in-place kernels on {backend_name}")
    return backend


def _ops(backend):
    import types

    total, maximum = backend.reductions()
    return types.SimpleNamespace(sum=total, max=maximum)


def _close(a, b, dtype):
    tol = 0.0 if dtype == "float64" else 1e-6
    numpy.testing.assert_allclose(pm.to_numpy(a), pm.to_numpy(b), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["relu", "identity"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_kernels_equal_the_pure_methods(backend_name, net_kwargs, name, dtype):
    backend = _backend(net_kwargs, backend_name)
    xp, rng = backend.xp, numpy.random.default_rng(1)
    act = pm.registry.get_activation(name)
    forward, backward = (_kernels.kernel(act, k) for k in ("forward_inplace", "backward_inplace"))
    assert forward is not None and backward is not None
    z = backend.asarray(rng.standard_normal((9, 4)), dtype=getattr(xp, dtype))
    g = backend.asarray(rng.standard_normal((9, 4)), dtype=getattr(xp, dtype))
    a = act.forward(z, xp=xp)
    want = act.backward(z, a, g, xp=xp)
    a_in = forward(xp.asarray(z, copy=True), xp=xp)
    _close(a_in, a, dtype)
    # The cache may hold a in place of z: the kernel's contract.
    _close(backward(a_in, a_in, xp.asarray(g, copy=True), xp=xp), want, dtype)
    _close(act.backward(a_in, a_in, g, xp=xp), want, dtype)


def test_kernels_without_one_or_overridden_rules_are_not_used():
    assert _kernels.kernel(pm.activations.Tanh(), "forward_inplace") is None

    class Shifted(pm.activations.ReLU):  # another rule: must not run ReLU's kernels
        def value(self, z, /, *, xp):
            return xp.maximum(z, 1.0)

    assert _kernels.kernel(Shifted(), "forward_inplace") is None
    assert _kernels.kernel(pm.activations.ReLU(), "forward_inplace") is not None

    class Scaled(pm.Dense):
        def forward(self, params, x, /, *, xp, training=False, rng=None):
            return super().forward(params, 2 * x, xp=xp, training=training, rng=rng)

    layer = Scaled(3)
    assert _kernels.kernel(layer, "forward_inplace") is None
    assert _kernels.kernel(layer, "linear_inplace") is None
    assert _kernels.kernel(layer, "backward_inplace") is not None  # backward is Dense's own


@pytest.mark.parametrize("act", ["relu", "tanh", "identity", "softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_kernels_equal_forward_and_backward(backend_name, net_kwargs, act, dtype):
    backend = _backend(net_kwargs, backend_name)
    xp, rng = backend.xp, numpy.random.default_rng(2)
    layer = pm.Dense(4, act)
    layer.build(5)
    as_b = lambda a: backend.asarray(a, dtype=getattr(xp, dtype))  # noqa: E731
    params = (as_b(rng.standard_normal((5, 4))), as_b(rng.standard_normal(4)))
    x, g = as_b(rng.standard_normal((7, 5))), as_b(rng.standard_normal((7, 4)))
    out, cache = layer.forward(params, x, xp=xp, training=True)
    g_in, (gW, gb) = layer.backward(params, cache, g, xp=xp)
    out_k, cache_k = layer.forward_inplace(params, x, xp=xp, training=True)
    _close(out_k, out, dtype)
    grads = (xp.zeros_like(params[0]), xp.zeros_like(params[1]))
    g_in_k = layer.backward_inplace(params, cache_k, xp.asarray(g, copy=True), grads, xp=xp,
                                    ops=_ops(backend))
    for a, b in zip((g_in_k, *grads), (g_in, gW, gb)):
        _close(a, b, dtype)
    # From dL/dz (the fused output layer): backward_delta's numbers.
    d_in, (dW, db) = layer.backward_delta(params, cache, g, xp=xp)
    grads = (xp.zeros_like(params[0]), xp.zeros_like(params[1]))
    d_in_k = layer.backward_inplace(params, cache_k, g, grads, xp=xp, ops=_ops(backend),
                                    is_delta=True)
    for a, b in zip((d_in_k, *grads), (d_in, dW, db)):
        _close(a, b, dtype)
    _close(layer.linear_inplace(params, x, xp=xp), cache[1], dtype)


@pytest.mark.parametrize("want_loss", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_kernel_equals_the_pure_loss(backend_name, net_kwargs, want_loss,
                                                           dtype):
    backend = _backend(net_kwargs, backend_name)
    xp, rng = backend.xp, numpy.random.default_rng(3)
    loss, act = pm.losses.CrossEntropy(), pm.activations.Softmax()
    z = backend.asarray(5 * rng.standard_normal((8, 3)), dtype=getattr(xp, dtype))
    y = backend.asarray(numpy.eye(3)[rng.integers(0, 3, 8)], dtype=getattr(xp, dtype))
    a = act.forward(z, xp=xp)
    value, delta = loss.output_value(z, a, y, act, xp=xp), loss.output_delta(z, a, y, act, xp=xp)
    kernel = _kernels.kernel(loss, "output_inplace")
    v_k, a_k, d_k = kernel(xp.asarray(z, copy=True), y, act, xp=xp, ops=_ops(backend),
                           want_loss=want_loss)
    _close(d_k, delta, dtype)
    if want_loss:
        _close(v_k, value, dtype)
        _close(a_k, a, dtype)
    else:
        assert v_k is None
