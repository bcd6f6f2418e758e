"""Argument checks shared by the public API: each error names the parameter,
the value received, what is allowed and how to fix it."""

import math
import numbers


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive integer; got {value!r} "
                        f"of type {type(value).__name__}.")
    if value <= 0:
        raise ValueError(f"`{name}` must be a positive integer; got {value!r}.")
    return int(value)


def positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a positive number; got {value!r} "
                        f"of type {type(value).__name__}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive, finite number; got {value!r}.")
    return float(value)


def unit_interval(name, value):
    """A float in [0, 1), as momentum and the Adam betas must be."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in [0, 1); got {value!r} "
                        f"of type {type(value).__name__}.")
    if not (0.0 <= value < 1.0):
        raise ValueError(f"`{name}` must be in [0, 1); got {value!r}.")
    return float(value)


def choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}; got {value!r}.")
    return value
