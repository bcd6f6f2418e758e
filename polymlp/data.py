"""Turning user inputs into checked arrays on the network's backend (the edge).

Host inputs (NumPy arrays, lists) are checked with NumPy and moved once;
arrays already on the network's backend are checked through ``xp`` with a
few reductions; arrays of another library are moved by DLPack when
possible.  Every error names the parameter, what was received, what is
allowed and how to fix it.
"""

from __future__ import annotations

import numpy

from . import _array_api
from ._array_api import array_backend_name, device_of, is_host_array, same_device, to_numpy


def _describe(arr):
    return f"shape {tuple(arr.shape)} and dtype {arr.dtype}"


def _host(x, name):
    try:
        arr = numpy.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"`{name}` must be a numeric array or nested list; could not convert "
                        f"it to an array: {exc}.") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold numbers; got an array of dtype {arr.dtype} "
                        f"({arr.dtype.kind!r}). Convert it with numpy.asarray(..., dtype=float).")
    return arr


def to_backend(x, backend, name="x"):
    """Return `x` as an array of `backend` on its device, keeping its dtype kind.

    Host data is copied once; an array of another library is moved through
    DLPack when the target supports it, else through the host.
    """
    xp = backend.xp
    if is_host_array(x):
        return backend.asarray(_host(x, name))
    lib = array_backend_name(x)
    if lib == backend.name or _array_api.array_api_compat.array_namespace(x) is xp:
        if not same_device(device_of(x), backend.device):
            raise ValueError(
                f"`{name}` is on device {device_of(x)!r} but the network lives on "
                f"{backend.device!r}. Move it first, e.g. xp.asarray({name}, "
                f"device=...), or build the network with device={str(device_of(x))!r}.")
        return x
    if hasattr(xp, "from_dlpack") and hasattr(x, "__dlpack__"):
        try:
            moved = xp.from_dlpack(x)
            if same_device(device_of(moved), backend.device):
                return moved
        except Exception:  # noqa: BLE001 - DLPack is best effort; fall back to the host
            pass
    return backend.asarray(to_numpy(x))


def _host_first(x, backend, dtype):
    """The NumPy backend and dtype to check host data `x` with before one move to `backend`.

    ``None`` when `x` is not host data or `backend` is NumPy itself. Checking on
    the host spares a device round trip per check (and, on JAX, a compilation).
    """
    if not is_host_array(x) or backend.xp is numpy:
        return None
    for name in ("float32", "float64"):
        if getattr(backend.xp, name, None) == dtype:
            host = _array_api.resolve_backend("numpy")
            return host, host.dtype(name)
    return None


def check_inputs(x, backend, dtype, n_features, name="x"):
    """Validate features `x` and return them on `backend` as `dtype`, shape ``(n, n_features)``."""
    host = _host_first(x, backend, dtype)
    if host is not None:
        return backend.asarray(check_inputs(x, *host, n_features, name))
    xp = backend.xp
    arr = to_backend(x, backend, name)
    if arr.ndim != 2:
        hint = (" Reshape a single sample with x.reshape(1, -1) or a single feature with "
                "x.reshape(-1, 1).") if arr.ndim == 1 else ""
        raise ValueError(f"`{name}` must be 2-D (samples, features); got {_describe(arr)}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {tuple(arr.shape)}); pass at least one sample.")
    if arr.shape[1] != n_features:
        raise ValueError(f"`{name}` has {arr.shape[1]} features but the network expects "
                         f"{n_features} (its input_size).")
    if not xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {arr.dtype}.")
    arr = xp.astype(arr, dtype) if arr.dtype != dtype else arr
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or infinite values; remove or impute them first.")
    return arr


def check_targets(y, backend, dtype, n_samples, n_outputs, classification, name="y"):
    """Validate targets and return them on `backend` as a float `dtype` array ``(n, n_outputs)``.

    Classification accepts integer labels ``(n,)`` (one-hot encoded here) or
    one-hot rows ``(n, n_outputs)``; regression accepts ``(n, n_outputs)``
    floats, or ``(n,)`` for a single output.
    """
    host = _host_first(y, backend, dtype)
    if host is not None:
        return backend.asarray(check_targets(y, *host, n_samples, n_outputs, classification,
                                             name))
    xp = backend.xp
    arr = to_backend(y, backend, name)
    if arr.ndim not in (1, 2):
        raise ValueError(f"`{name}` must be 1-D labels or 2-D targets; got {_describe(arr)}.")
    if arr.shape[0] != n_samples:
        raise ValueError(f"`{name}` has {arr.shape[0]} rows but x has {n_samples}; "
                         f"x and {name} must have one row per sample.")
    if not xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {arr.dtype}.")
    floats = xp.astype(arr, dtype)
    if not bool(xp.all(xp.isfinite(floats))):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    if arr.ndim == 1 and classification and n_outputs > 1:
        labels = floats
        if not bool(xp.all(labels == xp.round(labels))):
            raise ValueError(f"Class labels `{name}` must be integers; got non-integral values.")
        lo, hi = float(xp.min(labels)), float(xp.max(labels))
        if lo < 0 or hi >= n_outputs:
            raise ValueError(
                f"Class labels `{name}` must be in [0, {n_outputs - 1}] for an output layer "
                f"of {n_outputs} units; got labels from {lo:g} to {hi:g}.")
        classes = xp.arange(n_outputs, dtype=dtype, device=backend.device)
        return xp.astype(labels[:, None] == classes, dtype)
    if arr.ndim == 1:
        if n_outputs != 1:
            raise ValueError(f"`{name}` is 1-D but the output layer has {n_outputs} units; "
                             f"pass targets of shape (n, {n_outputs}).")
        floats = xp.reshape(floats, (-1, 1))
    if floats.shape[1] != n_outputs:
        raise ValueError(f"`{name}` has {floats.shape[1]} columns but the output layer has "
                         f"{n_outputs} units.")
    if classification:
        lo, hi = float(xp.min(floats)), float(xp.max(floats))
        if lo < 0 or hi > 1:
            raise ValueError(
                f"`{name}` holds values from {lo:g} to {hi:g}, but a classification loss needs "
                f"one-hot rows or probabilities in [0, 1] (or integer labels of shape (n,)). "
                f"For regression targets use loss='mse' or 'mae'.")
    return floats


def host_rng(seed):
    """The network's random generator: all randomness is drawn on the host."""
    return numpy.random.default_rng(seed)


def flat_host(arrays, dtype_name):
    """Concatenate host arrays into one flat NumPy vector of `dtype_name`."""
    if not arrays:
        return numpy.zeros(0, dtype=dtype_name)
    return numpy.concatenate([numpy.asarray(a, dtype=numpy.float64).ravel() for a in arrays]
                             ).astype(dtype_name)
