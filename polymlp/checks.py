"""Argument checks for plugin authors (and polymlp itself).

Each check returns the value converted to a plain Python type, or raises an
error that names the parameter, the value received, what is allowed and how
to fix it, the way polymlp's own errors do::

    from polymlp import checks

    class Huber(polymlp.Loss):
        def __init__(self, delta=1.0):
            self.delta = checks.positive_float("delta", delta)

NumPy scalars are accepted wherever Python numbers are; ``bool`` is never
taken for a number.  Wrong types raise ``TypeError``, wrong values
``ValueError``.  Every check takes an optional `hint`, a sentence appended
to the ``ValueError`` (what the parameter means, typical values).
"""

from __future__ import annotations

import math
import numbers

__all__ = ["boolean", "choice", "finite_float", "non_negative_float", "positive_float",
           "positive_int", "unit_interval"]

# Hints for parameters whose usual range helps the reader (by parameter name).
_HINTS = {"learning_rate": "Typical learning rates lie between 1e-4 and 1e-1.",
          "momentum": "A common value is 0.9.",
          "beta1": "The usual value is 0.9.",
          "beta2": "The usual value is 0.999."}


def _tail(name, hint):
    hint = _HINTS.get(name) if hint is None else hint
    return f" {hint}" if hint else ""


def _real(name, value, allowed, example):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be {allowed}; got {value!r} of type "
                        f"{type(value).__name__}. Pass a float such as {name}={example}.")


def positive_int(name, value, *, hint=None):
    """An integer >= 1 (a width, a count, a number of epochs).

    Parameters
    ----------
    name : str
        The parameter's name, as the caller wrote it (used in the message).
    value : object
        What was passed.
    hint : str, optional
        A sentence appended to the ``ValueError``.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive integer; got {value!r} "
                        f"of type {type(value).__name__}. Pass an int such as {name}=10.")
    if value <= 0:
        raise ValueError(f"`{name}` must be a positive integer (1 or more); got {value!r}."
                         f"{_tail(name, hint)}")
    return int(value)


def positive_float(name, value, *, hint=None):
    """A finite number > 0 (a step size, an epsilon, a margin).

    Parameters
    ----------
    name, value, hint
        As for :func:`positive_int`. ``learning_rate`` gets a hint on its
        usual range by default.

    Returns
    -------
    float
    """
    _real(name, value, "a positive number", "0.001")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive, finite number (greater than 0); got "
                         f"{value!r}.{_tail(name, hint)}")
    return float(value)


def non_negative_float(name, value, *, hint=None):
    """A finite number >= 0 (a weight decay, a threshold that may be zero).

    Returns
    -------
    float
    """
    _real(name, value, "a non-negative number", "0.0")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative, finite number (0 or more); got "
                         f"{value!r}.{_tail(name, hint)}")
    return float(value)


def unit_interval(name, value, *, hint=None):
    """A number in [0, 1): a momentum, an Adam beta, a dropout rate.

    Returns
    -------
    float
    """
    _real(name, value, "a number in [0, 1)", "0.9")
    if not (0.0 <= value < 1.0):
        raise ValueError(f"`{name}` must be in [0, 1) (0 included, 1 excluded); got {value!r}."
                         f"{_tail(name, hint)}")
    return float(value)


def finite_float(name, value, *, hint=None):
    """Any finite real number (a slope, a constant, a shift).

    Returns
    -------
    float
    """
    _real(name, value, "a real number", "1.0")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value!r}.{_tail(name, hint)}")
    return float(value)


def boolean(name, value):
    """``True`` or ``False`` (not 0, 1 or a string).

    Returns
    -------
    bool
    """
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False; got {value!r} of type "
                        f"{type(value).__name__}.")
    return value


def choice(name, value, allowed, *, hint=None):
    """One of `allowed` (compared with ``in``; unhashable values are not allowed).

    Returns
    -------
    object
        `value` itself.
    """
    try:
        ok = value in allowed
    except TypeError:  # unhashable values (lists, dicts) are simply not allowed
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be one of {list(allowed)}; got {value!r}."
                         f"{_tail(name, hint)}")
    return value
