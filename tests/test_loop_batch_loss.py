"""The loop's batch-loss hook: ``batch_loss_every = N`` puts the batch loss in batch logs."""

import numpy
import pytest

import polymlp as pm


class _Recorder(pm.callbacks.Callback):
    def __init__(self, every=None):
        if every is not None:
            self.batch_loss_every = every
        self.logs = {}

    def on_batch_end(self, iteration, logs=None):
        self.logs[iteration] = dict(logs)


def _net(net_kwargs):
    net = pm.Network(4, seed=0, **net_kwargs).stack(pm.Dense(8, "tanh"))
    return net.output(pm.Dense(2, "softmax"), loss="cross_entropy")


def _data():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((50, 4))
    return x, (x[:, 0] > 0).astype(int)


def test_every_nth_batch_log_holds_that_batch_loss(net_kwargs):
    x, y = _data()
    every, plain = _Recorder(3), _Recorder()
    hist = _net(net_kwargs).fit(x, y, epochs=2, batch_size=8, record="iteration",
                                callbacks=[every, plain])
    assert sorted(every.logs) == list(range(1, 15))  # 7 batches per epoch
    with_loss = [i for i, logs in every.logs.items() if "loss" in logs]
    assert with_loss == [3, 6, 9, 12]
    for i in with_loss:
        assert isinstance(every.logs[i]["loss"], float)
        assert every.logs[i]["loss"] == pytest.approx(hist.loss[i - 1], rel=1e-6)
    # Batch logs are shared by the callbacks of one fit.
    assert set(plain.logs[3]) == {"epoch", "batch", "size", "loss"} and "loss" not in plain.logs[2]


def test_no_loss_without_recording(net_kwargs):
    x, y = _data()
    every = _Recorder(1)
    _net(net_kwargs).fit(x, y, epochs=1, batch_size=8, record=None, callbacks=[every])
    assert every.logs and not any("loss" in logs for logs in every.logs.values())
