"""The backend hub: the one module that knows array libraries by name.

Everything else in polymlp receives an Array API namespace ``xp`` (and a
device) resolved here once, at the edge, and only calls ``xp.*``.  The few
places that must name a library (conversion to NumPy, parsing a device
string, an install hint) live in this module, each with a comment.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import dataclass, field

import numpy

import array_api_compat

from ._install import install_hint
from .errors import BackendError

#: Backends polymlp knows by name: ``name -> (module to import, extra, how it is reached)``.
KNOWN_BACKENDS = {
    "numpy": ("numpy", None),
    "array_api_strict": ("array_api_strict", "strict"),
    "torch": ("torch", "torch"),
    "jax": ("jax", "jax"),
    "cupy": ("cupy", "cupy"),
}

@dataclass
class _PluginBackends:
    """How to find array libraries registered as plugins: set by :mod:`polymlp.registry`
    when it is imported (``import polymlp`` does), so that this hub, which everything
    imports, does not import the registry (and through it every kind's module)."""

    load: object = None  # name -> namespace or None
    names: object = None  # () -> list of names


PLUGIN_BACKENDS = _PluginBackends()

_ALIASES = {"np": "numpy", "strict": "array_api_strict", "array-api-strict": "array_api_strict",
            "pytorch": "torch", "jax.numpy": "jax", "cp": "cupy"}


# Training steps of at most this many floating-point operations (about 6 per
# parameter per row) run as compiled chunks on a CPU device; larger ones step by
# step (see Backend.chunks_pay).
CPU_CHUNK_FLOPS = 5e7


@dataclass(frozen=True)
class Backend:
    """A resolved backend: namespace, device and a few facts about them.

    Attributes
    ----------
    name : str
        Short name (``"numpy"``, ``"torch"``, ...) or the namespace's module name.
    xp : module
        The Array API namespace every computation goes through.
    device : object
        The device arrays are created on (the library's own device object).
    writable : bool
        Whether arrays can be written in place and the namespace takes ``out=``
        (NumPy, PyTorch; false for JAX): the engine then runs the training
        step in place, with the components' in-place kernels (an optimisation
        only; see :mod:`polymlp._engine`).
    """

    name: str
    xp: object
    device: object
    writable: bool = field(default=False, compare=False)

    def float_dtypes(self):
        """Names of the real floating dtypes this backend offers on `device`."""
        return _float_dtype_names(self.xp, self.device)

    def dtype(self, name):
        """The namespace's dtype object for `name`, checked against the device."""
        if name not in ("float32", "float64"):
            raise ValueError(f"`dtype` must be 'float32' or 'float64'; got {name!r}.")
        available = self.float_dtypes()
        if name not in available:
            raise BackendError(
                f"`dtype={name!r}` is not available on backend {self.name!r} device "
                f"{self.device!r} (it offers {sorted(available)}). {_float64_hint(self)}"
            )
        return getattr(self.xp, name)

    def asarray(self, x, dtype=None):
        """Move `x` (NumPy array, list, or array of this backend) onto this backend."""
        return self.xp.asarray(x, dtype=dtype, device=self.device)

    def reductions(self):
        """``(sum, max)`` taking ``(x, axis=, keepdims=)`` (``sum`` also ``out=``).

        The namespace's own functions, except on NumPy: there the ufunc
        reductions that ``numpy.sum``/``numpy.max`` call (same results) skip
        about a microsecond of argument handling per call, which matters for
        small layers in the training loop.
        """
        if self.xp is numpy:
            return numpy.add.reduce, numpy.maximum.reduce
        return self.xp.sum, self.xp.max

    @property
    def compiles(self):
        """Whether :meth:`jit` really compiles (JAX): then small eager operations are
        costly dispatches, and compiled functions want arrays, not Python scalars."""
        return self.name == "jax"

    def jit(self, fn, donate=()):
        """`fn` compiled by the backend's tracing compiler (``jax.jit``), else `fn` itself.

        `fn` must be a pure function of pytrees of arrays and Python scalars. It is
        compiled once per input signature: shapes, dtypes, and whether an argument
        is a Python scalar or an array (so pass a step counter as an array throughout).
        The arguments at the positions in `donate` are given to the compiled call
        to update in place, where the device supports it (JAX does not on CPU).
        """
        if not self.compiles:
            return fn
        import jax  # the one library with a whole-function compiler we use

        if donate and getattr(self.device, "platform", "cpu") != "cpu":
            return jax.jit(fn, donate_argnums=tuple(donate))
        return jax.jit(fn)

    def chunks_pay(self, flops_per_step):
        """Whether many training steps in one compiled call beat one call per step.

        A chunk saves the per-call dispatch (tens of microseconds), which is most of
        a small net's step. On the CPU, XLA runs large matrix products inside a
        compiled loop slower than as separate calls (measured: 784-1024-1024-10 at
        batch 256 trains 3x slower in ``lax.scan`` chunks), so there chunks are
        used only for steps of at most :data:`CPU_CHUNK_FLOPS`.
        """
        if not self.compiles:
            return False
        if getattr(self.device, "platform", "cpu") != "cpu":
            return True
        return flops_per_step <= CPU_CHUNK_FLOPS

    def rows_at(self, x, start, size):
        """Rows ``start:start + size`` of `x` for a traced `start` (inside :meth:`jit`):
        one contiguous slice on JAX (``lax.dynamic_slice``), a gather elsewhere."""
        if not self.compiles:
            return self.xp.take(x, start + self.xp.arange(size), axis=0)
        import jax

        return jax.lax.dynamic_slice_in_dim(x, start, size, axis=0)

    def scan(self, body, carry, xs):
        """``lax.scan``: `body(carry, x) -> (carry, y)` over the leading axis of `xs`,
        traced once (only inside a function compiled by :meth:`jit`, where it compiles)."""
        import jax

        return jax.lax.scan(body, carry, xs)

    def __repr__(self):
        return f"Backend({self.name!r}, device={self.device!r})"

    def __reduce__(self):
        # Pickled as (name, device) and resolved again on loading: namespaces are
        # modules, which do not pickle. scikit-learn clones, caches and ships
        # estimators (and the networks inside them) to workers this way.
        return (resolve_backend, (self.name, _device_token(self.name, self.device)))


def enable_compilation_cache(directory=None):
    """Keep compiled training code on disk, so that later processes skip compiling it.

    Applies to the backends that compile (JAX): the first ``fit`` of a network
    shape compiles its training chunk once per machine instead of once per
    process. `directory` defaults to ``$POLYMLP_COMPILATION_CACHE`` or
    ``~/.cache/polymlp/jax``. Call it before the first ``fit``; it imports JAX.
    Returns the directory.
    """
    import os

    directory = os.fspath(directory or os.environ.get("POLYMLP_COMPILATION_CACHE")
                          or os.path.join(os.path.expanduser("~"), ".cache", "polymlp", "jax"))
    os.makedirs(directory, exist_ok=True)
    import jax

    jax.config.update("jax_compilation_cache_dir", directory)
    # Small training chunks compile in well under the default 1 s threshold: keep them too.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


def _device_token(name, device):
    # JAX device objects do not pickle; "cpu:0" / "gpu:1" resolve back to them.
    if name == "jax":
        return f"{device.platform}:{device.id}"
    return device


def _float_dtype_names(xp, device):
    info = xp.__array_namespace_info__()
    try:
        dtypes = info.dtypes(kind="real floating", device=device)
    except TypeError:  # older namespaces without the device argument
        dtypes = info.dtypes(kind="real floating")
    return set(dtypes)


def _float64_hint(backend):
    # The only library-specific hints: how to get float64 where it is off.
    if backend.name == "jax":
        return ("JAX disables float64 by default: set the environment variable "
                "JAX_ENABLE_X64=1 before importing jax, or call "
                "jax.config.update('jax_enable_x64', True) first.")
    return "Use dtype='float32', or another device or backend."


def normalize_backend_name(name):
    """Canonical backend name for `name` (aliases such as ``"pytorch"`` accepted)."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def _namespace_for(name):
    """Import the library behind `name` and return its Array API namespace."""
    if name == "numpy":
        # NumPy >= 2.1 is itself an Array API namespace; calling it directly
        # avoids the compat wrappers' per-call overhead, which dominates small nets.
        if numpy.lib.NumpyVersion(numpy.__version__) >= "2.1.0":
            return numpy
        return array_api_compat.array_namespace(numpy.empty(0))
    if name == "jax":
        import jax.numpy as jnp  # jax.numpy is the namespace since JAX 0.4.32
        return jnp
    module = importlib.import_module(name)
    if hasattr(module, "__array_api_version__") and name != "cupy":
        return module  # array_api_strict and other native namespaces
    return array_api_compat.array_namespace(module.asarray([0.0]))


def _install_hint(name):
    extra = KNOWN_BACKENDS.get(name, (None, None))[1]
    if extra:
        return install_hint(extra)
    return f"pip install {name}"


def resolve_backend(backend="numpy", device=None):
    """Resolve a backend name, namespace or array into a :class:`Backend`.

    Parameters
    ----------
    backend : str or module or Backend
        A known name (``"numpy"``, ``"array_api_strict"``, ``"torch"``,
        ``"jax"``, ``"cupy"``), a name registered by a plugin under the
        ``polymlp.backends`` or ``array_api`` entry-point groups, or an Array
        API namespace module.
    device : str or device object, optional
        Device name (``"cpu"``, ``"cuda:0"``, ``"device1"``) or the library's
        device object; ``None`` means the namespace's default device.
    """
    if isinstance(backend, Backend):
        if device is None:
            return backend
        backend = backend.xp
    if isinstance(backend, str):
        name = normalize_backend_name(backend)
        xp = _load_namespace(name, backend)
    elif hasattr(backend, "__array_namespace_info__") or hasattr(backend, "asarray"):
        xp = backend
        name = getattr(xp, "__name__", type(xp).__name__)
        name = {"jax.numpy": "jax", "array_api_compat.numpy": "numpy",
                "array_api_compat.torch": "torch", "array_api_compat.cupy": "cupy"}.get(name, name)
    else:
        raise TypeError(
            f"`backend` must be a backend name or an Array API namespace module; got "
            f"{backend!r} of type {type(backend).__name__}. Known names: "
            f"{', '.join(KNOWN_BACKENDS)}."
        )
    try:
        dev = _resolve_device(name, xp, device)
    except BackendError:
        raise
    except Exception as exc:  # the library fails to list or open its devices (no driver...)
        raise BackendError(_unusable(name, backend, exc)) from exc
    failure = _device_failure(xp, dev)
    if failure is not None:
        if device is None:  # the library's own default device does not work at all
            raise BackendError(_unusable(name, backend, failure)) from failure
        usable = [str(d) for d in _listed_devices(xp) if _device_failure(xp, d) is None]
        raise BackendError(
            f"`device={device!r}` of backend {name!r} cannot train: creating an array there "
            f"and reading a value back fails ({type(failure).__name__}: "
            f"{_first_line(failure)}). Devices that can: {', '.join(usable) or 'none'}; "
            f"`polymlp backends` lists them.") from failure
    return Backend(name=name, xp=xp, device=dev, writable=_writable(name, xp))


# What it means when a library imports but cannot compute: library-specific words only.
_UNUSABLE = {"cupy": "CuPy is installed but no CUDA device or driver is usable here"}


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unusable(name, given, exc):
    what = _UNUSABLE.get(name, f"backend {name!r} is installed but cannot compute here")
    return (f"`backend={given!r}`: {what} ({type(exc).__name__}: {_first_line(exc)}). Use "
            f"backend='numpy', or one of the backends `polymlp backends` lists as usable.")


def _listed_devices(xp):
    with warnings.catch_warnings():  # torch warns while probing its device types
        warnings.simplefilter("ignore")
        return [d for d in xp.__array_namespace_info__().devices() if d is not None]


_PROBED = {}  # (namespace id, name, device) -> True: devices known to train


def _device_failure(xp, device):
    """None if `device` can train (make an array, reduce it, read it back), else the error.

    Some listed devices cannot: torch's ``meta`` device holds shapes without data.
    A success is remembered per namespace and device; a failure is asked again
    next time (it is the rare path, and its cause may go away).
    """
    key = (id(xp), getattr(xp, "__name__", ""), str(device))
    if key in _PROBED:
        return None
    try:
        x = xp.asarray([1.0, 2.0], device=device)
        if float(to_numpy(xp.sum(x))) != 3.0:
            return ValueError("1 + 2 did not give 3 there")
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot train there"
        return exc
    _PROBED[key] = True
    return None


def _load_namespace(name, given):
    if name in KNOWN_BACKENDS:
        try:
            return _namespace_for(name)
        except ImportError as exc:
            raise BackendError(
                f"`backend={given!r}` is not installed here ({exc}). Install it with "
                f"{_install_hint(name)}, or pick one of the usable backends listed by "
                f"`polymlp backends`."
            ) from exc
        except Exception as exc:  # installed, but cannot start here (CuPy without a driver)
            raise BackendError(_unusable(name, given, exc)) from exc
    xp = PLUGIN_BACKENDS.load(name) if PLUGIN_BACKENDS.load is not None else None
    if xp is not None:
        return xp
    import difflib

    close = difflib.get_close_matches(name, list(KNOWN_BACKENDS) + list(_ALIASES), n=1)
    hint = f" Did you mean {_ALIASES.get(close[0], close[0])!r}?" if close else ""
    raise BackendError(
        f"Unknown `backend={given!r}`.{hint} Known: {', '.join(KNOWN_BACKENDS)}, plus any "
        f"namespace registered under the 'polymlp.backends' or 'array_api' entry-point "
        f"groups; you may also pass an Array API namespace module itself."
    )


def _writable(name, xp):
    # NumPy and PyTorch arrays we own may be written in place, and their namespaces
    # take the `out=` arguments the in-place kernels use (PyTorch through array-api-compat).
    # JAX arrays are immutable; CuPy keeps the functional path (untested in place).
    return xp is numpy or name in ("numpy", "torch")


def _resolve_device(name, xp, device):
    info = xp.__array_namespace_info__()
    # JAX lists None ("whatever is current") among its devices and as its default:
    # pin a real device so that every array of the network agrees.
    if device is None and info.default_device() is not None:
        return info.default_device()
    devices = [d for d in info.devices() if d is not None]
    if device is None:
        return devices[0]
    if any(device is d for d in devices):
        return device
    text = str(device)
    for d in devices:
        # Devices print differently per library: "cpu", "cuda:0", "Device('device1')".
        if text in (str(d), repr(d), getattr(d, "name", None)) or f"'{text}'" in repr(d):
            return d
    # Library-specific device strings that `devices()` lists under another spelling.
    if name == "torch":
        import torch

        try:
            dev = torch.device(text)
        except RuntimeError as exc:
            raise BackendError(f"`device={device!r}` is not a torch device: {exc}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"`device={device!r}`: torch sees no CUDA device here. Use 'cpu'.")
        return dev
    if name == "cupy":
        import cupy

        index = int(text.split(":")[-1]) if any(c.isdigit() for c in text) else 0
        return cupy.cuda.Device(index)
    if name == "array_api_strict":  # its devices print as "array_api_strict.Device('device1')"
        for d in devices:
            if str(d) == f"{type(d).__module__.split('.')[0]}.Device({text!r})":
                return d
    if name == "jax":
        for i, d in enumerate(devices):
            if text in (f"{d.platform}:{d.id}", d.platform, str(i)):
                return d
    raise BackendError(
        f"`device={device!r}` is not a device of backend {name!r}. Available: "
        f"{', '.join(str(d) for d in devices)}."
    )


def to_numpy(x, dtype=None):
    """Return `x` (an array of any supported library, or a list) as a NumPy array.

    The only function that branches on the array's library: the conversion at
    the edges (results, saving, logging, tests).
    """
    if isinstance(x, numpy.ndarray):
        out = x
    elif array_api_compat.is_torch_array(x):
        out = x.detach().cpu().numpy()
    elif array_api_compat.is_cupy_array(x):
        out = x.get()
    elif array_api_compat.is_jax_array(x):
        out = numpy.asarray(x)
    elif _is_strict_array(x):
        # array-api-strict refuses implicit conversion off its CPU device.
        xp = array_api_compat.array_namespace(x)
        out = numpy.asarray(x.to_device(xp.Device("CPU_DEVICE")))
    else:
        out = numpy.asarray(x)
    if dtype is not None:
        out = out.astype(dtype, copy=False)
    return out


def _is_strict_array(x):
    # array_api_strict does not export its Array class; look it up without importing.
    mod = sys.modules.get("array_api_strict._array_object")
    return mod is not None and isinstance(x, mod.Array)


def is_host_array(x):
    """True for inputs that live on the host: NumPy arrays, lists, tuples, scalars."""
    return isinstance(x, (numpy.ndarray, list, tuple, int, float, numpy.generic))


def array_backend_name(x):
    """Short library name of an array (for error messages)."""
    for name, check in (("torch", array_api_compat.is_torch_array),
                        ("cupy", array_api_compat.is_cupy_array),
                        ("jax", array_api_compat.is_jax_array),
                        ("numpy", array_api_compat.is_numpy_array)):
        if check(x):
            return name
    if _is_strict_array(x):
        return "array_api_strict"
    return type(x).__module__.split(".")[0]


def is_host_memory(x):
    """Whether array `x` lives in host memory, so copying it to any backend is cheap and safe."""
    if is_host_array(x):
        return True
    if array_api_compat.is_torch_array(x):
        return x.device.type == "cpu"
    if array_api_compat.is_cupy_array(x):
        return False
    if array_api_compat.is_jax_array(x):
        return all(d.platform == "cpu" for d in x.devices())
    if _is_strict_array(x):
        return True  # array-api-strict emulates all its devices on the CPU
    return "cpu" in str(device_of(x)).lower()


def move_hint(x, name="x"):
    """How to bring array `x` to the host, in its own library's words (for error messages)."""
    if array_api_compat.is_torch_array(x):
        return f"{name}.cpu()"
    if array_api_compat.is_cupy_array(x):
        return f"{name}.get() (or cupy.asnumpy({name}))"
    if array_api_compat.is_jax_array(x):
        return f"jax.device_get({name})"
    return f"numpy.asarray({name})"


def device_of(x):
    """The device of array `x` (works for every supported library)."""
    return array_api_compat.device(x)


def same_device(a, b):
    """Whether two device objects denote the same device."""
    return a == b or str(a) == str(b)


def describe_backends():
    """One row per known backend: usable or not, its devices, and why not.

    Returns a list of dicts with keys ``name``, ``usable``, ``devices``, ``why``.
    Importing a backend happens here only, never at ``import polymlp``.
    """
    rows = []
    plugins = PLUGIN_BACKENDS.names() if PLUGIN_BACKENDS.names is not None else []
    for name in list(KNOWN_BACKENDS) + [n for n in plugins if n not in KNOWN_BACKENDS]:
        row = {"name": name, "usable": False, "devices": [], "why": ""}
        try:
            backend = resolve_backend(name)
            # Only devices that can train (not torch's data-less "meta", say).
            devices = [d for d in _listed_devices(backend.xp)
                       if _device_failure(backend.xp, d) is None]
            row["devices"] = [str(d) for d in devices]
            if name == "cupy":
                _check_cuda()
            row["usable"] = True
            row["float64"] = "float64" in backend.float_dtypes()
        except Exception as exc:  # any failure means "not usable here": say why
            row["why"] = _why_not(name, exc)
        rows.append(row)
    return rows


def _check_cuda():
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise BackendError("no CUDA device")


def _why_not(name, exc):
    cause = exc.__cause__ or exc
    if isinstance(cause, ImportError) and name in KNOWN_BACKENDS:  # a plugin's says why itself
        return f"not installed, {_install_hint(name)}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if name == "cupy":
        return f"no CUDA device ({text})"
    return text
