"""Activations: backward against central differences (float64), stability, namespaces."""

import numpy
import pytest

import polymlp as pm
from polymlp import registry

from _helpers import central_difference, xp_and_device

NAMES = ["identity", "sigmoid", "relu", "leaky_relu", "tanh", "softmax"]


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_finite_differences(name, net_kwargs, rng):
    xp, device, _ = xp_and_device(net_kwargs)
    act = registry.get_activation(name)
    z_host = rng.standard_normal((5, 4))
    z_host[numpy.abs(z_host) < 1e-3] = 0.5  # keep clear of the ReLU kink
    w_host = rng.standard_normal((5, 4))  # a random upstream gradient dL/da
    z = xp.asarray(z_host, device=device)
    w = xp.asarray(w_host, device=device)
    a = act.forward(z, xp=xp)
    got = pm.to_numpy(act.backward(z, a, w, xp=xp))

    def scalar(zh):
        out = act.forward(xp.asarray(zh, device=device), xp=xp)
        return float(numpy.sum(pm.to_numpy(out) * w_host))

    expected = central_difference(scalar, z_host.copy())
    numpy.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)
    assert a.device == device and a.dtype == xp.float64


@pytest.mark.parametrize("name", ["identity", "sigmoid", "relu", "leaky_relu", "tanh"])
def test_elementwise_derivative_matches_backward(name, net_kwargs, rng):
    xp, device, _ = xp_and_device(net_kwargs)
    act = registry.get_activation(name)
    z = xp.asarray(rng.standard_normal((3, 4)), device=device)
    ones = xp.ones_like(z)
    expected = act.backward(z, act.forward(z, xp=xp), ones, xp=xp)
    numpy.testing.assert_allclose(pm.to_numpy(act.derivative(z, xp=xp)),
                                  pm.to_numpy(expected), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_stable_at_huge_logits_float32(name, net_kwargs):
    xp, device, _ = xp_and_device(net_kwargs)
    act = registry.get_activation(name)
    z = xp.asarray([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4]], dtype=xp.float32,
                   device=device)
    a = act.forward(z, xp=xp)
    g = act.backward(z, a, xp.ones_like(z), xp=xp)
    for arr in (a, g):
        if name != "identity":
            assert numpy.all(numpy.isfinite(pm.to_numpy(arr))), name
    if name == "softmax":
        numpy.testing.assert_allclose(pm.to_numpy(xp.sum(a, axis=1)), [1.0, 1.0], rtol=1e-6)


def test_leaky_relu_default_slope_is_pytorchs():
    assert registry.get_activation("leaky_relu").negative_slope == 0.01


def test_activation_lookup_accepts_name_instance_and_none():
    assert isinstance(registry.get_activation(None), pm.activations.Identity)
    relu = pm.activations.ReLU()
    assert registry.get_activation(relu) is relu
    assert isinstance(registry.get_activation("ReLU"), pm.activations.ReLU)
    with pytest.raises(ValueError, match="did you mean|Did you mean"):
        registry.get_activation("rleu")
    with pytest.raises(TypeError, match="activation"):
        registry.get_activation(3.5)
