"""The parameter layout: slots, names and views, and ParamSpec checks at stack() time."""

import re

import numpy
import pytest

import polymlp as pm


class _Scale(pm.Layer):
    """A per-feature scale whose initializer is given at construction."""

    name = "scale_demo"

    def __init__(self, initializer="zeros"):
        self.initializer = initializer

    def parameter_specs(self):
        return [pm.ParamSpec("gain", (self.input_size,), self.initializer)]

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        return x * params[0], x

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        return grad * params[0], (xp.sum(grad * cache, axis=0),)


def test_layout_names_slices_and_fans():
    net = pm.Network(3, seed=0).stack(pm.Dense(4, "relu")).output(pm.Dense(2, "softmax"))
    layout = net.layout
    assert layout.keys == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    assert layout.size == net.n_parameters == 3 * 4 + 4 + 4 * 2 + 2
    w = layout.slots[0]
    assert (w.offset, w.size, w.shape, w.fan_in, w.fan_out) == (0, 12, (3, 4), 3, 4)
    flat = pm.to_numpy(net.theta)
    views = layout.views(net.theta, net.xp)
    numpy.testing.assert_array_equal(pm.to_numpy(views[1][0]), flat[16:24].reshape(4, 2))
    for got, want in zip(layout.split_host(flat), net.get_weights()):
        numpy.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("initializer", ["he_uniform", {"name": "constant",
                                                         "config": {"value": 2.0}}])
def test_param_spec_takes_a_registered_initializer_name(initializer):
    net = pm.Network(3, seed=0).stack(_Scale(initializer)).output(pm.Dense(2, "softmax"))
    gain = net.get_weights()[0]
    if isinstance(initializer, dict):
        numpy.testing.assert_array_equal(gain, numpy.full(3, 2.0, dtype="float32"))
    else:  # He uniform with fan-in 3: inside (-sqrt(2), sqrt(2)) and not all equal
        assert numpy.all(numpy.abs(gain) < numpy.sqrt(2.0)) and numpy.ptp(gain) > 0


@pytest.mark.parametrize("initializer, match", [
    ("he_unifrom", r"Did you mean 'he_uniform'"),
    (3.5, r"got 3\.5 of type float"),
    (None, r"got None"),
])
def test_a_bad_initializer_fails_at_stack_naming_everything(initializer, match):
    net = pm.Network(3, seed=0)
    with pytest.raises(ValueError) as info:
        net.stack(_Scale(initializer))
    message = str(info.value)
    assert "layer 0 (_Scale)" in message and "ParamSpec 'gain'" in message  # where
    assert repr(initializer) in message  # the value received
    assert "an Initializer instance, a registered name" in message and "he_uniform" in message
    assert re.search(match, message)
    assert not net.layers  # nothing was stacked


def test_a_bad_shape_or_spec_fails_at_stack():
    class BadShape(_Scale):
        def parameter_specs(self):
            return [pm.ParamSpec("gain", (self.input_size, -1), "zeros")]

    class NotASpec(_Scale):
        def parameter_specs(self):
            return [("gain", (3,), "zeros")]

    with pytest.raises(ValueError, match=r"ParamSpec 'gain' `shape` must be a tuple of "
                                         r"non-negative ints; got \(3, -1\)"):
        pm.Network(3).stack(BadShape())
    with pytest.raises(TypeError, match=r"must return ParamSpec objects; got \('gain'"):
        pm.Network(3).stack(NotASpec())
