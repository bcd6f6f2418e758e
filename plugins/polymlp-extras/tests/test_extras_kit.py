"""Every object of polymlp-extras passes polymlp's conformance kit on every installed backend.

The kit checks shapes, dtypes, array library and device, no in-place writes,
agreement with NumPy, derivatives against finite differences in float64,
``jax.jit``, the JSON config round trip, and that optimizers decrease a quadratic.
"""

import pytest

from polymlp.testing import (check_activation, check_initializer, check_layer, check_loss,
                             check_optimizer)
from polymlp_extras import (GELU, AdamW, Dropout, Hinge, Huber, LayerNorm, LeCunNormal,
                            LeCunUniform, Lion, Mish, Orthogonal, RMSprop, SiLU, Softplus, Swish)


def _ran(results):
    # The kit returns the backends it ran on; NumPy is always among them unless narrowed away.
    assert results, "the kit checked nothing"
    return results


@pytest.mark.parametrize("cls, config", [
    (Swish, None), (Swish, {"beta": 1.7}), (SiLU, None), (GELU, None),
    (GELU, {"approximate": "tanh"}), (Softplus, None), (Softplus, {"beta": 2.0, "threshold": 8.0}),
    (Mish, None),
], ids=lambda v: getattr(v, "name", None) or str(v))
def test_activation_passes_the_kit(cls, config):
    _ran(check_activation(cls, config=config))


@pytest.mark.parametrize("cls, kwargs", [
    (Huber, {}), (Huber, {"config": {"delta": 0.3}}),
    (Hinge, {"shapes": [(6, 3), (6, 1)]}), (Hinge, {"config": {"margin": 0.5}}),
], ids=["huber", "huber-delta0.3", "hinge", "hinge-margin0.5"])
def test_loss_passes_the_kit(cls, kwargs):
    _ran(check_loss(cls, **kwargs))


@pytest.mark.parametrize("cls, config", [
    (RMSprop, None), (RMSprop, {"centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    (AdamW, {"learning_rate": 0.01}), (Lion, {"learning_rate": 0.01, "weight_decay": 0.1}),
], ids=["rmsprop", "rmsprop-centered-momentum", "adamw", "lion"])
def test_optimizer_passes_the_kit(cls, config):
    _ran(check_optimizer(cls, config=config))


@pytest.mark.parametrize("cls, config", [
    (Dropout, {"rate": 0.3}), (LayerNorm, None), (LayerNorm, {"epsilon": 0.1}),
], ids=["dropout", "layer_norm", "layer_norm-eps0.1"])
def test_layer_passes_the_kit(cls, config):
    _ran(check_layer(cls, config=config))


@pytest.mark.parametrize("cls", [LeCunNormal, LeCunUniform, Orthogonal], ids=lambda c: c.name)
def test_initializer_passes_the_kit(cls):
    _ran(check_initializer(cls))


@pytest.mark.parametrize("make, match", [
    (lambda: Swish(beta="1"), "`beta`"), (lambda: GELU(approximate="erf"), "`approximate`"),
    (lambda: Huber(delta=0), "`delta`"), (lambda: Hinge(margin=-1), "`margin`"),
    (lambda: Lion(beta1=1.0), "`beta1`"), (lambda: RMSprop(centered=1), "`centered`"),
    (lambda: AdamW(weight_decay=-0.1), "`weight_decay`"), (lambda: Dropout(rate=1.0), "`rate`"),
    (lambda: LayerNorm(epsilon=0.0), "`epsilon`"),
])
def test_bad_hyperparameters_are_named(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_dropout_drops_at_the_rate_and_is_identity_at_inference():
    import numpy as np

    x = np.ones((200, 50))
    layer = Dropout(rate=0.3)
    layer.build(50)
    out, _ = layer.forward((), x, xp=np, training=True, rng=np.random.default_rng(0))
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.3) < 0.02
    assert np.allclose(out[out != 0], 1 / 0.7)
    same, _ = layer.forward((), x, xp=np, training=False, rng=None)
    assert same is x
    with pytest.raises(ValueError, match="rng"):
        layer.forward((), x, xp=np, training=True, rng=None)


def test_orthogonal_is_orthogonal():
    import numpy as np

    for shape in ((6, 4), (4, 6), (5, 5)):
        w = Orthogonal(gain=2.0)(shape, rng=np.random.default_rng(0), fan_in=shape[0],
                                 fan_out=shape[1])
        small = min(shape)
        gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
        assert np.allclose(gram, 4.0 * np.eye(small), atol=1e-12)
