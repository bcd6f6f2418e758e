"""Regression end to end: identity outputs with MSE/MAE, single and multi-output, R^2 reported."""

import numpy
import pytest

import polymlp as pm
from polymlp import testing
from polymlp._array_api import array_backend_name, device_of, same_device


def _data(n=256, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 3))
    y = numpy.stack([x[:, 0] - 2 * x[:, 1] + 0.5, numpy.tanh(2 * x[:, 2])], axis=1)
    return x, y


def _r2(pred, y):
    """scikit-learn's r2_score (uniform average over outputs), written out in NumPy."""
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return float(numpy.mean(1 - ss_res / ss_tot))


def _regressor(net_kwargs, outputs, loss, dtype="float32", seed=0):
    net = pm.Network(3, seed=seed, dtype=dtype, **net_kwargs)
    return net.stack(pm.Dense(32, "tanh")).output(pm.Dense(outputs, None), loss=loss)


@pytest.mark.parametrize("loss", ["mse", "mae"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_regression_trains_and_reports_r2(backend_name, net_kwargs, loss, outputs):
    x, y = _data(n=128)
    y = y[:, :outputs]
    net = _regressor(net_kwargs, outputs, loss)
    assert net.metric_name == "r2" and not net.classification
    before = net.evaluate(x, y)
    hist = net.fit(x, y, epochs=40, batch_size=32, optimizer=pm.Adam(0.02),
                   validation_data=(x, y), record="epoch")
    assert hist.keys() == ["epoch", "loss", "r2", "val_loss", "val_r2"]
    after = net.evaluate(x, y)
    assert set(after) == {"loss", "r2"}
    assert after["loss"] < 0.5 * before["loss"]
    assert after["r2"] > 0.9
    pred = net.predict(x)
    assert array_backend_name(pred) == array_backend_name(net.theta)
    assert same_device(device_of(pred), net.device)
    host = pm.to_numpy(pred)
    assert host.shape == (128, outputs)
    # Loss and R^2 are what their definitions give on the predictions.
    expected_loss = (numpy.mean((host - y) ** 2) if loss == "mse"
                     else numpy.mean(numpy.abs(host - y)))
    atol = testing.atol_for("float32") * 10
    assert after["loss"] == pytest.approx(expected_loss, rel=1e-4, abs=atol)
    assert after["r2"] == pytest.approx(_r2(host, y), rel=1e-4, abs=atol)
    assert hist.val_r2[-1] == pytest.approx(after["r2"], abs=atol)
    y_pred, y_hat, r2 = net.test(x, y)
    assert r2 == pytest.approx(after["r2"], abs=atol)
    numpy.testing.assert_allclose(pm.to_numpy(y_pred), host, atol=atol)


def test_one_dimensional_targets_for_one_output(backend_name, net_kwargs):
    x, y = _data()
    net = _regressor(net_kwargs, 1, "mse")
    net.fit(x, y[:, 0], epochs=2, batch_size=64)
    assert net.evaluate(x, y[:, 0]) == net.evaluate(x, y[:, :1])
    wide = _regressor(net_kwargs, 2, "mse")
    with pytest.raises(ValueError, match=r"1-D but the output layer has 2 units"):
        wide.fit(x, y[:, 0], epochs=1)


class _Frozen(pm.Optimizer):
    """Leaves the weights alone, so every batch of an epoch sees the same network."""

    name = "frozen_test"

    def update(self, params, grads, state, /, *, xp):
        return params, state


@pytest.mark.parametrize("batch_size", [1, 7])
def test_epoch_r2_is_the_r2_of_the_epoch(backend_name, net_kwargs, batch_size):
    """The per-epoch training R^2 pools the batches: with frozen weights it equals evaluate()'s.

    (A mean of per-batch R^2 would not: with batches of one row each batch's R^2 is 0 or 1.)
    """
    x, y = _data(n=20)
    net = _regressor(net_kwargs, 2, "mse", dtype="float64")
    hist = net.fit(x, y, epochs=1, batch_size=batch_size, optimizer=_Frozen(), record="epoch")
    full = net.evaluate(x, y)
    assert hist.r2[0] == pytest.approx(full["r2"], rel=1e-9, abs=1e-12)
    assert hist.loss[0] == pytest.approx(full["loss"], rel=1e-9)


def test_regression_agrees_with_numpy(backend_name, net_kwargs):
    x, y = _data(n=64)
    ref = _regressor({}, 2, "mse", dtype="float64")
    net = _regressor(net_kwargs, 2, "mse", dtype="float64")
    for n in (ref, net):
        n.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01), record=None)
    for a, b in zip(net.get_weights(), ref.get_weights()):
        numpy.testing.assert_allclose(a, b, atol=testing.atol_for("float64"))


def test_r2_of_a_constant_target_follows_scikit_learn(backend_name, net_kwargs):
    """A constant target scores 1 when hit exactly and 0 otherwise (no division by zero)."""
    x = numpy.zeros((8, 3))
    net = pm.Network(3, dtype="float64", **net_kwargs).output(pm.Dense(1, None), loss="mse")
    net.set_weights([numpy.zeros((3, 1)), numpy.array([2.0])])
    assert net.evaluate(x, numpy.full(8, 2.0))["r2"] == 1.0
    assert net.evaluate(x, numpy.full(8, 3.0))["r2"] == 0.0
