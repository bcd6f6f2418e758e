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
    except ValueError as exc:  # ragged nested lists, unparsable strings
        raise ValueError(f"`{name}` could not be turned into a rectangular numeric array "
                         f"({exc}). Make every row the same length and every entry a number."
                         ) from exc
    except TypeError as exc:
        raise TypeError(f"`{name}` must be a numeric array or nested list; got "
                        f"{type(x).__name__}: {exc}.") from exc
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O" and arr.ndim == 0:
            what = f"{x!r} of type {type(x).__name__}"
        elif arr.dtype.kind in "USa":
            what = f"strings (dtype {arr.dtype})"
        elif arr.dtype.kind == "O":
            what = "Python objects (dtype object: None, mixed types or ragged rows)"
        else:
            what = f"values of dtype {arr.dtype}"
        raise TypeError(f"`{name}` must be an array of real numbers; got {what}. Convert it "
                        f"first, e.g. numpy.asarray({name}, dtype=float), after encoding or "
                        f"dropping non-numeric entries.")
    return arr


def host_array(x, name):
    """`x` (an array of any library, a list or a scalar) as a checked NumPy array of numbers."""
    if not is_host_array(x) and _array_api.array_api_compat.is_array_api_obj(x):
        x = to_numpy(x)
    return _host(x, name)


def to_backend(x, backend, name="x", float_dtype=None):
    """Return `x` as an array of `backend` on its device, keeping its dtype kind.

    Host data (NumPy arrays, lists, DataFrame-like objects) is copied once,
    floats cast to `float_dtype` (a dtype name) first so that float64 input
    reaches a device without float64. An array of another library is taken
    through DLPack when it lands on the network's device (no host round
    trip); one in host memory is copied; an accelerator array that DLPack
    cannot bring over is refused (moving it silently would hide a transfer).
    """
    xp = backend.xp
    foreign = is_foreign_array(x)
    if is_host_array(x) or not (foreign or hasattr(x, "__dlpack__")):
        arr = _host(x, name)
        if float_dtype is not None and arr.dtype.kind == "f":
            with numpy.errstate(over="ignore"):  # the finiteness check reports overflow
                arr = arr.astype(float_dtype, copy=False)
        return backend.asarray(arr)
    if _same_library(x, backend):
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
        except Exception:  # noqa: BLE001 - DLPack is best effort; fall back below
            pass
    if foreign and not _array_api.is_host_memory(x):
        lib = array_backend_name(x)
        raise ValueError(
            f"`{name}` is a {lib} array on device {device_of(x)!r}, but the network uses "
            f"backend {backend.name!r} on device {backend.device!r}; polymlp does not move "
            f"accelerator data behind your back. Bring it to the host with "
            f"{_array_api.move_hint(x, name)}, or build the network on that backend and "
            f"device (backend={lib!r}, device=...).")
    arr = _host(to_numpy(x) if foreign else x, name)
    if float_dtype is not None and arr.dtype.kind == "f":
        arr = arr.astype(float_dtype, copy=False)
    return backend.asarray(arr)


def is_foreign_array(x):
    """True for an Array API array that is not a NumPy array (torch, jax, cupy, ...)."""
    return not is_host_array(x) and _array_api.array_api_compat.is_array_api_obj(x)


def _same_library(x, backend):
    if array_backend_name(x) == backend.name:
        return True
    try:
        return _array_api.array_api_compat.array_namespace(x) is backend.xp
    except TypeError:  # not an Array API array (a DataFrame, a DLPack-only capsule holder)
        return False


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
    arr = to_backend(x, backend, name, _dtype_name(backend, dtype))
    if arr.ndim != 2:
        hint = (" Reshape a single sample with x.reshape(1, -1) or a single feature with "
                "x.reshape(-1, 1).") if arr.ndim == 1 else ""
        raise ValueError(f"`{name}` must be 2-D (samples, features); got {_describe(arr)}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {tuple(arr.shape)}); pass at least one sample.")
    if arr.shape[1] != n_features:
        raise ValueError(f"`{name}` has {arr.shape[1]} features but the network expects "
                         f"{n_features} (its input_size); got shape {tuple(arr.shape)}. Pass "
                         f"arrays with {n_features} columns, or build a network with "
                         f"input_size={arr.shape[1]}.")
    if not xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {arr.dtype}. Convert it "
                        f"to a float dtype first.")
    arr = xp.astype(arr, dtype) if arr.dtype != dtype else arr
    if not bool(xp.all(xp.isfinite(arr))):
        _raise_overflow(x, name, _dtype_name(backend, dtype))
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
    arr = to_backend(y, backend, name, _dtype_name(backend, dtype))
    if arr.ndim not in (1, 2):
        raise ValueError(f"`{name}` must be 1-D labels (n,) or 2-D targets (n, k); got "
                         f"{_describe(arr)}. Reshape it, e.g. {name}.reshape(len({name}), -1).")
    if arr.shape[0] != n_samples:
        raise ValueError(f"`{name}` has {arr.shape[0]} rows but x has {n_samples}; "
                         f"x and {name} must have one row per sample.")
    if not xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {arr.dtype}. Convert it "
                        f"to integer labels or float targets first.")
    floats = xp.astype(arr, dtype)
    if not bool(xp.all(xp.isfinite(floats))):
        _raise_overflow(y, name, _dtype_name(backend, dtype))
        raise ValueError(f"`{name}` contains NaN or infinite values; remove those samples "
                         f"or fill in the missing targets first.")
    if arr.ndim == 1 and classification and n_outputs > 1:
        labels = floats
        if not bool(xp.all(labels == xp.round(labels))):
            host = to_numpy(labels)  # the error path only: a host copy is fine here
            bad = host[host != numpy.round(host)]
            raise ValueError(
                f"Class labels `{name}` must be integers 0..{n_outputs - 1}; got non-integral "
                f"values such as {float(bad[0]):g}. For regression targets use loss='mse' or "
                f"'mae' with an output layer of identity activation.")
        lo, hi = float(xp.min(labels)), float(xp.max(labels))
        if lo < 0 or hi >= n_outputs:
            raise ValueError(
                f"Class labels `{name}` must be in [0, {n_outputs - 1}] for an output layer "
                f"of {n_outputs} units; got labels from {lo:g} to {hi:g}. Encode the classes "
                f"as 0..k-1, or give the output layer as many units as there are classes.")
        classes = xp.arange(n_outputs, dtype=dtype, device=backend.device)
        return xp.astype(labels[:, None] == classes, dtype)
    if arr.ndim == 1:
        if n_outputs != 1:
            raise ValueError(f"`{name}` is 1-D but the output layer has {n_outputs} units; "
                             f"pass targets of shape (n, {n_outputs}).")
        floats = xp.reshape(floats, (-1, 1))
    if floats.shape[1] != n_outputs:
        if classification and floats.shape[1] == 1:
            fix = f"Pass integer labels as a 1-D array: {name}.ravel()."
        elif classification:
            fix = (f"Pass one-hot rows of width {n_outputs}, or integer labels of shape (n,); "
                   f"or give the output layer {floats.shape[1]} units.")
        else:
            fix = f"Give the output layer {floats.shape[1]} units, or select the target columns."
        raise ValueError(f"`{name}` has {floats.shape[1]} columns (shape {tuple(arr.shape)}) "
                         f"but the output layer has {n_outputs} units. {fix}")
    if classification:
        lo, hi = float(xp.min(floats)), float(xp.max(floats))
        if lo < 0 or hi > 1:
            raise ValueError(
                f"`{name}` holds values from {lo:g} to {hi:g}, but a classification loss needs "
                f"one-hot rows or probabilities in [0, 1] (or integer labels of shape (n,)). "
                f"For regression targets use loss='mse' or 'mae'.")
    return floats


def _raise_overflow(given, name, dtype_name):
    """Raise if `given` is all finite but too large for `dtype_name` (the error path only)."""
    try:
        values = to_numpy(given)  # a host copy is fine here: we are about to raise
        values = numpy.asarray(values, dtype=numpy.float64 if values.dtype.kind in "biu"
                               else values.dtype)
    except Exception:  # noqa: BLE001 - cannot look closer: report NaN/inf as usual
        return
    if dtype_name is None or values.dtype.kind != "f" or not numpy.all(numpy.isfinite(values)):
        return
    largest = float(numpy.max(numpy.abs(values)))
    limit = float(numpy.finfo(dtype_name).max)
    raise ValueError(f"`{name}` overflows {dtype_name}: it holds finite values up to "
                     f"{largest:.4g} in magnitude, but {dtype_name} holds at most {limit:.4g}. "
                     f"Rescale the data (standardise it, say), or use dtype='float64'.")


def _dtype_name(backend, dtype):
    for name in ("float32", "float64"):
        if dtype == getattr(backend.xp, name, None):
            return name
    return None


def host_rng(seed):
    """The network's random generator: all randomness is drawn on the host."""
    return numpy.random.default_rng(seed)


def flat_host(arrays, dtype_name):
    """Concatenate host arrays into one flat NumPy vector of `dtype_name`."""
    if not arrays:
        return numpy.zeros(0, dtype=dtype_name)
    return numpy.concatenate([numpy.asarray(a, dtype=numpy.float64).ravel() for a in arrays]
                             ).astype(dtype_name)
