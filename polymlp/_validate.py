"""Argument checks shared by the public API: each error names the parameter,
the value received, what is allowed and how to fix it.

The general checks live in the public :mod:`polymlp.checks` (plugin authors
use them too); the ones below are about polymlp's own arguments.
"""

import math
import numbers

import numpy

from .checks import (boolean, choice, finite_float, non_negative_float,  # noqa: F401
                     positive_float, positive_int, unit_interval)


def seed(value):
    """``None`` or a non-negative integer (NumPy integers accepted)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`seed` must be a non-negative int or None; got {value!r} of type "
                        f"{type(value).__name__}.")
    if value < 0:
        raise ValueError(f"`seed` must be a non-negative int or None; got {value!r}.")
    return int(value)


def verbose(value):
    """0, 1 or 2 (``True``/``False`` read as 1/0)."""
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, numbers.Integral):
        raise TypeError(f"`verbose` must be 0, 1 or 2; got {value!r} of type "
                        f"{type(value).__name__}.")
    if value not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0 (silent), 1 (progress bar) or 2 (one line "
                         f"per epoch); got {value!r}.")
    return int(value)


def dtype_name(value):
    """``"float32"`` or ``"float64"`` from a name or a dtype object of any library."""
    if isinstance(value, str):
        name = value
    else:
        # numpy.float32, numpy.dtype("float32"), torch.float32, jnp.float32, xp.float64...
        name = getattr(value, "__name__", None) or getattr(value, "name", None) or str(value)
        name = str(name).rsplit(".", 1)[-1]
        if name not in ("float32", "float64"):
            raise TypeError(f"`dtype` must be 'float32' or 'float64' (a name or a float dtype); "
                            f"got {value!r} of type {type(value).__name__}.")
    if name not in ("float32", "float64"):
        raise ValueError(f"`dtype` must be 'float32' or 'float64'; got {value!r}.")
    return name


def alpha(value):
    """`alpha` (the L2 penalty strength): a finite number >= 0, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, numpy.number)):
        raise TypeError(f"`alpha` must be a number >= 0 (the L2 penalty); got {value!r} of "
                        f"type {type(value).__name__}. Pass e.g. alpha=1e-4, or 0 for none.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`alpha` must be a finite number >= 0 (the L2 penalty); got "
                         f"{value!r}. Pass e.g. alpha=1e-4, or 0 for none.")
    return float(value)
