"""Callbacks: the protocol, EarlyStopping, ModelCheckpoint, LearningRateScheduler, progress."""

import io
import logging
import math
import sys

import numpy
import pytest

import polymlp as pm
from polymlp import cli
from polymlp.callbacks import (Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                               ProgressBar)


def _data(n=48, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, y


def _net(net_kwargs=None, **kwargs):
    net = pm.Network(4, name="cb", seed=0, **(net_kwargs or {}), **kwargs)
    net.stack(pm.Dense(8, activation="relu"))
    return net.output(pm.Dense(3, activation="softmax"), loss="cross_entropy")


class Recorder(Callback):
    """Records every call, and the weights at each epoch's end."""

    def __init__(self):
        self.calls, self.weights, self.logs = [], [], []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, iteration, logs=None):
        self.calls.append(("batch_begin", iteration, dict(logs)))

    def on_batch_end(self, iteration, logs=None):
        self.calls.append(("batch_end", iteration, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch))
        self.logs.append(dict(logs))
        self.weights.append(self.network.get_weights())

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_protocol_order_and_host_logs(backend_name, net_kwargs):
    x, y = _data(20)
    net = _net(net_kwargs)
    rec = Recorder()
    net.fit(x, y, epochs=2, batch_size=8, callbacks=[rec], validation_data=(x, y))
    kinds = [c[0] for c in rec.calls]
    assert kinds == (["train_begin"] + (["epoch_begin"] + ["batch_begin", "batch_end"] * 3
                                        + ["epoch_end"]) * 2 + ["train_end"])
    assert [c[1] for c in rec.calls if c[0] == "batch_end"] == [1, 2, 3, 4, 5, 6]
    assert [c[2] for c in rec.calls if c[0] == "batch_end"][:3] == [
        {"epoch": 0, "batch": 0, "size": 8}, {"epoch": 0, "batch": 1, "size": 8},
        {"epoch": 0, "batch": 2, "size": 4}]
    for logs in rec.logs:
        assert set(logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert all(type(v) is float for v in logs.values())
    # Epoch loss is the sample-weighted mean of the recorded batch losses.
    h = net.fit(x, y, epochs=1, batch_size=8, callbacks=[rec])
    numpy.testing.assert_allclose(rec.logs[-1]["loss"],
                                  (8 * h.loss[0] + 8 * h.loss[1] + 4 * h.loss[2]) / 20)
    assert rec.calls[-2] == ("epoch_end", 2)  # epochs keep counting across fit calls
    assert rec.network is net and rec.params["initial_epoch"] == 2 and rec.params["steps"] == 3


def test_batch_callbacks_see_current_weights_and_can_stop():
    x, y = _data(40)
    seen = []

    class StopAtFour(Callback):
        def on_batch_end(self, iteration, logs=None):
            seen.append(self.network.get_weights()[0].copy())
            if iteration == 4:
                self.network.stop_training = True

    net = _net()
    history = net.fit(x, y, epochs=3, batch_size=8, callbacks=[StopAtFour()])
    assert net.iterations == 4 and history.iteration == [1, 2, 3, 4]
    assert not numpy.array_equal(seen[0], seen[1])  # the weights after each step
    numpy.testing.assert_array_equal(seen[-1], net.get_weights()[0])
    assert net.fit(x, y, epochs=1, batch_size=8).iteration[-1] == 9  # the flag was reset


def test_record_none_gives_empty_logs():
    rec = Recorder()
    _net().fit(*_data(), epochs=1, batch_size=16, record=None, callbacks=[rec])
    assert rec.logs == [{}]


def _adversarial_validation():
    """Validation labels that disagree with training: val_loss rises as training improves."""
    x, y = _data(60)
    return x, y, (x, (y + 1) % 3)


def test_early_stopping_restores_the_best_weights(backend_name, net_kwargs):
    x, y, val = _adversarial_validation()
    net = _net(net_kwargs)
    rec = Recorder()
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    net.fit(x, y, epochs=30, batch_size=8, optimizer=pm.Adam(0.02), validation_data=val,
            callbacks=[rec, stop])
    losses = [logs["val_loss"] for logs in rec.logs]
    best = int(numpy.argmin(losses))
    assert stop.best_epoch == best and stop.best == losses[best]
    # Stopped at the second epoch in a row without improvement (Keras' reading of patience).
    assert stop.stopped_epoch == best + 2 and net.epochs_done == best + 3 < 30
    assert all(v >= losses[best] for v in losses[best + 1:])
    for a, b in zip(net.get_weights(), rec.weights[best]):
        numpy.testing.assert_array_equal(a, b)


def test_early_stopping_min_delta_and_mode():
    x, y = _data(60)
    rec = Recorder()
    stop = EarlyStopping(monitor="accuracy", min_delta=2.0)  # nothing improves by 2
    net = _net()
    net.fit(x, y, epochs=10, batch_size=8, callbacks=[rec, stop])
    assert stop.mode == "max" and net.epochs_done == 2 and stop.best_epoch == 0
    weights = net.get_weights()  # restore_best_weights=False: the last weights stay
    for a, b in zip(weights, rec.weights[-1]):
        numpy.testing.assert_array_equal(a, b)


def test_early_stopping_checks_its_arguments():
    with pytest.raises(ValueError, match="`patience`"):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="`patience`"):
        EarlyStopping(patience=1.5)
    with pytest.raises(ValueError, match="`mode`"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="`min_delta`"):
        EarlyStopping(min_delta=-1)
    with pytest.raises(ValueError, match=r"record=None.*record='epoch'"):
        _net().fit(*_data(), epochs=1, callbacks=[EarlyStopping("loss")], record=None)


def test_checkpoint_every_epoch_files_load(tmp_path, backend_name, net_kwargs):
    x, y = _data()
    net = _net(net_kwargs)
    rec = Recorder()
    ckpt = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.polymlp")
    net.fit(x, y, epochs=3, batch_size=16, callbacks=[rec, ckpt])
    assert len(ckpt.saved) == 3 and ckpt.saved[0].endswith(
        f"ckpt-01-{rec.logs[0]['loss']:.3f}.polymlp")
    for path, weights in zip(ckpt.saved, rec.weights):
        loaded = pm.load(path, **net_kwargs)
        for a, b in zip(loaded.get_weights(), weights):
            numpy.testing.assert_array_equal(a, b)
    # Training resumes exactly from a checkpoint.
    resumed = pm.load(ckpt.saved[1], **net_kwargs)
    resumed.fit(x, y, epochs=1, batch_size=16)
    for a, b in zip(resumed.get_weights(), net.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_checkpoint_best_only(tmp_path):
    x, y, val = _adversarial_validation()
    rec = Recorder()
    ckpt = ModelCheckpoint(tmp_path / "best.polymlp", monitor="val_loss", save_best_only=True)
    _net().fit(x, y, epochs=6, batch_size=8, optimizer=pm.Adam(0.02), validation_data=val,
               callbacks=[rec, ckpt])
    losses = [logs["val_loss"] for logs in rec.logs]
    improvements = [i for i, v in enumerate(losses) if v < min(losses[:i], default=math.inf)]
    assert len(ckpt.saved) == len(improvements) >= 1
    best = pm.load(tmp_path / "best.polymlp")
    for a, b in zip(best.get_weights(), rec.weights[improvements[-1]]):
        numpy.testing.assert_array_equal(a, b)


def test_checkpoint_refuses_bad_settings_before_training(tmp_path):
    net = _net()
    with pytest.raises(ValueError, match="does not exist"):
        net.fit(*_data(), epochs=1, callbacks=[ModelCheckpoint(tmp_path / "no" / "m.polymlp")])
    with pytest.raises(ValueError, match="val_acc"):
        net.fit(*_data(), epochs=1, callbacks=[ModelCheckpoint(tmp_path / "{val_acc}.polymlp")])
    assert net.iterations == 0 and net.optimizer is None


@pytest.mark.parametrize("schedule, kwargs, expected", [
    ("step", {"step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025]),
    ("exponential", {"gamma": 0.5}, [0.1, 0.05, 0.025, 0.0125, 0.00625]),
    ("cosine", {"t_max": 4, "eta_min": 0.01},
     [0.01 + 0.09 * (1 + math.cos(math.pi * min(e, 4) / 4)) / 2 for e in range(5)]),
    (lambda epoch: 0.1 / (1 + epoch), {}, [0.1, 0.05, 0.1 / 3, 0.025, 0.02]),
    (lambda epoch, lr: lr * 0.9, {}, [0.09, 0.081, 0.0729, 0.06561, 0.059049]),
], ids=["step", "exponential", "cosine", "function", "function_of_lr"])
def test_learning_rate_schedules(schedule, kwargs, expected):
    rates = []

    class Rates(Callback):
        def on_epoch_end(self, epoch, logs=None):
            rates.append(self.network.optimizer.learning_rate)

    opt = pm.GradientDescent(0.1)
    _net().fit(*_data(), epochs=5, batch_size=16, optimizer=opt,
               callbacks=[LearningRateScheduler(schedule, **kwargs), Rates()])
    numpy.testing.assert_allclose(rates, expected, rtol=1e-12)


def test_optimizers_use_the_scheduled_rate_at_update_time(backend_name, net_kwargs):
    """A scheduled run equals one with the rate changed by hand between epochs."""
    x, y = _data()
    for opt_cls in (pm.GradientDescent, pm.Momentum, pm.Adam):
        scheduled = _net(net_kwargs)
        scheduled.fit(x, y, epochs=2, batch_size=16, optimizer=opt_cls(0.05),
                      callbacks=[LearningRateScheduler("step", step_size=1, gamma=0.1)])
        manual = _net(net_kwargs)
        opt = opt_cls(0.05)
        manual.fit(x, y, epochs=1, batch_size=16, optimizer=opt)
        opt.learning_rate = 0.005
        manual.fit(x, y, epochs=1, batch_size=16, optimizer=opt)
        for a, b in zip(scheduled.get_weights(), manual.get_weights()):
            numpy.testing.assert_array_equal(a, b)


def test_scheduler_checks_its_arguments():
    with pytest.raises(ValueError, match="step_size"):
        LearningRateScheduler("step")
    with pytest.raises(ValueError, match="t_max"):
        LearningRateScheduler("cosine")
    with pytest.raises(ValueError, match="`schedule` must be one of"):
        LearningRateScheduler("linear")
    with pytest.raises(TypeError, match=r"\(epoch\) or \(epoch, lr\)"):
        LearningRateScheduler(lambda a, b, c: 0.1)
    with pytest.raises(ValueError, match="returned -1"):
        _net().fit(*_data(), epochs=1, callbacks=[LearningRateScheduler(lambda e: -1)])


# --- progress -------------------------------------------------------------------------

def test_verbose_0_writes_nothing(capsys, caplog):
    with caplog.at_level(logging.DEBUG):
        _net().fit(*_data(), epochs=2, batch_size=16, verbose=0)
    out, err = capsys.readouterr()
    assert out == "" and err == "" and caplog.text == ""


def test_verbose_2_writes_one_line_per_epoch(capsys):
    _net().fit(*_data(), epochs=3, batch_size=16, verbose=2, validation_data=_data(12, 1))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 3
    assert lines[0].startswith("cb epoch 1/3 - loss ") and "val_accuracy" in lines[0]


def test_verbose_1_shows_a_bar_with_loss_and_accuracy(capsys):
    pytest.importorskip("tqdm")
    _net().fit(*_data(), epochs=2, batch_size=16, verbose=1)
    out, err = capsys.readouterr()
    assert out == "" and "cb epoch 2/2" in err and "3/3" in err
    assert "loss=" in err and "accuracy=" in err


def test_bar_falls_back_to_lines_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    stream = io.StringIO()
    bar = ProgressBar("bar", stream=stream)
    assert bar.mode == "lines"
    _net().fit(*_data(), epochs=2, batch_size=16, callbacks=[bar])
    assert stream.getvalue().count("\n") == 2 and "cb epoch 2/2 - loss" in stream.getvalue()


def test_reproduce_shows_progress(tmp_path, monkeypatch, capsys):
    """`polymlp reproduce` reports each epoch through the progress callback (plain lines here)."""
    x, y = _data(64)
    monkeypatch.setattr(pm.datasets, "hypercube",
                        lambda: (numpy.tile(x, (1, 4))[:, :14], y, numpy.tile(x, (1, 4))[:16, :14],
                                 y[:16]))
    monkeypatch.setattr(cli, "SEED_NETS", (("tiny", (6,), 0.5),))
    assert cli.main(["reproduce", "--epochs", "2", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "[tiny] epoch 1/2 - loss" in err and "[tiny] epoch 2/2 - loss" in err
    assert "tiny" in out and (tmp_path / "tiny.csv").exists()
