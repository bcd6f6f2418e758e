"""The engine's one training step, in its two modes: in place equals pure.

On writable backends (NumPy, PyTorch) ``fit`` runs the step in place, with
the components' declared kernels (:mod:`polymlp._kernels`); everywhere
else, and as the reference, the same step with the pure methods.  These
tests train the same network both ways and compare, check each optimizer's
``update_inplace`` against its ``update``, and check the step's contract
(gradient hook, ownership of arrays, compilation on JAX).
"""

import warnings

import numpy
import pytest

import polymlp as pm
from polymlp import _engine, _kernels, testing


def _pure_only(monkeypatch):
    """Force the pure step, as on a backend without in-place writes."""
    make_step = _engine.Engine.make_step

    def pure(self, optimizer, **kwargs):
        return make_step(self, optimizer, **{**kwargs, "inplace": False})

    monkeypatch.setattr(_engine.Engine, "make_step", pure)


def _writable_only(net_kwargs, backend_name):
    backend = pm.resolve_backend(net_kwargs["backend"], net_kwargs.get("device"))
    if not backend.writable:
        pytest.skip(f"no in-place step on {backend_name}: the pure step is its only step")
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
        if backend_name == "numpy" and opt_index < 3:  # same operations, same order: identical
            numpy.testing.assert_array_equal(a, b)
        else:  # Adam's bias corrections: math.expm1 in place, the namespace's expm1 pure
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
    step = net.engine.make_step(net.optimizer, want_loss=False)
    assert isinstance(getattr(step, "owner", None), _engine.InPlaceStep) == writable


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
    # The same array operations in the same order; but the in-place kernel does its host
    # scalar math (Adam's bias corrections) with Python floats and math.expm1, the pure
    # update with 0-d arrays in the parameters' dtype (as it must under jax.jit).
    tight = 1e-14 if dtype == "float64" else 2e-6
    same = (numpy.testing.assert_array_equal if opt_index < 3 and dtype == "float64" else
            lambda a, b: numpy.testing.assert_allclose(a, b, rtol=tight, atol=tight / 10))
    same(pm.to_numpy(fast_p), pm.to_numpy(pure_p))
    for key, value in pure_s.items():
        same(pm.to_numpy(fast_s[key]), pm.to_numpy(value))


def test_update_inplace_is_not_inherited_by_a_different_rule(rng):
    class HalfAdam(pm.Adam):  # another rule: must not run Adam's in-place twin
        name = "half_adam"

        def update(self, params, grads, state, /, *, xp):
            new, state = super().update(params, grads, state, xp=xp)
            return params + 0.5 * (new - params), state

    assert _kernels.kernel(pm.Adam(), "update_inplace") is not None
    assert _kernels.kernel(HalfAdam(), "update_inplace") is None
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
    class ScaledDense(pm.Dense):  # overrides the math: the in-place step must call it
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
    # And the gradient the in-place step trains on is the finite-difference gradient.
    net, xs, ys = build(), x[:8], y[:8]
    analytic = net.gradients(xs, ys)
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
    engine = net.engine
    monkeypatch.setattr(engine, "_infer", lambda params, x: engine.forward(params, x))
    numpy.testing.assert_allclose(proba, pm.to_numpy(net.predict_proba(x)), rtol=1e-12, atol=1e-14)
    assert net.evaluate(x, y) == pytest.approx(metrics, rel=1e-12)


def test_jax_step_compiles_once_per_batch_shape(net_kwargs, backend_name, rng):
    if backend_name != "jax":
        pytest.skip("the whole step is compiled on JAX only")
    x, y = _data(rng)  # 70 rows, batch 16: full batches (one chunk) and one of 6 (one step)
    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    net.fit(x, y, epochs=2, batch_size=16, optimizer="adam", record=None)
    (step,) = net.engine.step_cache.values()
    (chunk,) = net.engine.chunk_cache.values()
    assert step.compiled._cache_size() == 1 and chunk.compiled._cache_size() == 1
    net.fit(x, y, epochs=1, batch_size=16, record=None)  # fit again: nothing recompiled
    assert list(net.engine.step_cache.values()) == [step]
    assert list(net.engine.chunk_cache.values()) == [chunk]
    assert step.compiled._cache_size() == 1 and chunk.compiled._cache_size() == 1
    copy = net.to("numpy")  # the step counter stays a 0-d integer array
    assert copy.opt_state["t"].shape == () and int(copy.opt_state["t"]) == 15


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


def test_jax_schedule_recompiles_nothing_after_the_first_epoch(net_kwargs, backend_name, rng):
    if backend_name != "jax":
        pytest.skip("compilation happens on JAX only")
    x, y = _data(rng, n=64)  # full batches only: one input signature
    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    sched = pm.callbacks.LearningRateScheduler("cosine", t_max=6)
    net.fit(x, y, epochs=1, batch_size=16, optimizer=pm.Adam(0.01), record="iteration",
            callbacks=[sched])
    (chunk,) = net.engine.chunk_cache.values()
    compiled = chunk.compiled._cache_size()
    rates = []

    class Rates(pm.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rates.append(float(pm.to_numpy(net.opt_state["learning_rate"])))

    net.fit(x, y, epochs=5, batch_size=16, record="iteration", callbacks=[sched, Rates()])
    assert list(net.engine.chunk_cache.values()) == [chunk]
    assert chunk.compiled._cache_size() == compiled == 1
    # The schedule reached the step: the state's rate is the scheduled one.
    assert rates == pytest.approx([sched.rate(e, None) for e in range(1, 6)], rel=1e-6)
    assert net.optimizer.learning_rate == pytest.approx(rates[-1], rel=1e-6)


def test_the_learning_rate_lives_in_the_state_and_follows_the_attribute(backend_name,
                                                                          net_kwargs, rng):
    x, y = _data(rng)
    fast = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    slow = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    opt = pm.GradientDescent(0.1)
    for net in (fast, slow):
        net.fit(x, y, epochs=1, batch_size=16, optimizer=opt if net is fast else
                pm.GradientDescent(0.1), record=None)
    assert float(pm.to_numpy(fast.opt_state["learning_rate"])) == pytest.approx(0.1)
    opt.learning_rate = 0.0  # set between fits: the next fit steps with it
    before = fast.get_weights()
    fast.fit(x, y, epochs=1, batch_size=16, record=None)
    for a, b in zip(before, fast.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    assert fast.opt_state["t"].shape == () and int(pm.to_numpy(fast.opt_state["t"])) == 10


def test_configurable_objects_hash_and_compare_by_identity():
    opt = pm.Adam(0.1)
    table = {opt: "kept"}
    opt.learning_rate = 0.2  # a mutable config must not lose the key
    assert table[opt] == "kept"
    assert pm.Adam(0.2) != opt and pm.Adam(0.2).same_config(opt)
    # "The same optimizer" still continues: a fresh one configured alike keeps the state.
    net = _net({"backend": "numpy"}, [(4, "relu")], "softmax", "cross_entropy")
    x, y = _data(numpy.random.default_rng(0))
    net.fit(x, y, epochs=1, batch_size=16, optimizer=pm.Adam(0.01), record=None)
    state = net.opt_state
    net.fit(x, y, epochs=1, batch_size=16, optimizer=pm.Adam(0.01), record=None)
    assert int(pm.to_numpy(net.opt_state["t"])) == 10 and state is not net.opt_state


class _EveryBatch(pm.callbacks.Callback):
    """A batch-level callback: the loop then runs one step at a time (the eager order)."""

    def on_batch_end(self, iteration, logs=None):
        pass


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spe", [None, 2])
def test_jax_compiled_chunks_equal_step_by_step(net_kwargs, backend_name, dtype, spe):
    if backend_name != "jax":
        pytest.skip("compiled chunks run on JAX only")
    x, y = _data(numpy.random.default_rng(5))  # 70 rows, batch 16: 4 full batches and 6 rows

    def train(kwargs, callbacks=None):
        net = _net(kwargs, [(8, "relu"), (6, "tanh")], "softmax", "cross_entropy", dtype=dtype)
        hist = net.fit(x, y, epochs=3, batch_size=16, optimizer=pm.Adam(0.01),
                       validation_data=(x[:20], y[:20]), validation_freq=3,
                       steps_per_execution=spe, callbacks=callbacks)
        return net, hist

    chunked, h_chunked = train(net_kwargs)
    assert net_kwargs["backend"] == "jax" and chunked.engine.chunk_cache  # chunks did run
    stepwise, h_step = train(net_kwargs, [_EveryBatch()])
    assert not stepwise.engine.chunk_cache
    reference, h_ref = train({"backend": "numpy"})
    tol = testing.atol_for(dtype)
    for other, hist in ((stepwise, h_step), (reference, h_ref)):
        for a, b in zip(chunked.get_weights(), other.get_weights()):
            numpy.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        assert set(hist.columns) == set(h_chunked.columns)
        for key in h_chunked.columns:
            numpy.testing.assert_allclose(numpy.asarray(h_chunked[key], dtype=float),
                                          numpy.asarray(hist[key], dtype=float), rtol=tol,
                                          atol=tol, err_msg=key)  # NaN where not validated
    assert chunked.iterations == 15 and chunked.epochs_done == 3


def test_jax_untraceable_layer_warns_once_and_runs_eagerly(net_kwargs, backend_name):
    if backend_name != "jax":
        pytest.skip("tracing happens on JAX only")

    class HostScale(pm.Layer):  # converts an array to a Python number: cannot be traced
        name = "host_scale"

        def forward(self, params, x, /, *, xp, training=False, rng=None):
            scale = float(xp.max(xp.abs(x))) + 1.0
            return x / scale, scale

        def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
            return grad / cache, ()

    x, y = _data(numpy.random.default_rng(6))

    def train(kwargs):
        net = pm.Network(5, dtype="float64", seed=3, **kwargs).stack(HostScale())
        net.output(pm.Dense(3, "softmax"), loss="cross_entropy")
        net.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01))
        return net

    with pytest.warns(RuntimeWarning, match=r"layer 0 \(HostScale\) cannot be traced") as rec:
        net = train(net_kwargs)
    assert len([w for w in rec if "cannot be traced" in str(w.message)]) == 1
    ref = train({"backend": "numpy"})
    for a, b in zip(net.get_weights(), ref.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_random_layer_masks_are_data_and_equal_across_backends(backend_name, net_kwargs):
    """Dropout draws its masks on the host (draw_noise): compiled chunks on JAX, the
    in-place step on NumPy/PyTorch and the pure step elsewhere train alike."""
    extras = pytest.importorskip("polymlp_extras.layers")
    x, y = _data(numpy.random.default_rng(7))

    def train(kwargs):
        net = pm.Network(5, dtype="float64", seed=11, **kwargs)
        net.stack(pm.Dense(8, "relu")).stack(extras.Dropout(0.3))
        net.output(pm.Dense(3, "softmax"), loss="cross_entropy")
        hist = net.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01))
        return net, hist

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # it traces: no eager fallback
        net, hist = train(net_kwargs)
    ref, ref_hist = train({"backend": "numpy"})
    for a, b in zip(net.get_weights(), ref.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(hist["loss"], ref_hist["loss"], rtol=1e-10, atol=1e-12)
    if backend_name == "jax":
        assert net.engine.chunk_cache  # the masks went into compiled chunks
    # The masks did act: without dropout the same start trains to other weights.
    plain = pm.Network(5, dtype="float64", seed=11).stack(pm.Dense(8, "relu"))
    plain.stack(extras.Dropout(0.0)).output(pm.Dense(3, "softmax"), loss="cross_entropy")
    plain.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01))
    assert not numpy.allclose(plain.get_weights()[0], ref.get_weights()[0])


def test_plugin_style_layer_is_traced_on_jax(net_kwargs, backend_name):
    if backend_name != "jax":
        pytest.skip("tracing happens on JAX only")
    traced = []

    class Affine(pm.Layer):  # a per-feature affine layer as CONTRIBUTING teaches: xp only
        name = "affine_demo"

        def parameter_specs(self):
            return [pm.ParamSpec("scale", (self.input_size,),
                                 {"name": "constant", "config": {"value": 1.0}}),
                    pm.ParamSpec("shift", (self.input_size,), "zeros")]  # names: issue 14

        def forward(self, params, x, /, *, xp, training=False, rng=None):
            traced.append(type(x).__name__)
            scale, shift = params
            return x * scale + shift, x

        def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
            scale, _ = params
            return grad * scale, (xp.sum(grad * cache, axis=0), xp.sum(grad, axis=0))

    x, y = _data(numpy.random.default_rng(8))
    net = pm.Network(5, dtype="float64", seed=2, **net_kwargs).stack(pm.Dense(6, "tanh"))
    net.stack(Affine()).output(pm.Dense(3, "softmax"), loss="cross_entropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        net.fit(x, y, epochs=3, batch_size=16, optimizer=pm.Adam(0.01), record=None)
    assert traced and all("Tracer" in t for t in traced)  # only ever called while tracing
    assert len(traced) <= 4  # traced a few times (chunk, last batch), not run per step


@pytest.mark.backend("jax")
def test_compilation_cache_keeps_compiled_chunks_on_disk(tmp_path):
    import subprocess
    import sys

    script = (
        "import numpy, polymlp as pm\n"
        f"pm.enable_compilation_cache({str(tmp_path)!r})\n"
        "x = numpy.random.default_rng(0).standard_normal((64, 5))\n"
        "net = pm.Network(5, seed=0, backend='jax').stack(pm.Dense(6, 'relu'))\n"
        "net.output(pm.Dense(3, 'softmax')).fit(x, numpy.arange(64) % 3, epochs=1,"
        " batch_size=16, record=None)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    assert any(tmp_path.iterdir())  # the compiled training chunk was written


def test_reporting_batch_hooks_keep_compiled_chunks(net_kwargs, backend_name):
    """Progress-style batch hooks (host_every = "epoch") see every step, in order,
    and do not force step-by-step training; other batch hooks do."""
    x, y = _data(numpy.random.default_rng(9))  # 70 rows, batch 16: 5 steps per epoch
    seen = []

    class Count(pm.callbacks.Callback):
        host_every = "epoch"

        def on_batch_begin(self, iteration, logs=None):
            seen.append(("begin", iteration, logs["batch"], logs["size"]))

        def on_batch_end(self, iteration, logs=None):
            seen.append(("end", iteration, logs["batch"], logs["size"]))

    net = _net(net_kwargs, [(6, "relu")], "softmax", "cross_entropy")
    net.fit(x, y, epochs=2, batch_size=16, record=None, verbose=2, callbacks=[Count()])
    expected = [(kind, e * 5 + b + 1, b, 16 if b < 4 else 6)
                for e in range(2) for b in range(5) for kind in ("begin", "end")]
    assert seen == expected
    assert bool(net.engine.chunk_cache) == (backend_name == "jax")
