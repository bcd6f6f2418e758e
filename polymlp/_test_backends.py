"""The test backends (implementation of :mod:`polymlp.testing`'s helpers).

Kept apart from :mod:`polymlp.testing` so that the conformance kit, which
:mod:`polymlp.testing` re-exports, can use them without an import cycle.
"""

from __future__ import annotations

import importlib.util
import os
import types

import numpy

ALL_TEST_BACKENDS = ("numpy", "numpy_readonly", "array_api_strict", "torch", "jax", "cupy")


def _readonly(obj):
    if isinstance(obj, numpy.ndarray):
        obj = obj.view()
        obj.flags.writeable = False
    return obj


class _ReadOnlyNumPy(types.ModuleType):
    """The NumPy namespace, except that every array it returns is read-only."""

    def __init__(self):
        super().__init__("numpy_readonly")
        self.__array_api_version__ = numpy.__array_api_version__

    def __getattr__(self, name):
        attr = getattr(numpy, name)
        if callable(attr) and not isinstance(attr, type) and name != "__array_namespace_info__":
            def wrapped(*args, **kwargs):
                out = attr(*args, **kwargs)
                if isinstance(out, tuple):
                    return tuple(_readonly(o) for o in out)
                return _readonly(out)
            wrapped.__name__ = name
            return wrapped
        return attr


numpy_readonly = _ReadOnlyNumPy()


def _cuda_available():
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any CUDA failure means "no GPU here"
        return False


def available(name):
    """Whether backend `name` can run here (installed, and a GPU for cupy)."""
    if name in ("numpy", "numpy_readonly"):
        return True
    if name == "cupy":
        return _cuda_available()
    return importlib.util.find_spec(name) is not None


def selected_backends():
    """Backend names to test: ``POLYMLP_TEST_BACKENDS`` or every available one."""
    env = os.environ.get("POLYMLP_TEST_BACKENDS", "").strip()
    names = [n.strip() for n in env.split(",") if n.strip()] if env else list(ALL_TEST_BACKENDS)
    return [n for n in names if n in ALL_TEST_BACKENDS]


def network_kwargs(name, *, enable_x64=True):
    """``backend=`` and ``device=`` for :class:`polymlp.Network` on test backend `name`.

    On JAX, `enable_x64` (the default) switches ``jax_enable_x64`` on **for the
    whole process**: JAX offers float64 only then, and polymlp's own test suite
    compares float64 results on every backend. Pass ``enable_x64=False`` to
    leave JAX's configuration alone. The conformance kit does, and turns x64 on
    only for the duration of each check (``jax.enable_x64``), restoring it after.
    """
    if name == "numpy_readonly":
        return {"backend": numpy_readonly}
    if name == "array_api_strict":
        return {"backend": "array_api_strict", "device": "device1"}
    if name == "jax" and enable_x64:
        import jax

        jax.config.update("jax_enable_x64", True)
    return {"backend": name}


def atol_for(dtype_name):
    """Absolute tolerance scaled to the dtype (as scikit-learn's ``_atol_for_type``)."""
    return float(numpy.finfo(dtype_name).eps) * 100
