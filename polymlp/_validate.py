"""Argument checks shared by the public API: each error names the parameter,
the value received, what is allowed and how to fix it."""

import math
import numbers


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive integer; got {value!r} "
                        f"of type {type(value).__name__}. Pass an int such as {name}=10.")
    if value <= 0:
        raise ValueError(f"`{name}` must be a positive integer (1 or more); got {value!r}.")
    return int(value)


def positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a positive number; got {value!r} "
                        f"of type {type(value).__name__}. Pass a float such as {name}=0.001.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive, finite number; got {value!r}. "
                         f"Typical learning rates lie between 1e-4 and 1e-1.")
    return float(value)


def unit_interval(name, value):
    """A float in [0, 1), as momentum and the Adam betas must be."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in [0, 1); got {value!r} "
                        f"of type {type(value).__name__}.")
    if not (0.0 <= value < 1.0):
        raise ValueError(f"`{name}` must be in [0, 1) (0 included, 1 excluded); got {value!r}. "
                         f"Common values are 0.9 and 0.999.")
    return float(value)


def finite_float(name, value):
    """Any finite real number (a slope, a constant)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {value!r} "
                        f"of type {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    return float(value)


def choice(name, value, allowed):
    try:
        ok = value in allowed
    except TypeError:  # unhashable values (lists, dicts) are simply not allowed
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be one of {list(allowed)}; got {value!r}.")
    return value


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
