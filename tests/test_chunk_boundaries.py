"""Compiled chunks (JAX) end where callbacks need the host (``host_every``), not every step.

A ``ModelCheckpoint(save_freq=N)`` or ``TensorBoard(update_freq=N)`` must not
switch a compiling backend to step-by-step training: the loop runs compiled
chunks that end at the multiples of N (and at validation points and epoch
ends), and the state seen there is the exact state of that iteration.
"""

import importlib.util

import numpy
import pytest

import polymlp as pm
from polymlp import _loop, testing
from polymlp.callbacks import ModelCheckpoint


def _data():
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((160, 5))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0)


def _net(**kwargs):
    net = pm.Network(5, seed=1, dtype="float64", **kwargs).stack(pm.Dense(7, "tanh"))
    return net.output(pm.Dense(3, "softmax"), loss="cross_entropy")


@pytest.fixture
def net_kwargs():
    """JAX (in float64: compared with NumPy's step-by-step run)."""
    return testing.network_kwargs("jax")


@pytest.fixture
def chunk_calls(monkeypatch):
    """The number of steps each compiled chunk call ran, in order."""
    calls = []
    original = _loop.make_chunk

    def counting(*args, **kwargs):
        chunk = original(*args, **kwargs)

        def wrapped(theta, state, Xs, Ys, starts, active, noise):
            calls.append(int(numpy.asarray(pm.to_numpy(active)).sum()))
            return chunk(theta, state, Xs, Ys, starts, active, noise)

        return wrapped

    monkeypatch.setattr(_loop, "make_chunk", counting)
    return calls


class _Every(pm.callbacks.Callback):
    """Acts every `n` iterations: records the loss it is given and the weights it sees."""

    def __init__(self, n):
        self.host_every = self.batch_loss_every = n
        self.seen = {}

    def on_batch_end(self, iteration, logs=None):
        if iteration % self.host_every == 0:
            self.seen[iteration] = (logs["loss"], self.network.get_weights())


@pytest.mark.backend("jax")
def test_chunks_end_at_host_every_with_exact_state(chunk_calls, net_kwargs):
    x, y = _data()  # 160 rows, batch 16: 10 steps per epoch
    cb = _Every(3)
    hist = _net(**net_kwargs).fit(x, y, epochs=2, batch_size=16, callbacks=[cb])
    # Chunks end at the multiples of 3 and at each epoch's end: never one step at a time.
    assert chunk_calls == [3, 3, 3, 1, 2, 3, 3, 2]
    ref = _Every(3)  # NumPy runs step by step: the state at every iteration is exact
    ref_hist = _net().fit(x, y, epochs=2, batch_size=16, callbacks=[ref])
    assert sorted(cb.seen) == sorted(ref.seen) == [3, 6, 9, 12, 15, 18]
    for it in cb.seen:
        assert cb.seen[it][0] == pytest.approx(hist.loss[it - 1], rel=1e-12)
        assert cb.seen[it][0] == pytest.approx(ref.seen[it][0], rel=1e-9)
        for a, b in zip(cb.seen[it][1], ref.seen[it][1]):
            numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    numpy.testing.assert_allclose(hist.loss, ref_hist.loss, rtol=1e-9)


@pytest.mark.backend("jax")
def test_model_checkpoint_every_n_keeps_compiled_chunks(chunk_calls, net_kwargs, tmp_path):
    x, y = _data()
    ckpt = ModelCheckpoint(str(tmp_path / "m-{iteration}.polymlp"), save_freq=4)
    net = _net(**net_kwargs)
    net.fit(x, y, epochs=2, batch_size=16, record=None, callbacks=[ckpt])
    assert chunk_calls == [4, 4, 2, 2, 4, 4]
    assert [p.rsplit("-", 1)[1] for p in ckpt.saved] == [f"{i}.polymlp" for i in (4, 8, 12, 16,
                                                                                  20)]
    # The checkpoint inside the second epoch resumes to the uninterrupted run's weights.
    resumed = pm.load(str(tmp_path / "m-12.polymlp"), **net_kwargs)
    resumed.fit(x, y, epochs=1, batch_size=16, record=None)
    for a, b in zip(resumed.get_weights(), net.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.backend("jax")
@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None,
                    reason="needs tensorboardX")
def test_tensorboard_update_freq_keeps_compiled_chunks(chunk_calls, net_kwargs, tmp_path):
    from polymlp.callbacks import TensorBoard

    x, y = _data()
    tb = TensorBoard(str(tmp_path), update_freq=5)
    _net(**net_kwargs).fit(x, y, epochs=2, batch_size=16, callbacks=[tb])
    assert chunk_calls == [5, 5, 5, 5]  # epoch ends coincide with multiples of 5


@pytest.mark.backend("jax")
def test_large_steps_on_the_cpu_run_step_by_step_unless_asked(net_kwargs, chunk_calls):
    # On the CPU, XLA runs large matrix products slower inside a compiled loop than
    # as separate calls, so only small steps are chunked by default.
    backend = pm.Network(5, **net_kwargs).backend
    assert backend.chunks_pay(6 * 5_704 * 32)  # the seed's 14-100-40-4 at batch 32
    assert not backend.chunks_pay(6 * 1_863_690 * 256)  # 784-1024-1024-10 at batch 256
    x, y = _data()
    wide = pm.Network(5, seed=1, dtype="float64", **net_kwargs).stack(pm.Dense(4096, "relu"))
    wide.stack(pm.Dense(64, "relu")).output(pm.Dense(3, "softmax"), loss="cross_entropy")
    wide.fit(x, y, epochs=1, batch_size=40, record=None)
    assert chunk_calls == []  # 6 x 286,979 parameters x 40 rows: above the CPU limit
    wide.fit(x, y, epochs=1, batch_size=40, record=None, steps_per_execution=2)
    assert chunk_calls == [2, 2]
    small = _net(**net_kwargs)
    small.fit(x, y, epochs=1, batch_size=40, record=None)
    assert chunk_calls == [2, 2, 4]
