"""The TensorBoard callback, read back with TensorBoard's own EventAccumulator."""

import os

import numpy
import pytest

import polymlp as pm

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read(log_dir):
    """``{tag: [(step, value), ...]}`` of every scalar in `log_dir`, as TensorBoard reads it."""
    acc = event_accumulator.EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _classifier(net_kwargs, dtype="float32"):
    net = pm.Network(14, seed=0, dtype=dtype, **net_kwargs).stack(pm.Dense(16, "relu"))
    return net.output(pm.Dense(4, "softmax"), loss="cross_entropy")


def _values(points):
    return numpy.array([v for _, v in points])


def test_epoch_scalars_equal_the_history(tmp_path, net_kwargs, hypercube):
    x, y, xv, yv = hypercube
    net = _classifier(net_kwargs)
    tb = pm.callbacks.TensorBoard(tmp_path / "run")
    schedule = pm.callbacks.LearningRateScheduler("exponential", gamma=0.5)
    hist = net.fit(x[:640], y[:640], epochs=4, batch_size=64, record="epoch",
                   optimizer=pm.Adam(learning_rate=0.01), validation_data=(xv[:300], yv[:300]),
                   callbacks=[tb, schedule])
    scalars = read(tmp_path / "run")
    assert set(scalars) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    for tag in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [s for s, _ in scalars[tag]] == [0, 1, 2, 3]
        # TensorBoard stores float32 values.
        numpy.testing.assert_allclose(_values(scalars[tag]), hist[tag], rtol=1e-6)
    numpy.testing.assert_allclose(_values(scalars["learning_rate"]),
                                  [0.01, 0.005, 0.0025, 0.00125], rtol=1e-6)
    assert tb.writer is None  # closed at the end of training


def test_update_freq_writes_batch_loss_at_iterations(tmp_path, net_kwargs, hypercube):
    x, y, _, _ = hypercube
    net = _classifier(net_kwargs)
    tb = pm.callbacks.TensorBoard(tmp_path, update_freq=4)
    hist = net.fit(x[:500], y[:500], epochs=2, batch_size=50, record="iteration",
                   callbacks=[tb])
    scalars = read(tmp_path)
    assert set(scalars) == {"loss", "accuracy", "batch_loss", "learning_rate"}
    steps = [s for s, _ in scalars["batch_loss"]]
    assert steps == [4, 8, 12, 16, 20]  # 10 batches per epoch, iterations are 1-based
    numpy.testing.assert_allclose(_values(scalars["batch_loss"]),
                                  [hist.loss[s - 1] for s in steps], rtol=1e-6)
    # Epoch points: the mean of the epoch's batch losses (equal batches here).
    assert [s for s, _ in scalars["loss"]] == [0, 1]
    numpy.testing.assert_allclose(_values(scalars["loss"]),
                                  [numpy.mean(hist.loss[:10]), numpy.mean(hist.loss[10:])],
                                  rtol=1e-5)


def test_regressor_logs_r2_and_steps_continue_across_fits(tmp_path, net_kwargs):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    y = x @ numpy.array([[1.0], [-2.0], [0.5]])
    net = pm.Network(3, seed=0, **net_kwargs).stack(pm.Dense(8, "tanh"))
    net.output(pm.Dense(1, "identity"), loss="mse")
    tb = pm.callbacks.TensorBoard(str(tmp_path), update_freq="batch")
    first = net.fit(x, y, epochs=2, batch_size=100, record="epoch", callbacks=[tb])
    second = net.fit(x, y, epochs=1, batch_size=100, record="epoch", callbacks=[tb])
    scalars = read(tmp_path)
    assert [s for s, _ in scalars["r2"]] == [0, 1, 2]
    numpy.testing.assert_allclose(_values(scalars["r2"]), first.r2 + second.r2, rtol=1e-6)
    assert [s for s, _ in scalars["batch_loss"]] == [1, 2, 3, 4, 5, 6]


def test_validation_points_follow_validation_freq(tmp_path, net_kwargs, hypercube):
    # validation_freq counts iterations; every epoch end is validated too, so each epoch
    # has a val_loss point, at the epoch's step.
    x, y, xv, yv = hypercube
    net = _classifier(net_kwargs)
    hist = net.fit(x[:200], y[:200], epochs=4, batch_size=50, record="epoch",
                   validation_freq=3, validation_data=(xv[:100], yv[:100]),
                   callbacks=[pm.callbacks.TensorBoard(tmp_path)])
    scalars = read(tmp_path)
    assert [s for s, _ in scalars["val_loss"]] == [0, 1, 2, 3]
    numpy.testing.assert_allclose(_values(scalars["val_loss"]), hist.val_loss, rtol=1e-6)
    assert [s for s, _ in scalars["loss"]] == [0, 1, 2, 3]


def test_bad_arguments_are_clear_errors(tmp_path, net_kwargs):
    with pytest.raises(ValueError, match="`update_freq` must be 'epoch', 'batch' or a positive"):
        pm.callbacks.TensorBoard(tmp_path, update_freq=0)
    with pytest.raises(TypeError, match="`log_dir` must be a directory path"):
        pm.callbacks.TensorBoard(3)
    net = _classifier(net_kwargs)
    x = numpy.zeros((8, 14))
    with pytest.raises(ValueError, match="record=None"):
        net.fit(x, numpy.zeros(8, int), epochs=1, record=None,
                callbacks=[pm.callbacks.TensorBoard(tmp_path / "none")])
    assert not os.path.exists(tmp_path / "none")  # refused before anything was written


def test_is_a_callback_and_reprs(tmp_path):
    tb = pm.callbacks.TensorBoard(tmp_path, update_freq=10)
    assert isinstance(tb, pm.callbacks.Callback) and "TensorBoard" in pm.callbacks.__all__
    assert repr(tb) == f"TensorBoard({str(tmp_path)!r}, update_freq=10)"


def test_reproduce_writes_the_three_runs_side_by_side(tmp_path):
    import csv
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "polymlp", "reproduce", "--epochs", "1",
                          "--out", str(tmp_path), "--tensorboard", str(tmp_path / "tb")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    nets = ("14-100-40-4", "14-28x6-4", "14-14x28-4")
    assert sorted(os.listdir(tmp_path / "tb")) == sorted(nets)
    for net in nets:
        scalars = read(tmp_path / "tb" / net)
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "batch_loss",
                "learning_rate"} <= set(scalars)
        with open(tmp_path / f"{net}.csv") as fh:
            rows = list(csv.DictReader(fh))
        steps = [s for s, _ in scalars["batch_loss"]]
        assert steps == list(range(10, len(rows) + 1, 10))  # --validation-freq 10
        numpy.testing.assert_allclose(_values(scalars["batch_loss"]),
                                      [float(rows[s - 1]["loss"]) for s in steps], rtol=1e-6)
        numpy.testing.assert_allclose(_values(scalars["learning_rate"]), [0.002], rtol=1e-6)


class _FailAtEpoch(pm.callbacks.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated failure")


def test_a_failing_fit_still_writes_every_finished_epoch(tmp_path, net_kwargs):
    net = _classifier(net_kwargs)
    tb = pm.callbacks.TensorBoard(tmp_path)
    x = numpy.random.default_rng(0).standard_normal((64, 14))
    with pytest.raises(RuntimeError, match="simulated failure"):
        net.fit(x, numpy.zeros(64, int), epochs=5, batch_size=16, record="epoch",
                callbacks=[tb, _FailAtEpoch(2)])
    assert tb.writer is None  # closed by fit's clean-up
    assert [s for s, _ in read(tmp_path)["loss"]] == [0, 1, 2]
