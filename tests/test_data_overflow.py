"""Finite values too large for the dtype are reported as an overflow, not as NaN/inf."""

import warnings

import numpy
import pytest

import polymlp as pm


def _net(net_kwargs, dtype="float32"):
    return pm.Network(2, dtype=dtype, seed=0, **net_kwargs).output(pm.Dense(1, None), loss="mse")


def _error(func):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no "overflow encountered in cast" on the way
        with pytest.raises(ValueError) as info:
            func()
    return str(info.value)


def test_inputs_and_targets_that_overflow_float32(net_kwargs):
    net = _net(net_kwargs)
    x, y = numpy.array([[1e39, 0.0], [1.0, 2.0]]), numpy.array([[1.0], [2.0]])
    message = _error(lambda: net.fit(x, y, epochs=1))
    assert message.startswith("`x` overflows float32: it holds finite values up to 1e+39")
    assert "at most 3.403e+38" in message and "dtype='float64'" in message
    message = _error(lambda: net.fit(x[1:], -1e40 * y[1:], epochs=1))
    assert message.startswith("`y` overflows float32: it holds finite values up to 2e+40")
    message = _error(lambda: net.predict(x))
    assert "`x` overflows float32" in message


def test_nan_and_infinity_are_still_reported_as_such(net_kwargs):
    net = _net(net_kwargs)
    for bad in (numpy.nan, numpy.inf):
        message = _error(lambda: net.fit([[bad, 0.0]], [[1.0]], epochs=1))
        assert message == "`x` contains NaN or infinite values; remove or impute them first."


def test_float64_takes_what_float32_cannot():
    net = _net({}, dtype="float64")
    out = net.predict(numpy.array([[1e39, 0.0]]))
    assert out.shape == (1, 1)
