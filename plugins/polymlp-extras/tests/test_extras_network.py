"""polymlp-extras used by name, as a user would, once installed.

A network with swish, layer_norm, dropout and lion trains on the hypercube
data on NumPy, and every other installed backend trains it to the same
weights (float64) or the same outcome (float32).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

import polymlp as pm
from polymlp import testing

OTHER_BACKENDS = [b for b in testing.selected_backends() if b != "numpy"]
LION = {"name": "lion", "config": {"learning_rate": 1e-3}}


def _net(dtype="float64", **kwargs):
    net = pm.Network(14, seed=0, dtype=dtype, name="extras", **kwargs)
    net.stack(pm.Dense(32, activation="swish")).stack("layer_norm")
    net.stack({"name": "dropout", "config": {"rate": 0.1}})
    return net.output(pm.Dense(4, activation="softmax"), loss="cross_entropy")


def test_every_kind_is_usable_by_name(installed):
    import polymlp_extras as ex

    assert isinstance(pm.Dense(3, activation="swish").activation, ex.Swish)
    assert isinstance(pm.Dense(3, activation="polymlp-extras:gelu").activation, ex.GELU)
    assert isinstance(pm.Dense(3, kernel_initializer="orthogonal").kernel_initializer,
                      ex.Orthogonal)
    net = pm.Network(3, seed=0).stack("layer_norm").stack(pm.Dense(4, activation="mish"))
    net.output(pm.Dense(2, activation="identity"), loss="huber")
    assert isinstance(net.layers[0], ex.LayerNorm) and isinstance(net.loss_fn, ex.Huber)
    x = np.random.default_rng(0).standard_normal((32, 3))
    net.fit(x, x[:, :2] * 2, epochs=2, batch_size=8, optimizer="rmsprop", record=None)
    assert isinstance(net.optimizer, ex.RMSprop)
    assert pm.registry.provenance(net.loss_fn) == ("polymlp-extras", installed.version)
    assert pm.registry.to_config(net.optimizer)["name"] == "rmsprop"


def test_cli_lists_the_plugins_with_their_distribution(installed):
    out = subprocess.run([sys.executable, "-m", "polymlp", "plugins", "--json"],
                         capture_output=True, text=True, check=True).stdout
    rows = {(r["kind"], r["name"]): r for r in json.loads(out) if r["source"] == "polymlp-extras"}
    expected = {("activations", n) for n in ("swish", "silu", "gelu", "softplus", "mish")}
    expected |= {("losses", "huber"), ("losses", "hinge"), ("optimizers", "rmsprop"),
                 ("optimizers", "adamw"), ("optimizers", "lion"), ("layers", "dropout"),
                 ("layers", "layer_norm")}
    assert expected <= set(rows)
    for key in expected:
        assert rows[key]["status"] == "ok" and rows[key]["version"] == installed.version


def test_trains_on_the_hypercube_on_numpy(installed, hypercube):
    x, y, x_test, y_test = hypercube
    net = _net("float32")
    history = net.fit(x, y, epochs=3, batch_size=32, optimizer=LION, record="epoch",
                      validation_data=(x_test, y_test))
    assert history.loss[-1] < history.loss[0]
    assert history.val_accuracy[-1] > 0.93  # 0.95 with seed 0; chance is 0.26
    # Inference is deterministic: dropout is off outside training.
    np.testing.assert_array_equal(pm.to_numpy(net.predict_proba(x_test[:50])),
                                  pm.to_numpy(net.predict_proba(x_test[:50])))
    # The configuration (plugins included) survives a move to another backend.
    copy = net.to("numpy")
    np.testing.assert_array_equal(pm.to_numpy(copy.predict_proba(x_test[:50])),
                                  pm.to_numpy(net.predict_proba(x_test[:50])))


def _train(dtype, data, **kwargs):
    x, y = data
    net = _net(dtype, **kwargs)
    net.fit(x, y, epochs=1, batch_size=64, optimizer=LION, record=None)
    return net


@pytest.mark.parametrize("backend_name", OTHER_BACKENDS)
def test_other_backends_match_numpy(installed, hypercube, backend_name):
    if not testing.available(backend_name):
        pytest.skip(f"backend {backend_name} is not available here")
    x, y, x_test, y_test = hypercube
    data = (x[:1024], y[:1024])
    kwargs = testing.network_kwargs(backend_name)
    # float64: same host draws (weights, shuffles, dropout masks), so the same weights.
    ref, other = _train("float64", data), _train("float64", data, **kwargs)
    for a, b in zip(ref.get_weights(), other.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-11)
    # float32: rounding differs by library, so compare the outcome.
    if "float32" in other.backend.float_dtypes():
        ref32, other32 = _train("float32", data), _train("float32", data, **kwargs)
        a, b = ref32.evaluate(x_test, y_test), other32.evaluate(x_test, y_test)
        assert abs(a["loss"] - b["loss"]) < 1e-3 * max(1.0, a["loss"])
        assert abs(a["accuracy"] - b["accuracy"]) < 0.005
