"""Losses: gradients and fused output deltas against central differences."""

import numpy
import pytest

import polymlp as pm
from polymlp import registry

from _helpers import central_difference, xp_and_device

PAIRS = [("cross_entropy", "softmax"), ("cross_entropy", "sigmoid"),
         ("binary_cross_entropy", "sigmoid"), ("binary_cross_entropy", "softmax"),
         ("mse", "identity"), ("mse", "tanh"), ("mae", "identity")]


def _targets(loss, rng, shape):
    if loss == "cross_entropy":
        return numpy.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, shape).astype(float)
    return rng.standard_normal(shape)


@pytest.mark.parametrize("loss_name", ["cross_entropy", "binary_cross_entropy", "mse", "mae"])
def test_gradient_matches_finite_differences(loss_name, net_kwargs, rng):
    xp, device, _ = xp_and_device(net_kwargs)
    loss = registry.get_loss(loss_name)
    y_host = _targets(loss_name, rng, (6, 3))
    p_host = rng.uniform(0.1, 0.9, (6, 3))
    y = xp.asarray(y_host, device=device)
    got = pm.to_numpy(loss.gradient(xp.asarray(p_host, device=device), y, xp=xp))

    def scalar(ph):
        return float(loss.value(xp.asarray(ph, device=device), y, xp=xp))

    numpy.testing.assert_allclose(got, central_difference(scalar, p_host.copy()),
                                  rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("loss_name, act_name", PAIRS)
def test_output_delta_matches_finite_differences(loss_name, act_name, net_kwargs, rng):
    """The (possibly fused) gradient at the pre-activations is d(output_value)/dz."""
    xp, device, _ = xp_and_device(net_kwargs)
    loss, act = registry.get_loss(loss_name), registry.get_activation(act_name)
    z_host = rng.standard_normal((5, 3))
    y = xp.asarray(_targets(loss_name, rng, (5, 3)), device=device)
    z = xp.asarray(z_host, device=device)
    got = pm.to_numpy(loss.output_delta(z, act.forward(z, xp=xp), y, act, xp=xp))

    def scalar(zh):
        zz = xp.asarray(zh, device=device)
        return float(loss.output_value(zz, act.forward(zz, xp=xp), y, act, xp=xp))

    numpy.testing.assert_allclose(got, central_difference(scalar, z_host.copy()),
                                  rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("loss_name, act_name", PAIRS)
def test_fused_value_equals_plain_value(loss_name, act_name, net_kwargs, rng):
    xp, device, _ = xp_and_device(net_kwargs)
    loss, act = registry.get_loss(loss_name), registry.get_activation(act_name)
    z = xp.asarray(rng.standard_normal((5, 3)), device=device)
    y = xp.asarray(_targets(loss_name, rng, (5, 3)), device=device)
    a = act.forward(z, xp=xp)
    numpy.testing.assert_allclose(float(loss.output_value(z, a, y, act, xp=xp)),
                                  float(loss.value(a, y, xp=xp)), rtol=1e-10)


def test_softmax_cross_entropy_stable_at_huge_logits(net_kwargs):
    xp, device, _ = xp_and_device(net_kwargs)
    loss, act = registry.get_loss("cross_entropy"), registry.get_activation("softmax")
    z = xp.asarray([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=xp.float32, device=device)
    y = xp.asarray([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=xp.float32, device=device)
    a = act.forward(z, xp=xp)
    value = float(loss.output_value(z, a, y, act, xp=xp))
    delta = pm.to_numpy(loss.output_delta(z, a, y, act, xp=xp))
    assert numpy.isfinite(value) and numpy.all(numpy.isfinite(delta))
    # Row 1 is wrong by 2e4 logits, row 2 right: mean loss 1e4.
    numpy.testing.assert_allclose(value, 1e4, rtol=1e-6)


def test_means_are_over_batch_and_elements():
    xp = numpy
    y = numpy.array([[0.0, 1.0], [1.0, 0.0]])
    p = numpy.array([[0.5, 0.5], [0.25, 0.75]])
    ce = registry.get_loss("cross_entropy").value(p, y, xp=xp)
    numpy.testing.assert_allclose(ce, -(numpy.log(0.5) + numpy.log(0.25)) / 2)
    mse = registry.get_loss("mse").value(p, y, xp=xp)
    numpy.testing.assert_allclose(mse, numpy.mean((p - y) ** 2))
    mae = registry.get_loss("mae").value(p, y, xp=xp)
    numpy.testing.assert_allclose(mae, numpy.mean(numpy.abs(p - y)))


def test_binary_cross_entropy_finite_at_saturated_float32_outputs():
    loss = registry.get_loss("binary_cross_entropy")
    p = numpy.array([[1.0, 0.0]], dtype=numpy.float32)
    y = numpy.array([[0.0, 1.0]], dtype=numpy.float32)
    assert numpy.isfinite(loss.value(p, y, xp=numpy))
    assert numpy.all(numpy.isfinite(loss.gradient(p, y, xp=numpy)))
