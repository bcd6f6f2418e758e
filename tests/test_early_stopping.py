"""EarlyStopping reads `patience` as Keras does, and says when it stops and restores."""

import math
import os

import numpy
import pytest

import polymlp as pm
from polymlp.callbacks import EarlyStopping

# Monitored values per epoch: improvements, plateaus, a NaN (epoch not evaluated), ties.
SEQUENCES = [
    [1.0, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    [1.0, 0.9, 0.8, 0.85, 0.7, 0.75, 0.76, 0.77, 0.78, 0.6],
    [1.0, 1.0, 1.0, 1.0],
    [0.5, 0.4, 0.4, 0.3, 0.3, 0.3, 0.2],
    [2.0, 1.0, 1.5, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1],
]


class _Host:
    """What EarlyStopping needs of a network when it does not restore weights."""

    stop_training = False


def _polymlp_run(values, patience, min_delta=0.0):
    cb, host = EarlyStopping("val_loss", patience=patience, min_delta=min_delta), _Host()
    cb.set_network(host)
    cb.on_train_begin()
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {"val_loss": value})
        if host.stop_training:
            break
    return cb.stopped_epoch, cb.best_epoch, epoch + 1


def _keras_run(keras, values, patience, min_delta=0.0):
    cb, host = keras.callbacks.EarlyStopping("val_loss", patience=patience,
                                             min_delta=min_delta), _Host()
    cb.set_model(host)
    cb.on_train_begin()
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {"val_loss": value})
        if host.stop_training:
            break
    return cb.stopped_epoch or None, cb.best_epoch, epoch + 1


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "numpy")  # no deep-learning framework needed
    return pytest.importorskip("keras")


@pytest.mark.parametrize("patience", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("values", SEQUENCES)
def test_patience_and_best_epoch_as_in_keras(keras, values, patience):
    assert _polymlp_run(values, patience) == _keras_run(keras, values, patience)
    assert _polymlp_run(values, patience, 0.15) == _keras_run(keras, values, patience, 0.15)


def test_patience_three_stops_after_the_third_epoch_without_improvement():
    # Best at epoch 1 (0-based); epochs 2, 3, 4 do not improve: stop at the end of epoch 4.
    assert _polymlp_run([1.0, 0.5, 0.6, 0.7, 0.8, 0.9], 3) == (4, 1, 5)


def test_an_epoch_without_validation_neither_improves_nor_counts():
    assert _polymlp_run([1.0, math.nan, 1.2, math.nan, 1.3, 1.4], 2) == (4, 0, 5)


def _data(n=60):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((n, 4))
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)


def test_verbose_says_when_it_stops_and_restores(capsys):
    x, y = _data()
    val = (x, (y + 1) % 3)  # disagrees with training: val_loss rises
    net = pm.Network(4, name="es", seed=0).stack(pm.Dense(8, "relu"))
    net.output(pm.Dense(3, "softmax"))
    stop = EarlyStopping(patience=2, restore_best_weights=True, verbose=1)
    net.fit(x, y, epochs=30, batch_size=8, optimizer=pm.Adam(0.02), validation_data=val,
            callbacks=[stop])
    err = capsys.readouterr().err.splitlines()
    assert stop.stopped_epoch is not None and stop.stopped_epoch == stop.best_epoch + 2
    assert err == [
        f"EarlyStopping: val_loss did not improve on {stop.best:.6g} (epoch "
        f"{stop.best_epoch + 1}) for 2 epoch(s); stopping after epoch {stop.stopped_epoch + 1}.",
        f"EarlyStopping: restored the weights of the best epoch, {stop.best_epoch + 1} "
        f"(val_loss {stop.best:.6g}).",
    ]
    assert net.loss(*val) == pytest.approx(stop.best, rel=1e-5)


def test_silent_by_default_and_attributes_when_not_stopped(capsys):
    x, y = _data()
    stop = EarlyStopping("loss", patience=50)
    net = pm.Network(4, seed=0).stack(pm.Dense(8, "relu"))
    net.output(pm.Dense(3, "softmax"))
    net.fit(x, y, epochs=3, batch_size=8, callbacks=[stop])
    assert capsys.readouterr().err == ""
    assert stop.stopped_epoch is None and stop.best_epoch == 2 and stop.wait == 0
    with pytest.raises(ValueError, match="`verbose`"):
        EarlyStopping(verbose=3)
