"""Saving and loading networks: one zip file, a JSON config and ``.npz`` weights.

A model file holds ``config.json`` (format version, polymlp version, the
architecture as registered names with their configs, where each name came
from, and SHA-256 checksums), ``weights.npz`` and, when the optimizer is
included, ``optimizer.npz`` plus the training counters and the host RNG
state, so that training resumes exactly where it stopped.

Safety: nothing is ever unpickled (``numpy.load(..., allow_pickle=False)``)
and objects are rebuilt only through the registry, so a crafted file cannot
run code.  Saving is atomic: the file is written under a temporary name in
the same directory, flushed, fsynced and renamed over `path`, so a failed
save leaves any previous file untouched; a killed save's temporary file is
removed by the next save to that path (see :mod:`polymlp._atomic`).  Every
problem with a file raises :class:`polymlp.ModelFileError` with a message
that says what is wrong and how to fix it.

The file format itself (writing it, reading and verifying its parts) lives
in :mod:`polymlp._modelfile`; this module adds building a network from it.
"""

from __future__ import annotations

import logging

from ._modelfile import (CONFIG_FILE, FORMAT, FORMAT_VERSION, OPTIMIZER_FILE,  # noqa: F401
                         WEIGHTS_FILE, _check_path, _members, export, read_into, save)
from . import registry
from .errors import BackendError, ModelFileError

__all__ = ["FORMAT", "FORMAT_VERSION", "export", "load", "save"]

log = logging.getLogger("polymlp")

# --- loading ------------------------------------------------------------------------

def load(path, backend=None, device=None, dtype=None):
    """Rebuild a network saved with :meth:`Network.save`, on any backend.

    Parameters
    ----------
    path : str or os.PathLike
    backend : str or namespace, optional
        Where to load it. By default the backend it was saved from when it is
        usable here, else NumPy (with a logged warning): a model saved on CuPy
        loads on a machine without a GPU.
    device : str or device, optional
        Device on that backend (by default the saved one when loading onto the
        saved backend, else the backend's default device).
    dtype : {"float32", "float64"}, optional
        By default the saved dtype.

    Returns
    -------
    Network
        With its weights and, when the file has them, the optimizer state,
        counters and RNG state (``fit`` continues exactly).

    Raises
    ------
    ModelFileError
        The file is missing, not a polymlp model, truncated, corrupted,
        tampered with, written by a newer polymlp, or names a component
        (layer, activation, ...) whose plugin is not installed here.
    BackendError
        The requested backend, device or dtype is unavailable here.
    """
    path = _check_path(path)
    if dtype is not None:
        from . import _validate

        dtype = _validate.dtype_name(dtype)
    net, _ = read_into(None, path,
                       build=lambda config: _build(config, path, backend, device, dtype))
    return net


def _build(config, path, backend, device, dtype):
    from .network import Network

    spec = config["network"]
    try:
        input_size = spec["input_size"]
        saved_dtype = spec["dtype"]
        name, seed = spec.get("name"), spec.get("seed")
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{path!r}: the 'network' entry of {CONFIG_FILE} lacks {exc}; "
                             f"the file is corrupted.") from None
    target = _target_backend(spec, backend, device)
    try:
        net = Network(input_size, name=name, backend=target, dtype=dtype or saved_dtype,
                      seed=seed, alpha=spec.get("alpha", 0.0))
    except BackendError as exc:
        if dtype is None and saved_dtype == "float64":
            raise BackendError(f"{exc} The file holds float64 weights: load it as float32 "
                               f"with pm.load(path, dtype='float32').") from exc
        raise
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: the 'network' entry of {CONFIG_FILE} is invalid "
                             f"({exc}); the file is corrupted.") from exc
    layer_configs = config["layers"]
    try:
        for i, layer_config in enumerate(layer_configs[:-1]):
            net.stack(registry.get_layer(layer_config))
        i = len(layer_configs) - 1
        net.output(registry.get_layer(layer_configs[-1]), loss=config["loss"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path!r}: layer {i} or the loss in {CONFIG_FILE} is invalid "
                             f"({exc}); the file is corrupted or was edited.") from exc
    return net


def _target_backend(spec, backend, device):
    from ._array_api import resolve_backend

    if backend is not None:
        return resolve_backend(backend, device)
    saved, saved_device = spec.get("backend"), spec.get("device")
    if device is not None:  # a device of the saved backend was asked for: no fallback
        return resolve_backend(saved, device)
    try:
        return resolve_backend(saved, saved_device)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if saved_device is not None:
        try:
            target = resolve_backend(saved)
            log.warning("The model was saved on %s device %s, which is not available here "
                        "(%s); loading it on the default device %s.", saved, saved_device,
                        reason, target.device)
            return target
        except Exception:  # noqa: BLE001 - the backend itself is unusable: NumPy below
            pass
    log.warning("The model was saved on backend %r, which is not usable here (%s); loading "
                "it on NumPy. Pass backend=... to pm.load to choose.", saved, reason)
    return resolve_backend("numpy")


