"""``Network.fit(sample_weight=...)``: weighted objective, gradient, penalty and paths."""

import numpy
import pytest

import polymlp as pm
from polymlp._sklearn_losses import HalfSquaredError, LogLoss


def _data(n=12, seed=0):
    rng = numpy.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.integers(0, 3, size=n), rng.uniform(0.1, 3.0, size=n)


def _net(net_kwargs, loss=None, alpha=0.0, seed=0):
    net = pm.Network(3, dtype="float64", seed=seed, alpha=alpha, **net_kwargs)
    net.stack(pm.Dense(4, "tanh"))
    return net.output(pm.Dense(3, "softmax"), loss=loss or LogLoss())


def test_one_weighted_step_is_the_gradient_of_the_weighted_mean(net_kwargs):
    # One full-batch gradient step: the weighted loss's gradient, computed here by hand
    # from per-row gradients (each row a batch of one), with the penalty over sum(w).
    x, y, w = _data()
    alpha, lr = 0.3, 0.1
    ref = _net(net_kwargs, alpha=0.0)
    per_row = [numpy.concatenate([g.ravel() for g in ref.gradients(x[i:i + 1], y[i:i + 1])])
               for i in range(len(x))]
    theta = numpy.concatenate([p.ravel() for p in ref.get_weights()])
    mask = numpy.concatenate([numpy.full(p.size, float(i % 2 == 0))
                              for i, p in enumerate(ref.get_weights())])
    grad = sum(wi * gi for wi, gi in zip(w, per_row)) / w.sum() + alpha * mask * theta / w.sum()
    net = _net(net_kwargs, alpha=alpha)
    hist = net.fit(x, y, epochs=1, batch_size=len(x), shuffle=False,
                   optimizer=pm.GradientDescent(lr), sample_weight=w)
    after = numpy.concatenate([p.ravel() for p in net.get_weights()])
    numpy.testing.assert_allclose(after, theta - lr * grad, rtol=1e-10, atol=1e-12)
    losses = [ref.loss(x[i:i + 1], y[i:i + 1]) for i in range(len(x))]
    penalty = 0.5 * alpha * (mask * theta ** 2).sum() / w.sum()
    assert hist.loss[0] == pytest.approx(numpy.dot(w, losses) / w.sum() + penalty, rel=1e-10)


def test_unit_weights_change_nothing(net_kwargs):
    x, y, _ = _data(n=30)
    runs = []
    for sw in (None, numpy.ones(30)):
        net = _net(net_kwargs, loss=LogLoss())
        net.fit(x, y, epochs=3, batch_size=7, optimizer=pm.Adam(0.01), sample_weight=sw)
        runs.append(net.get_weights())
    for a, b in zip(*runs):
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_integer_weights_equal_repeated_rows_in_one_batch():
    x, y, _ = _data(n=10)
    w = numpy.array([1, 2, 0, 3, 1, 1, 2, 1, 0, 1])
    net = pm.Network(3, dtype="float64", seed=0, alpha=0.1).output(pm.Dense(2, "identity"),
                                                                  loss=HalfSquaredError())
    rep = pm.Network(3, dtype="float64", seed=0, alpha=0.1).output(pm.Dense(2, "identity"),
                                                                  loss=HalfSquaredError())
    Y = numpy.stack([x[:, 0] + y, x[:, 1]], axis=1)
    opt = pm.LBFGS(max_iter=30)
    net.fit(x, Y, epochs=1, optimizer=opt, sample_weight=w)
    rep.fit(numpy.repeat(x, w, axis=0), numpy.repeat(Y, w, axis=0), epochs=1, optimizer=opt)
    for a, b in zip(net.get_weights(), rep.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_bad_weights_and_losses_without_weights_are_refused():
    x, y, w = _data()
    with pytest.raises(ValueError, match="sample_weight"):
        _net({}).fit(x, y, sample_weight=w[:-1])
    with pytest.raises(ValueError, match="sample_weight"):
        _net({}).fit(x, y, sample_weight=-w)
    with pytest.raises(TypeError, match="cross_entropy"):
        _net({}, loss="cross_entropy").fit(x, y, sample_weight=w)
