"""The L2 penalty ``Network(alpha=...)``: objective, gradient, training paths, saving."""

import numpy
import pytest

import polymlp as pm

from _helpers import central_difference


def _net(net_kwargs, alpha, seed=0, act="tanh", out="softmax", loss="cross_entropy", k=3):
    net = pm.Network(4, dtype="float64", seed=seed, alpha=alpha, **net_kwargs)
    net.stack(pm.Dense(5, act))
    return net.output(pm.Dense(k, out), loss=loss)


def _data(n=7, k=3, seed=1):
    rng = numpy.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, k, size=n)


def test_penalty_value_is_half_alpha_sum_of_squared_weights_over_rows(net_kwargs):
    x, y = _data()
    plain, penalised = _net(net_kwargs, 0.0), _net(net_kwargs, 0.3)
    w = plain.get_weights()
    expected = 0.5 * 0.3 * sum(numpy.sum(W ** 2) for W in w[0::2]) / len(x)  # W, not b
    assert penalised.loss(x, y) - plain.loss(x, y) == pytest.approx(expected, rel=1e-10)
    assert penalised.evaluate(x, y)["loss"] == pytest.approx(penalised.loss(x, y))


def test_gradient_adds_alpha_w_over_rows_to_weights_only(net_kwargs):
    x, y = _data()
    plain, penalised = _net(net_kwargs, 0.0), _net(net_kwargs, 0.3)
    w = plain.get_weights()
    for i, (g0, g1) in enumerate(zip(plain.gradients(x, y), penalised.gradients(x, y))):
        extra = 0.3 * w[i] / len(x) if i % 2 == 0 else 0.0 * w[i]
        numpy.testing.assert_allclose(g1 - g0, extra, atol=1e-12)


def test_penalised_gradient_matches_finite_differences(net_kwargs):
    x, y = _data()
    net = _net(net_kwargs, 0.7)
    weights = net.get_weights()

    def loss_at(flat):
        parts, o = [], 0
        for w in weights:
            parts.append(flat[o:o + w.size].reshape(w.shape))
            o += w.size
        net.set_weights(parts)
        return net.loss(x, y)

    theta = numpy.concatenate([w.ravel() for w in weights])
    numeric = central_difference(loss_at, theta.copy())
    net.set_weights(weights)
    analytic = numpy.concatenate([g.ravel() for g in net.gradients(x, y)])
    numpy.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_history_loss_includes_the_penalty(net_kwargs):
    x, y = _data()
    net = _net(net_kwargs, 2.0)
    before = net.loss(x, y)
    hist = net.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, optimizer=pm.GradientDescent(0.1))
    assert hist.loss[0] == pytest.approx(before, rel=1e-10)


def test_larger_alpha_shrinks_weights(net_kwargs):
    x, y = _data(n=40)
    sums = []
    for alpha in (0.0, 5.0):
        net = _net(net_kwargs, alpha)
        net.fit(x, y, epochs=30, batch_size=10, optimizer=pm.Adam(0.01))
        sums.append(sum(numpy.abs(W).sum() for W in net.get_weights()[0::2]))
    assert sums[1] < sums[0]


def test_inplace_and_pure_paths_train_alike_with_alpha():
    # NumPy takes the in-place step; its read-only twin the pure one.
    x, y = _data(n=30)
    nets = []
    for backend in ("numpy", pm.testing.network_kwargs("numpy_readonly")["backend"]):
        net = _net({"backend": backend}, 0.5)
        hist = net.fit(x, y, epochs=3, batch_size=8, optimizer=pm.Momentum(0.05))
        nets.append((net.get_weights(), hist.loss))
    for a, b in zip(nets[0][0], nets[1][0]):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(nets[0][1], nets[1][1], rtol=1e-12)


def test_alpha_is_saved_and_settable(tmp_path, net_kwargs):
    net = _net(net_kwargs, 0.25)
    assert pm.load(net.save(tmp_path / "a.polymlp")).alpha == 0.25
    net.alpha = 0
    assert net.alpha == 0.0 and net.to("numpy").alpha == 0.0


@pytest.mark.parametrize("bad, error", [(-1.0, ValueError), (float("nan"), ValueError),
                                        ("0.1", TypeError), (True, TypeError)])
def test_bad_alpha_names_the_parameter(bad, error):
    with pytest.raises(error, match="`alpha`"):
        pm.Network(3, alpha=bad)


def test_paramspec_regularized_default_is_matrices_only():
    init = pm.registry.get_initializer("zeros")
    assert pm.layers.ParamSpec("W", (2, 3), init).penalized
    assert not pm.layers.ParamSpec("g", (3,), init).penalized
    assert not pm.layers.ParamSpec("W", (2, 3), init, regularized=False).penalized
