"""Network: gradients against finite differences, API contract, collapse, weights."""

import numpy
import pytest

import polymlp as pm

from _helpers import xp_and_device

HIDDEN = ["identity", "sigmoid", "relu", "leaky_relu", "tanh"]
OUTPUTS = [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid"),
           ("mse", "identity"), ("mae", "tanh"), ("mse", "sigmoid")]


def _targets(loss, rng, n, k):
    if loss == "cross_entropy":
        return rng.integers(0, k, n)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.standard_normal((n, k))


def _net(net_kwargs, hidden, out_act, loss, k=3, dtype="float64", seed=0):
    net = pm.Network(4, dtype=dtype, seed=seed, **net_kwargs)
    net.stack(pm.Dense(5, activation=hidden)).stack(pm.Dense(4, activation=hidden))
    return net.output(pm.Dense(k, activation=out_act), loss=loss)


def _fd_gradients(net, x, y, eps=1e-6):
    weights = net.get_weights()
    grads = []
    for i, w in enumerate(weights):
        g = numpy.zeros_like(w)
        for idx in numpy.ndindex(w.shape):
            for sign in (1, -1):
                trial = [v.copy() for v in weights]
                trial[i][idx] += sign * eps
                net.set_weights(trial)
                g[idx] += sign * net.loss(x, y) / (2 * eps)
        grads.append(g)
    net.set_weights(weights)
    return grads


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss, out_act", OUTPUTS)
def test_gradients_match_finite_differences(hidden, loss, out_act, net_kwargs, rng):
    net = _net(net_kwargs, hidden, out_act, loss)
    x = rng.standard_normal((7, 4))
    y = _targets(loss, rng, 7, 3)
    got = net.gradients(x, y)
    expected = _fd_gradients(net, x, y)
    assert [g.shape for g in got] == [w.shape for w in net.get_weights()]
    for g, e in zip(got, expected):
        numpy.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)


def test_api_contract_and_device(net_kwargs, hypercube):
    """Outputs come back on the network's backend and device; training keeps them there."""
    xp, device, _ = xp_and_device(net_kwargs)
    x_train, y_train, x_test, y_test = (a[:256] for a in hypercube)
    net = pm.Network(input_size=14, name="tiny", seed=0, **net_kwargs)
    assert net.stack(pm.Dense(8, activation="relu")) is net
    assert net.output(pm.Dense(4, activation="softmax"), loss="cross_entropy") is net
    hist = net.fit(x_train, y_train, epochs=2, batch_size=32, optimizer="adam",
                   validation_data=(x_test, y_test))
    assert hist.keys() == ["iteration", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(hist) == 16 and hist.iteration == list(range(1, 17))
    for arr in [net.theta, net.opt_state["m"], net.opt_state["v"]]:
        assert arr.device == device
    proba = net.predict_proba(x_test)
    labels = net.predict(x_test)
    y_pred, y_hat, acc = net.test(x_test, y_test)
    for arr in (proba, labels, y_pred, y_hat):
        assert arr.device == device and type(arr) is type(net.theta)
    assert tuple(proba.shape) == (256, 4) and tuple(labels.shape) == (256,)
    host_pred = pm.to_numpy(y_pred)
    assert acc == pytest.approx(float(numpy.mean(host_pred == y_test)))
    numpy.testing.assert_allclose(pm.to_numpy(xp.sum(y_hat, axis=1)), 1.0, rtol=1e-5)
    ev = net.evaluate(x_test, y_test)
    assert set(ev) == {"loss", "accuracy"} and ev["accuracy"] == pytest.approx(acc)
    assert net.loss(x_test, y_test) == pytest.approx(ev["loss"])
    # Inputs already on the backend are accepted as they are.
    x_dev = xp.asarray(x_test, device=device)
    numpy.testing.assert_array_equal(pm.to_numpy(net.predict(x_dev)), host_pred)


def test_one_hot_and_label_targets_train_identically(hypercube):
    x, y = hypercube[0][:200], hypercube[1][:200]
    runs = []
    for target in (y, numpy.eye(4)[y]):
        net = pm.Network(14, seed=3).stack(pm.Dense(6, "tanh"))
        net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
        net.fit(x, target, epochs=1, batch_size=16, record=None)
        runs.append(net.get_weights())
    for a, b in zip(*runs):
        numpy.testing.assert_array_equal(a, b)


def test_fit_continues_with_optimizer_state(hypercube):
    x, y = hypercube[0][:320], hypercube[1][:320]

    def build():
        net = pm.Network(14, seed=1).stack(pm.Dense(8, "relu"))
        return net.output(pm.Dense(4, "softmax"), loss="cross_entropy")

    once = build()
    once.fit(x, y, epochs=4, batch_size=32, record=None)
    twice = build()
    opt = pm.Adam()
    twice.fit(x, y, epochs=2, batch_size=32, optimizer=opt, record=None)
    twice.fit(x, y, epochs=2, batch_size=32, optimizer=opt, record=None)
    assert twice.opt_state["t"] == 40
    for a, b in zip(once.get_weights(), twice.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_record_modes(hypercube):
    x, y = hypercube[0][:100], hypercube[1][:100]
    net = pm.Network(14, seed=0).stack(pm.Dense(8, "relu"))
    net.output(pm.Dense(4, "softmax"))
    per_epoch = net.fit(x, y, epochs=3, batch_size=32, record="epoch", validation_data=(x, y))
    assert per_epoch.epoch == [1, 2, 3] and len(per_epoch.val_accuracy) == 3
    nothing = net.fit(x, y, epochs=1, batch_size=32, record=None)
    assert len(nothing) == 0
    sparse = net.fit(x, y, epochs=1, batch_size=10, validation_data=(x, y), validation_freq=4)
    evaluated = [not numpy.isnan(v) for v in sparse.val_loss]
    # iterations 41..50: evaluated at multiples of 4 and at the epoch's last batch
    assert evaluated == [False, False, False, True, False, False, False, True, False, True]


def test_seed_determinism_and_no_global_rng(hypercube):
    x, y = hypercube[0][:128], hypercube[1][:128]
    numpy.random.seed(123)
    before = numpy.random.get_state()[1].copy()
    weights = []
    for _ in range(2):
        net = pm.Network(14, seed=7).stack(pm.Dense(8, "relu"))
        net.output(pm.Dense(4, "softmax"))
        net.fit(x, y, epochs=2, batch_size=16, record=None)
        weights.append(net.get_weights())
    for a, b in zip(*weights):
        numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(numpy.random.get_state()[1], before)


def test_summary_parameter_counts():
    from polymlp.cli import SEED_NETS, build_seed_net

    counts = [build_seed_net(hidden).n_parameters for _, hidden, _ in SEED_NETS]
    assert counts == [5704, 4596, 5940]
    text = build_seed_net((100, 40)).summary(print_fn=None)
    assert "5,704" in text and "relu" in text and "softmax" in text


def test_collapse_is_equivalent(net_kwargs, rng):
    xp, device, _ = xp_and_device(net_kwargs)
    net = pm.Network(5, dtype="float64", seed=0, **net_kwargs)
    for _ in range(3):
        net.stack(pm.Dense(5, activation=None))
    net.output(pm.Dense(3, activation="identity"), loss="mse")
    net.set_weights([rng.standard_normal(w.shape) for w in net.get_weights()])
    single = net.collapse()
    assert len(single.layers) == 1 and single.n_parameters == 5 * 3 + 3
    x = rng.standard_normal((50, 5))
    numpy.testing.assert_allclose(pm.to_numpy(single.predict(x)), pm.to_numpy(net.predict(x)),
                                  rtol=1e-12, atol=1e-12)
    W, b = single.get_weights()
    Ws = net.get_weights()
    numpy.testing.assert_allclose(W, Ws[0] @ Ws[2] @ Ws[4] @ Ws[6], rtol=1e-12)
    assert single.theta.device == device


def test_collapse_refuses_nonlinear_network():
    net = pm.Network(3).stack(pm.Dense(4, None)).stack(pm.Dense(4, "relu"))
    net.output(pm.Dense(2, None), loss="mse")
    with pytest.raises(ValueError, match="layer 1.*'relu'"):
        net.collapse()


def test_weights_round_trip_and_checks(rng):
    net = pm.Network(3, seed=0).stack(pm.Dense(4, "relu"))
    net.output(pm.Dense(2, "softmax"))
    ws = net.get_weights()
    assert [w.shape for w in ws] == [(3, 4), (4,), (4, 2), (2,)]
    new = [rng.standard_normal(w.shape) for w in ws]
    net.set_weights(new)
    for a, b in zip(net.get_weights(), new):
        numpy.testing.assert_allclose(a, b.astype("float32"))
    with pytest.raises(ValueError, match="4 parameters"):
        net.set_weights(new[:3])
    with pytest.raises(ValueError, match=r"weights\[0\].*\(3, 4\)"):
        net.set_weights([numpy.zeros((4, 3))] + new[1:])


@pytest.mark.backend("array_api_strict")
def test_to_other_backend_keeps_predictions(rng):
    net = pm.Network(3, seed=0, dtype="float64").stack(pm.Dense(4, "tanh"))
    net.output(pm.Dense(2, "softmax"))
    copy = net.to("array_api_strict", device="device2")
    x = rng.standard_normal((10, 3))
    assert str(copy.theta.device).endswith("'device2')")
    numpy.testing.assert_allclose(pm.to_numpy(copy.predict_proba(x)),
                                  pm.to_numpy(net.predict_proba(x)), rtol=1e-12)


def test_regression_reports_r2(rng):
    x = rng.standard_normal((200, 3))
    y = x @ rng.standard_normal((3, 2)) + 0.1
    net = pm.Network(3, seed=0, dtype="float64").stack(pm.Dense(16, "tanh"))
    net.output(pm.Dense(2, None), loss="mse")
    hist = net.fit(x, y, epochs=30, batch_size=20, optimizer=pm.Adam(0.01), record="epoch")
    assert "r2" in hist and "accuracy" not in hist
    ev = net.evaluate(x, y)
    assert ev["r2"] > 0.95 and ev["loss"] < 0.1
    pred = pm.to_numpy(net.predict(x))
    ss = ((y - pred) ** 2).sum(axis=0) / ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    assert ev["r2"] == pytest.approx(float(numpy.mean(1 - ss)), rel=1e-9)


def test_clear_errors_for_common_mistakes():
    net = pm.Network(3)
    with pytest.raises(pm.NotBuiltError, match="output"):
        net.predict([[1.0, 2.0, 3.0]])
    net.output(pm.Dense(2, "softmax"))
    with pytest.raises(pm.NotBuiltError, match="before output"):
        net.stack(pm.Dense(3))
    with pytest.raises(ValueError, match="2 features but the network expects 3"):
        net.predict([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"labels.*\[0, 1\]"):
        net.fit([[1.0, 2.0, 3.0]], [2], epochs=1, batch_size=1)
    with pytest.raises(ValueError, match="`epochs`"):
        net.fit([[1.0, 2.0, 3.0]], [1], epochs=0, batch_size=1)
    with pytest.raises(ValueError, match="unknown|Unknown"):
        pm.Dense(3, activation="sigmoidd")
