"""The training step: the in-place fast path equals the pure functional path.

On writable backends (NumPy, PyTorch) ``fit`` runs :mod:`polymlp._fastpath`;
everywhere else, and as the reference, the pure step of ``Network._make_step``.
These tests train the same network both ways and compare, check each
optimizer's ``update_inplace`` against its ``update``, and check the step's
contract (gradient hook, ownership of arrays, compilation on JAX).
"""

import numpy
import pytest

import polymlp as pm
from polymlp import _fastpath, testing


def _pure_only(monkeypatch):
    """Force the pure step, as on a backend without in-place writes."""
    monkeypatch.setattr(_fastpath, "make_step", lambda net, *args: None)


def _writable_only(net_kwargs, backend_name):
    backend = pm.resolve_backend(net_kwargs["backend"], net_kwargs.get("device"))
    if not backend.writable:
        pytest.skip(f"no in-place fast path on {backend_name}: the pure step is its only step")
    return backend


def _data(rng, n=70, d=5, k=3):
    x = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    return x, y


def _net(kwargs, hidden, out, loss, dtype="float64", d=5, k=3, seed=3):
    net = pm.Network(d, dtype=dtype, seed=seed, **kwargs)
    for units, act in hidden:
        net.stack(pm.Dense(units, activation=act))
    return net.output(pm.Dense(k, activation=out), loss=loss)


ARCHS = {
    "relu-softmax-ce": ([(8, "relu"), (6, "relu")], "softmax", "cross_entropy", 3),
    "mixed-sigmoid-bce": ([(7, "tanh"), (6, "identity"), (5, "leaky_relu")], "sigmoid",
                          "binary_cross_entropy", 1),
    "sigmoid-identity-mse": ([(6, "sigmoid")], "identity", "mse", 2),
    "relu-softmax-mae": ([(6, "relu")], "softmax", "mae", 3),
}


def _targets(y, k, loss):
    if loss == "binary_cross_entropy":
        return (y % 2).astype(float).reshape(-1, 1)
    if loss == "mse":
        return numpy.stack([y, -y], axis=1).astype(float)[:, :k]
    if loss == "mae":
        return numpy.eye(k)[y]
    return y


def _train(kwargs, arch, optimizer, rng_seed=0, dtype="float64", record=None, epochs=2):
    hidden, out, loss, k = ARCHS[arch]
    x, y = _data(numpy.random.default_rng(rng_seed), k=max(k, 2))
    net = _net(kwargs, hidden, out, loss, dtype=dtype, k=k)
    hist = net.fit(x, _targets(y, k, loss), epochs=epochs, batch_size=16, optimizer=optimizer,
                   record=record, validation_data=None)
    return net, hist


def _optimizers():
    return [pm.GradientDescent(0.05), pm.Momentum(0.05, 0.9), pm.Momentum(0.05, 0.8, nesterov=True),
            pm.Adam(0.01)]


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("opt_index", range(4))
def test_fast_step_equals_pure_step(backend_name, net_kwargs, monkeypatch, arch, opt_index):
    _writable_only(net_kwargs, backend_name)
    fast, _ = _train(net_kwargs, arch, _optimizers()[opt_index])
    _pure_only(monkeypatch)
    pure, _ = _train(net_kwargs, arch, _optimizers()[opt_index])
    for a, b in zip(fast.get_weights(), pure.get_weights()):
        if backend_name == "numpy":  # same operations in the same order: identical
            numpy.testing.assert_array_equal(a, b)
        else:
            numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for key in ("m", "v", "velocity"):
        if key in pure.opt_state:
            numpy.testing.assert_allclose(pm.to_numpy(fast.opt_state[key]),
                                          pm.to_numpy(pure.opt_state[key]), rtol=1e-12, atol=1e-14)
    assert int(pm.to_numpy(fast.opt_state["t"])) == int(pm.to_numpy(pure.opt_state["t"])) == 10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_step_equals_pure_step_recording(backend_name, net_kwargs, monkeypatch, dtype):
    _writable_only(net_kwargs, backend_name)
    fast, h_fast = _train(net_kwargs, "relu-softmax-ce", pm.Adam(0.01), dtype=dtype,
                          record="iteration")
    _pure_only(monkeypatch)
    pure, h_pure = _train(net_kwargs, "relu-softmax-ce", pm.Adam(0.01), dtype=dtype,
                          record="iteration")
    tol = testing.atol_for(dtype)
    for key in ("loss", "accuracy"):
        numpy.testing.assert_allclose(h_fast[key], h_pure[key], rtol=tol, atol=tol)
    for a, b in zip(fast.get_weights(), pure.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_fast_path_is_used_where_writable(backend_name, net_kwargs):
    net, _ = _train(net_kwargs, "relu-softmax-ce", "adam", epochs=1)
    writable = net.backend.writable
    assert writable == (backend_name in ("numpy", "torch"))
    assert (_fastpath.make_step(net, False) is not None) == writable


@pytest.mark.parametrize("opt_index", range(4))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_update_inplace_equals_update(backend_name, net_kwargs, opt_index, dtype):
    backend = _writable_only(net_kwargs, backend_name)
    xp, rng = backend.xp, numpy.random.default_rng(opt_index)
    opt = _optimizers()[opt_index]
    theta = backend.asarray(rng.standard_normal(50), dtype=getattr(xp, dtype))
    pure_p, pure_s = theta, opt.init(theta, xp=xp)
    fast_p, fast_s = xp.asarray(theta, copy=True), opt.init(theta, xp=xp)
    work = xp.empty_like(theta)
    for _ in range(7):
        g = backend.asarray(rng.standard_normal(50), dtype=getattr(xp, dtype))
        pure_p, pure_s = opt.update(pure_p, g, pure_s, xp=xp)
        fast_s = opt.update_inplace(fast_p, g, fast_s, xp=xp, work=work)
    numpy.testing.assert_array_equal(pm.to_numpy(fast_p), pm.to_numpy(pure_p))
    for key, value in pure_s.items():
        numpy.testing.assert_array_equal(pm.to_numpy(fast_s[key]), pm.to_numpy(value))


def test_update_inplace_is_not_inherited_by_a_different_rule(rng):
    class HalfAdam(pm.Adam):  # another rule: must not run Adam's in-place twin
        name = "half_adam"

        def update(self, params, grads, state, /, *, xp):
            new, state = super().update(params, grads, state, xp=xp)
            return params + 0.5 * (new - params), state

    assert _fastpath.has_inplace_update(pm.Adam())
    assert not _fastpath.has_inplace_update(HalfAdam())
    x, y = _data(rng)
    nets = []
    for opt in (HalfAdam(0.01), pm.Adam(0.01)):
        net = _net({"backend": "numpy"}, [(6, "relu")], "softmax", "cross_entropy")
        net.fit(x, y, epochs=1, batch_size=16, optimizer=opt, record=None)
        nets.append(net.get_weights())
    pure = _net({"backend": testing.numpy_readonly}, [(6, "relu")], "softmax", "cross_entropy")
    pure.fit(x, y, epochs=1, batch_size=16, optimizer=HalfAdam(0.01), record=None)
    for a, b, c in zip(nets[0], pure.get_weights(), nets[1]):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert not all(numpy.allclose(a, c) for a, c in zip(nets[0], nets[1]))


def test_custom_layer_goes_through_its_own_methods(rng, monkeypatch):
    class ScaledDense(pm.Dense):  # overrides the math: the fast path must call it
        name = "scaled_dense"

        def forward(self, params, x, /, *, xp, training=False, rng=None):
            W, b = params
            return super().forward((2.0 * W, b), x, xp=xp, training=training, rng=rng)

        def backward_delta(self, params, cache, delta, /, *, xp, need_input_grad=True):
            W, b = params
            g_in, (gW, gb) = super().backward_delta((2.0 * W, b), cache, delta, xp=xp,
                                                    need_input_grad=need_input_grad)
            return g_in, (2.0 * gW, gb)

    x, y = _data(rng)

    def build():
        net = pm.Network(5, dtype="float64", seed=1)
        net.stack(pm.Dense(6, "relu")).stack(ScaledDense(6, "tanh"))
        return net.output(ScaledDense(3, "softmax"), loss="cross_entropy")

    fast = build()
    fast.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01), record=None)
    _pure_only(monkeypatch)
    pure = build()
    pure.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01), record=None)
    for a, b in zip(fast.get_weights(), pure.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # And the gradient the fast path trains on is the finite-difference gradient.
    net, xs, ys = build(), x[:8], y[:8]
    analytic = net.gradients(xs, ys)
    step, theta, state = net._make_step(False)
    w = net.get_weights()
    i, eps = 2, 1e-6  # one entry of the ScaledDense kernel
    w_plus = [a.copy() for a in w]
    w_plus[i][0, 0] += eps
    w_minus = [a.copy() for a in w]
    w_minus[i][0, 0] -= eps
    net.set_weights(w_plus)
    up = net.loss(xs, ys)
    net.set_weights(w_minus)
    down = net.loss(xs, ys)
    assert analytic[i][0, 0] == pytest.approx((up - down) / (2 * eps), rel=1e-5)


def test_grad_hook_sees_every_gradient(backend_name, net_kwargs, rng):
    x, y = _data(rng)
    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    before = net.get_weights()
    seen = []

    def hook(grad):
        seen.append(pm.to_numpy(grad).copy())
        return grad * 0.0  # an update along a zero gradient changes nothing

    net.grad_hook = hook
    net.fit(x, y, epochs=2, batch_size=16, optimizer=pm.GradientDescent(0.1), record=None)
    assert len(seen) == net.iterations == 10
    assert seen[0].shape == (net.n_parameters,)
    for a, b in zip(before, net.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_grad_hook_gets_the_batch_gradient(backend_name, net_kwargs, rng):
    x, y = _data(rng, n=16)
    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    expected = numpy.concatenate([g.ravel() for g in net.gradients(x, y)])
    seen = []
    net.grad_hook = lambda g: seen.append(pm.to_numpy(g).copy()) or g
    net.fit(x, y, epochs=1, batch_size=16, optimizer="gd", record=None, shuffle=False)
    numpy.testing.assert_allclose(seen[0], expected, rtol=1e-10, atol=1e-12)


def test_fit_never_writes_into_callers_arrays(backend_name, net_kwargs, rng):
    x, y = _data(rng)
    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    net.fit(x, y, epochs=1, batch_size=16, optimizer="adam", record=None)
    theta_before = net.theta
    theta_copy = pm.to_numpy(theta_before).copy()
    state_before = {k: pm.to_numpy(v).copy() for k, v in net.opt_state.items() if k != "t"}
    state_arrays = dict(net.opt_state)
    xb = net.backend.asarray(x)
    x_copy = pm.to_numpy(xb).copy()
    net.fit(xb, y, epochs=1, batch_size=16, record=None)
    numpy.testing.assert_array_equal(pm.to_numpy(theta_before), theta_copy)
    for key, value in state_before.items():
        numpy.testing.assert_array_equal(pm.to_numpy(state_arrays[key]), value)
    numpy.testing.assert_array_equal(pm.to_numpy(xb), x_copy)
    assert not numpy.array_equal(pm.to_numpy(net.theta), theta_copy)


def test_evaluation_matches_pure_forward(backend_name, net_kwargs, rng, monkeypatch):
    _writable_only(net_kwargs, backend_name)
    x, y = _data(rng)
    net = _net(net_kwargs, [(7, "relu"), (6, "tanh"), (5, "identity")], "softmax", "cross_entropy")
    proba = pm.to_numpy(net.predict_proba(x))
    metrics = net.evaluate(x, y)
    monkeypatch.setattr(net, "_infer", net._forward)
    numpy.testing.assert_allclose(proba, pm.to_numpy(net.predict_proba(x)), rtol=1e-12, atol=1e-14)
    assert net.evaluate(x, y) == pytest.approx(metrics, rel=1e-12)


def test_jax_step_compiles_once_per_batch_shape(net_kwargs, backend_name, rng):
    if backend_name != "jax":
        pytest.skip("the whole step is compiled on JAX only")
    x, y = _data(rng)  # 70 rows, batch 16: full batches and one of 6
    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    net.fit(x, y, epochs=2, batch_size=16, optimizer="adam", record=None)
    (step,) = net._compiled.values()
    assert step._cache_size() == 2
    net.fit(x, y, epochs=1, batch_size=16, record=None)  # fit again: nothing recompiled
    assert net._compiled[(False, net.optimizer, None, None, net.alpha)] is step
    assert step._cache_size() == 2
    copy = net.to("numpy")  # the step counter comes back as a Python int
    assert copy.opt_state["t"] == 15 and isinstance(copy.opt_state["t"], int)


def test_jax_step_with_hook_compiles_the_halves(net_kwargs, backend_name, rng):
    if backend_name != "jax":
        pytest.skip("the whole step is compiled on JAX only")
    x, y = _data(rng)
    calls = []
    plain = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    hooked = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    hooked.grad_hook = lambda g: calls.append(type(g).__name__) or g
    for net in (plain, hooked):
        net.fit(x, y, epochs=1, batch_size=16, optimizer="adam", record=None)
    assert len(calls) == 5 and "Tracer" not in calls[0]  # the hook runs eagerly
    for a, b in zip(plain.get_weights(), hooked.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_host_inputs_are_checked_before_the_move(backend_name, net_kwargs, rng):
    x, y = _data(rng)
    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    bad = x.copy()
    bad[3, 1] = numpy.nan
    with pytest.raises(ValueError, match="`x` contains NaN"):
        net.fit(bad, y, epochs=1, batch_size=16, record=None)
    with pytest.raises(ValueError, match=r"Class labels `y` must be in \[0, 2\]"):
        net.fit(x, y + 1, epochs=1, batch_size=16, record=None)
    # Host data and data already on the backend train to the same weights.
    a = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    b = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    a.fit(x, y, epochs=1, batch_size=16, optimizer="adam", record=None)
    b.fit(b.backend.asarray(x), b.backend.asarray(y), epochs=1, batch_size=16, optimizer="adam",
          record=None)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        numpy.testing.assert_array_equal(wa, wb)
