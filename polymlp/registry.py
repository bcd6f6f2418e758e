"""The registry: every activation, loss, optimizer, layer type and initializer by name.

Built-ins and plugins go through the same lookup.  Plugins are found through
entry points, one group per kind (``polymlp.activations``, ``polymlp.losses``,
``polymlp.optimizers``, ``polymlp.layers``, ``polymlp.initializers``), plus
``polymlp.backends`` and the standard ``array_api`` group for array libraries.

Discovery is lazy and cached: importing polymlp imports no plugin, listing
names imports none, and a plugin is imported on first use.  A plugin that
fails to import, or whose object breaks its kind's protocol, is reported
with a ``RuntimeWarning`` and stays unusable; it never breaks polymlp.
Set ``POLYMLP_DISABLE_PLUGIN_AUTOLOAD=1`` to ignore installed plugins.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field

from . import activations, initializers, layers, losses, optimizers
from .errors import PluginError

KINDS = ("activations", "losses", "optimizers", "layers", "initializers")

_BASES = {
    "activations": activations.Activation,
    "losses": losses.Loss,
    "optimizers": optimizers.Optimizer,
    "layers": layers.Layer,
    "initializers": initializers.Initializer,
}

_BUILTINS = {
    "activations": activations.BUILTINS,
    "losses": losses.BUILTINS,
    "optimizers": optimizers.BUILTINS,
    "layers": layers.BUILTINS,
    "initializers": initializers.BUILTINS,
}

# Aliases of built-in names (what users of other libraries type).
_ALIASES = {
    "activations": {"linear": "identity", "none": "identity", "logistic": "sigmoid",
                    "leakyrelu": "leaky_relu"},
    "losses": {"categorical_cross_entropy": "cross_entropy", "crossentropy": "cross_entropy",
               "ce": "cross_entropy", "log_loss": "cross_entropy", "bce": "binary_cross_entropy",
               "mean_squared_error": "mse", "squared_error": "mse",
               "mean_absolute_error": "mae", "l1": "mae"},
    "optimizers": {"sgd": "gd", "gradient_descent": "gd"},
    "layers": {"linear": "dense", "fully_connected": "dense"},
    "initializers": {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
                     "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"},
}

DISABLE_ENV = "POLYMLP_DISABLE_PLUGIN_AUTOLOAD"


@dataclass
class Entry:
    """One provider of a name: a built-in, a registered object or an entry point."""

    kind: str
    name: str
    source: str  # "builtin", "registered" or the distribution name
    version: str = ""
    entry_point: object = None
    obj: object = None
    error: BaseException | None = None
    shadowed_by: str = ""
    conflicts: list = field(default_factory=list)

    @property
    def status(self):
        if self.error is not None:
            return f"broken: {self.error}"
        if self.shadowed_by:
            return f"shadowed by {self.shadowed_by}"
        if self.conflicts:
            return "conflict with " + ", ".join(self.conflicts)
        return "ok"


_registered = {kind: {} for kind in KINDS}


def _dist_of(ep):
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown", ""
    return dist.metadata["Name"] or dist.name, dist.version


def _entry_points(group):
    if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
        return []
    return list(importlib.metadata.entry_points(group=group))


@functools.cache
def _plugins(kind):
    """``name -> [Entry, ...]`` for the installed plugins of `kind`; imports nothing."""
    found = {}
    for ep in _entry_points(f"polymlp.{kind}"):
        dist, version = _dist_of(ep)
        found.setdefault(ep.name, []).append(Entry(kind, ep.name, dist, version, entry_point=ep))
    for name, entries in found.items():
        if name in _BUILTINS[kind]:
            for e in entries:
                e.shadowed_by = "built-in"
            warnings.warn(
                f"polymlp.{kind} entry point {name!r} from "
                f"{', '.join(e.source for e in entries)} is ignored: the built-in "
                f"{kind[:-1]} {name!r} takes precedence. Use '{entries[0].source}:{name}' "
                f"to pick the plugin's.", RuntimeWarning, stacklevel=3)
        elif len(entries) > 1:
            dists = [e.source for e in entries]
            for e in entries:
                e.conflicts = [d for d in dists if d != e.source]
            warnings.warn(
                f"polymlp.{kind} name {name!r} is provided by several distributions: "
                f"{', '.join(dists)}. Pick one explicitly, e.g. '{dists[0]}:{name}', or pass "
                f"the class itself.", RuntimeWarning, stacklevel=3)
    return found


def refresh():
    """Forget discovered plugins and rescan the entry points on next use."""
    _plugins.cache_clear()
    _backend_entry_points.cache_clear()


def names(kind):
    """Sorted names available for `kind` (built-ins, registered objects and plugins)."""
    _check_kind(kind)
    return sorted(set(_BUILTINS[kind]) | set(_registered[kind]) | set(_plugins(kind)))


def entries(kind):
    """Every provider of every name of `kind`, as :class:`Entry` objects (imports nothing)."""
    _check_kind(kind)
    out = [Entry(kind, n, "builtin", obj=c) for n, c in sorted(_BUILTINS[kind].items())]
    out += sorted(_registered[kind].values(), key=lambda e: e.name)
    for name in sorted(_plugins(kind)):
        out += _plugins(kind)[name]
    return out


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {list(KINDS)}; got {kind!r}.")


def _check_protocol(kind, obj, origin):
    base = _BASES[kind]
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginError(
            f"{origin} must be a subclass of polymlp.{base.__module__.split('.')[-1]}."
            f"{base.__name__}; got {obj!r}.")
    required = {"activations": ("forward", "backward"), "losses": ("value", "gradient"),
                "optimizers": ("init", "update"), "layers": ("forward", "backward"),
                "initializers": ("__call__",)}[kind]
    missing = [m for m in required if getattr(obj, m) is getattr(base, m)
               and not (kind == "activations" and _elementwise_ok(obj))
               and m != "init"]
    if missing:
        raise PluginError(f"{origin} does not implement {', '.join(missing)} "
                          f"(required for {kind}).")
    return obj


def _elementwise_ok(cls):
    base = activations.ElementwiseActivation
    return (issubclass(cls, base) and cls.value is not base.value
            and cls.derivative is not base.derivative)


def _load_entry(entry):
    if entry.obj is not None or entry.error is not None:
        return entry
    ep = entry.entry_point
    origin = f"polymlp.{entry.kind} entry point {entry.name!r} = {ep.value!r} (from {entry.source})"
    try:
        obj = ep.load()
        entry.obj = _check_protocol(entry.kind, obj, origin)
    except Exception as exc:  # a broken plugin must never break polymlp
        entry.error = exc
        warnings.warn(f"{origin} is unusable: {type(exc).__name__}: {exc}",
                      RuntimeWarning, stacklevel=4)
    return entry


def load(kind, name):
    """The class registered as `name` for `kind`.

    `name` may be qualified as ``"distribution:name"`` to pick one provider.
    Raises ``ValueError`` for an unknown name (with suggestions) and
    :class:`PluginError` for a broken or ambiguous plugin.
    """
    _check_kind(kind)
    if not isinstance(name, str):
        raise TypeError(f"A {kind[:-1]} name must be a string; got {name!r}.")
    dist = None
    key = name
    if ":" in name:
        dist, key = name.split(":", 1)
    key = key.strip().lower().replace("-", "_")
    key = _ALIASES[kind].get(key, key)
    if dist is None or dist in ("builtin", "polymlp"):
        if key in _BUILTINS[kind]:
            return _BUILTINS[kind][key]
        if key in _registered[kind]:
            return _registered[kind][key].obj
    candidates = _plugins(kind).get(key, [])
    if dist is not None:
        norm = dist.replace("-", "_").lower()
        candidates = [e for e in candidates if e.source.replace("-", "_").lower() == norm
                      or e.entry_point.value.split(".")[0].split(":")[0] == dist]
    elif len(candidates) > 1:
        raise PluginError(
            f"{kind[:-1].capitalize()} {key!r} is provided by several distributions: "
            f"{', '.join(e.source for e in candidates)}. Use 'distribution:{key}' "
            f"(e.g. '{candidates[0].source}:{key}') or pass the class itself.")
    if not candidates:
        raise ValueError(_unknown_message(kind, name, key))
    entry = _load_entry(candidates[0])
    if entry.error is not None:
        raise PluginError(
            f"{kind[:-1].capitalize()} {key!r} comes from {entry.source} "
            f"{entry.version}, which failed to load: {type(entry.error).__name__}: "
            f"{entry.error}") from entry.error
    return entry.obj


def _unknown_message(kind, given, key):
    available = names(kind)
    close = difflib.get_close_matches(key, available + list(_ALIASES[kind]), n=3, cutoff=0.6)
    close = [_ALIASES[kind].get(c, c) for c in close]
    hint = f" Did you mean {' or '.join(repr(c) for c in dict.fromkeys(close))}?" if close else ""
    return (f"Unknown {kind[:-1]} {given!r}.{hint} Available: {', '.join(available)}. "
            f"Plugins register under the 'polymlp.{kind}' entry-point group; is the "
            f"package that provides it installed?")


def register(kind, name=None, *, override=False):
    """Decorator registering a class under `name` for `kind`, in this process.

    Examples
    --------
    >>> import polymlp as pm
    >>> @pm.register("activations", "cube_demo")
    ... class Cube(pm.activations.ElementwiseActivation):
    ...     def value(self, z, /, *, xp): return z * z * z
    ...     def derivative(self, z, /, *, xp): return 3 * z * z
    >>> pm.Dense(4, activation="cube_demo").activation.name
    'cube_demo'
    """
    _check_kind(kind)

    def decorator(cls):
        key = (name or getattr(cls, "name", None) or cls.__name__).lower()
        _check_protocol(kind, cls, f"{cls.__module__}.{cls.__qualname__}")
        if key in _BUILTINS[kind] and not override:
            raise ValueError(f"{kind[:-1].capitalize()} {key!r} is a built-in name; choose "
                             f"another name or pass override=True.")
        if getattr(cls, "name", None) != key:
            cls.name = key  # saved configs refer to the class by this name
        _registered[kind][key] = Entry(kind, key, "registered", obj=cls)
        return cls

    return decorator


def unregister(kind, name):
    """Remove a name registered with :func:`register` (mainly for tests)."""
    _registered[kind].pop(name, None)


def get(kind, identifier, **kwargs):
    """An instance of `kind` from a name, a class, a config dict or an instance."""
    base = _BASES[kind]
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        return load(kind, identifier)(**kwargs)
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier(**kwargs)
    if isinstance(identifier, dict) and "name" in identifier:
        return load(kind, identifier["name"]).from_config(dict(identifier.get("config", {})))
    article = "an" if kind[0] in "aeiou" else "a"
    raise TypeError(
        f"Expected {article} {kind[:-1]} name (e.g. {names(kind)[:3]}), a "
        f"{base.__name__} subclass or instance; got {identifier!r} of type "
        f"{type(identifier).__name__}.")


def get_activation(identifier):
    """Activation from a name, instance, class, config, or ``None`` (identity)."""
    return get("activations", "identity" if identifier is None else identifier)


def get_loss(identifier):
    return get("losses", identifier)


def get_optimizer(identifier):
    return get("optimizers", identifier)


def get_initializer(identifier):
    return get("initializers", identifier)


def get_layer(identifier):
    return get("layers", identifier)


def to_config(obj):
    """``{"name": ..., "config": {...}}`` for a registered object (JSON-safe)."""
    return {"name": obj.name, "config": obj.get_config()}


def provenance(obj):
    """``(distribution, version)`` that provides `obj`'s class, or ``("polymlp", version)``."""
    for kind, base in _BASES.items():
        if isinstance(obj, base) or (isinstance(obj, type) and issubclass(obj, base)):
            cls = obj if isinstance(obj, type) else type(obj)
            for entry in _plugins(kind).get(getattr(cls, "name", ""), []):
                if entry.obj is cls:
                    return entry.source, entry.version
    from . import __version__

    return "polymlp", __version__


# --- array libraries --------------------------------------------------------------

@functools.cache
def _backend_entry_points():
    eps = {}
    for group in ("polymlp.backends", "array_api"):
        for ep in _entry_points(group):
            eps.setdefault(ep.name, ep)
    return eps


def backend_names():
    """Names of array libraries registered through entry points."""
    return sorted(_backend_entry_points())


def load_backend(name):
    """Namespace registered under `name` in ``polymlp.backends`` or ``array_api``, or None."""
    ep = _backend_entry_points().get(name)
    if ep is None:
        return None
    try:
        return ep.load()
    except Exception as exc:
        raise PluginError(f"Backend entry point {name!r} = {ep.value!r} failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc
