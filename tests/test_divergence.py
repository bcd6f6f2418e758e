"""Divergence: a non-finite loss or weight stops training at a named epoch and iteration,
and the network keeps its last finite weights."""

import warnings

import numpy
import pytest

import polymlp as pm
from polymlp import _divergence

BATCHES = 8  # per epoch


def _data():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x @ rng.standard_normal((3, 2)) * 10
    return x, y


def _net(net_kwargs, dtype="float32"):
    net = pm.Network(3, seed=0, dtype=dtype, **net_kwargs).stack(pm.Dense(8, "tanh"))
    return net.output(pm.Dense(2), loss="mse")


def _fit(net, epochs=5, record="iteration", **kwargs):
    x, y = _data()
    with numpy.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow warnings of the backends
        return net.fit(x, y, epochs=epochs, batch_size=8, optimizer=pm.GradientDescent(3.0),
                       record=record, **kwargs)


class _StopAt(pm.callbacks.Callback):
    def __init__(self, iteration):
        self.iteration = iteration

    def on_batch_end(self, iteration, logs=None):
        if iteration == self.iteration:
            self.network.stop_training = True


@pytest.mark.parametrize("record", ["iteration", "epoch", None])
def test_divergence_raises_naming_epoch_and_iteration(backend_name, net_kwargs, record):
    net = _net(net_kwargs)
    with pytest.raises(pm.TrainingDivergedError) as info:
        _fit(net, record=record)
    err = info.value
    k = err.iteration
    assert k is not None and err.epoch == (k - 1) // BATCHES + 1
    message = str(err)
    assert f"in epoch {err.epoch} at iteration {k}" in message
    assert "smaller learning rate" in message and "e.g. 0.3" in message
    # The last finite weights stay in place: those after iteration k - 1, exactly.
    assert net.iterations == k - 1 and net.epochs_done == err.epoch - 1
    weights = net.get_weights()
    assert all(numpy.isfinite(w).all() for w in weights)
    reference = _net(net_kwargs)
    _fit(reference, callbacks=[_StopAt(k - 1)])
    for a, b in zip(weights, reference.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    # The history of the completed iterations comes with the error.
    if record == "iteration":
        assert err.history.iteration == list(range(1, k))
    elif record == "epoch":
        assert err.history.epoch == list(range(1, err.epoch))
    else:
        assert len(err.history) == 0


def test_warn_instead_of_raise(backend_name, net_kwargs):
    net = _net(net_kwargs)
    x, y = _data()
    with numpy.errstate(all="ignore"), pytest.warns(RuntimeWarning, match=r"diverged in epoch"):
        history = net.fit(x, y, epochs=5, batch_size=8, optimizer=pm.GradientDescent(3.0),
                          on_divergence="warn")
    assert net.epochs_done < 5
    assert history.iteration == list(range(1, net.iterations + 1))
    assert all(numpy.isfinite(w).all() for w in net.get_weights())
    assert numpy.isfinite(history.loss).all()


def test_first_step_divergence_keeps_the_initial_weights():
    net = _net({})
    huge = [w * 1e30 if w.ndim == 2 else w for w in net.get_weights()]
    net.set_weights(huge)
    x, y = _data()
    with numpy.errstate(all="ignore"), pytest.raises(pm.TrainingDivergedError,
                                                      match="at iteration 1"):
        net.fit(x, y, epochs=2, batch_size=8)
    for a, b in zip(net.get_weights(), huge):
        numpy.testing.assert_array_equal(a, b.astype("float32"))
    assert net.iterations == 0


def test_without_replay_the_epoch_start_is_kept(monkeypatch):
    """When the failing step cannot be replayed, the epoch's starting state is restored."""
    real = _divergence.restore_last_finite
    monkeypatch.setattr(_divergence, "restore_last_finite",
                        lambda *args, **kwargs: real(*args[:8]))  # no step: no replay
    net = _net({})
    rec = []

    class Weights(pm.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rec.append((self.network.iterations, self.network.get_weights()))

    with pytest.raises(pm.TrainingDivergedError) as info:
        _fit(net, callbacks=[Weights()])
    err = info.value
    first = (err.epoch - 1) * BATCHES + 1
    assert err.iteration is None
    assert f"in epoch {err.epoch} (iterations {first} to {first + BATCHES - 1})" in str(err)
    assert "weights it had when the epoch started" in str(err)
    iterations, weights = rec[-1]
    assert net.iterations == iterations == first - 1
    for a, b in zip(net.get_weights(), weights):
        numpy.testing.assert_array_equal(a, b)


def test_finiteness_is_checked_once_per_epoch_not_per_batch(monkeypatch):
    calls = []
    real = _divergence.finite

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(_divergence, "finite", counting)
    x, y = _data()
    net = _net({})
    net.fit(x, y, epochs=3, batch_size=8, optimizer=pm.GradientDescent(1e-3), record=None)
    assert len(calls) == 3 and net.iterations == 3 * BATCHES


def test_epoch_start_snapshot_is_a_copy():
    """The kept state must survive in-place updates of the live parameters."""
    net = _net({})
    net.fit(*_data(), epochs=1, batch_size=8, optimizer=pm.Adam(0.01))
    snap = _divergence.snapshot(net)
    before = numpy.array(pm.to_numpy(snap.theta))
    host = pm.to_numpy(net.theta)
    if host.flags.writeable:
        host[...] = numpy.nan  # what an in-place fast path would do
    numpy.testing.assert_array_equal(pm.to_numpy(snap.theta), before)
    assert snap.state["m"] is not net.opt_state["m"]
