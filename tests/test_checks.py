"""polymlp.checks: the public argument checks plugin authors use."""

import numpy
import pytest

import polymlp as pm
from polymlp import checks


def _message(func, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as info:
        func(*args, **kwargs)
    return str(info.value)


def test_adam_epsilon_message_is_about_epsilon():
    message = _message(pm.Adam, epsilon=-1)
    assert message == "`epsilon` must be a positive, finite number (greater than 0); got -1."
    assert "learning rate" not in message
    assert "Typical learning rates" in _message(pm.Adam, learning_rate=-1)


@pytest.mark.parametrize("check, good, converted", [
    (checks.positive_int, numpy.int64(3), 3), (checks.positive_float, numpy.float32(0.5), 0.5),
    (checks.non_negative_float, 0, 0.0), (checks.unit_interval, 0.0, 0.0),
    (checks.finite_float, -2, -2.0),
])
def test_checks_return_plain_python_values(check, good, converted):
    out = check("x", good)
    assert out == converted and type(out) is type(converted)


@pytest.mark.parametrize("check, bad, error, words", [
    (checks.positive_int, 0, ValueError,
     "`width` must be a positive integer (1 or more); got 0."),
    (checks.positive_int, 2.0, TypeError,
     "`width` must be a positive integer; got 2.0 of type float"),
    (checks.positive_float, 0.0, ValueError, "`width` must be a positive, finite number"),
    (checks.positive_float, float("inf"), ValueError, "got inf"),
    (checks.positive_float, True, TypeError, "got True of type bool"),
    (checks.non_negative_float, -0.5, ValueError,
     "non-negative, finite number (0 or more); got -0.5"),
    (checks.unit_interval, 1.0, ValueError, "must be in [0, 1) (0 included, 1 excluded); got 1.0"),
    (checks.finite_float, float("nan"), ValueError, "`width` must be finite; got nan"),
    (checks.finite_float, "1", TypeError, "`width` must be a real number; got '1' of type str"),
])
def test_errors_name_the_parameter_the_value_and_what_is_allowed(check, bad, error, words):
    with pytest.raises(error) as info:
        check("width", bad)
    assert words in str(info.value)


def test_boolean_choice_and_hints():
    assert checks.boolean("centered", False) is False
    assert "`centered` must be True or False; got 1 of type int" in _message(
        checks.boolean, "centered", 1)
    assert checks.choice("mode", "min", ("min", "max")) == "min"
    assert _message(checks.choice, "mode", ["min"], ("min", "max")) == (
        "`mode` must be one of ['min', 'max']; got ['min'].")
    assert _message(checks.unit_interval, "rate", 2, hint="The fraction dropped.").endswith(
        "got 2. The fraction dropped.")
    assert "0.9" in _message(checks.unit_interval, "momentum", 1.5)  # a built-in hint


def test_public_and_documented():
    assert "checks" in pm.__all__
    for name in checks.__all__:
        doc = getattr(checks, name).__doc__
        assert doc and "Returns" in doc, name
