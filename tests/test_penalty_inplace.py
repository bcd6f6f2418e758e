"""The L2 penalty (``alpha``) and sample weights in the in-place step equal the pure step.

The in-place step (NumPy, PyTorch) adds the penalty into its own gradient
buffer and, for weighted batches, takes the loss's pure weighted output terms
instead of the fused in-place output kernel: the numbers must be the pure
step's, for the fused (softmax + cross-entropy) and generic output paths.
"""

import numpy
import pytest

import polymlp as pm
from polymlp import _engine
from polymlp._sklearn_losses import HalfSquaredError, LogLoss


def _pure_only(monkeypatch):
    make_step = _engine.Engine.make_step

    def pure(self, optimizer, **kwargs):
        return make_step(self, optimizer, **{**kwargs, "inplace": False})

    monkeypatch.setattr(_engine.Engine, "make_step", pure)


CASES = {
    "softmax-ce": (pm.Dense(3, "softmax"), "cross_entropy", False),
    "softmax-ce-weighted": (pm.Dense(3, "softmax"), LogLoss(), True),
    "identity-mse-weighted": (pm.Dense(2, "identity"), HalfSquaredError(), True),
}


def _train(net_kwargs, case, optimizer):
    layer, loss, weighted = CASES[case]
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((50, 4))
    y = rng.integers(0, 3, 50) if layer.units == 3 else rng.standard_normal((50, 2))
    w = rng.uniform(0.1, 2.0, 50) if weighted else None
    net = pm.Network(4, dtype="float64", seed=2, alpha=0.05, **net_kwargs)
    net.stack(pm.Dense(6, "relu")).output(pm.registry.get_layer(pm.registry.to_config(layer)),
                                          loss=loss)
    hist = net.fit(x, y, epochs=2, batch_size=16, optimizer=optimizer, sample_weight=w)
    return net, hist


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_inplace_step_with_penalty_and_weights_equals_pure(backend_name, net_kwargs,
                                                           monkeypatch, case, optimizer):
    backend = pm.resolve_backend(net_kwargs["backend"], net_kwargs.get("device"))
    if not backend.writable:
        pytest.skip(f"no in-place step on {backend_name}")
    fast, h_fast = _train(net_kwargs, case, optimizer)
    steps = list(fast.engine.step_cache.values())
    assert steps and all(hasattr(step, "bind") for step in steps)  # the in-place step ran
    _pure_only(monkeypatch)
    pure, h_pure = _train(net_kwargs, case, optimizer)
    assert not any(hasattr(step, "bind") for step in pure.engine.step_cache.values())
    numpy.testing.assert_allclose(h_fast.loss, h_pure.loss, rtol=1e-12, atol=1e-14)
    for a, b in zip(fast.get_weights(), pure.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # The penalty is part of the objective: setting alpha to 0 lowers the loss.
    x0, y0 = numpy.zeros((1, 4)), [0] if CASES[case][0].units == 3 else [[0.0, 0.0]]
    with_penalty = fast.loss(x0, y0)
    fast.alpha = 0.0
    assert fast.loss(x0, y0) < with_penalty
