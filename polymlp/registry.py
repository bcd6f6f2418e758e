"""The registry: every activation, loss, optimizer, layer type and initializer by name.

Built-ins and plugins go through the same lookup.  Plugins are found through
entry points, one group per kind (``polymlp.activations``, ``polymlp.losses``,
``polymlp.optimizers``, ``polymlp.layers``, ``polymlp.initializers``), plus
``polymlp.backends`` and the standard ``array_api`` group for array libraries.

Discovery is lazy and cached: importing polymlp imports no plugin, listing
names imports none, and a plugin is imported on first use.  A plugin that
fails to import, or whose object breaks its kind's protocol, is reported
with a ``RuntimeWarning`` and stays unusable; it never breaks polymlp, and
using it by name raises :class:`~polymlp.PluginError` carrying the original
error.  Name resolution, in order: built-ins, classes registered in this
process with :func:`register`, installed plugins.  Two plugins with one name
are a conflict: pick one as ``"distribution:name"`` or pass the class.
Set ``POLYMLP_DISABLE_PLUGIN_AUTOLOAD=1`` to ignore installed plugins.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import inspect
import os
import re
import warnings
from dataclasses import dataclass, field

from . import _array_api, _kinds, activations
from ._kinds import KINDS
from .errors import PluginError

BACKEND_GROUPS = ("polymlp.backends", "array_api")
DISABLE_ENV = "POLYMLP_DISABLE_PLUGIN_AUTOLOAD"


def _base(kind):
    return _kinds.base(kind)


def _builtins(kind):
    return _kinds.builtins(kind)


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

# The protocol per kind: methods a class must define itself (not inherit from
# the base), and keyword arguments each of them must accept.
_REQUIRED = {
    "activations": {"forward": ("xp",), "backward": ("xp",)},
    "elementwise": {"value": ("xp",), "derivative": ("xp",)},
    "losses": {"value": ("xp",), "gradient": ("xp",)},
    "optimizers": {"update": ("xp",)},
    "layers": {"forward": ("xp", "training", "rng"), "backward": ("xp", "need_input_grad")},
    "initializers": {"__call__": ("rng", "fan_in", "fan_out")},
}
# Methods a class may override; when it does, they must accept these keywords.
_OPTIONAL = {
    "optimizers": {"init": ("xp",)},
    "losses": {"output_value": ("xp",), "output_delta": ("xp",)},
}


def _one(kind):
    """Singular of a kind: "losses" -> "loss", "layers" -> "layer type"."""
    return "layer type" if kind == "layers" else _kinds.SINGULAR[kind]


def _a(kind):
    one = _one(kind)
    return f"{'an' if one[0] in 'aeiou' else 'a'} {one}"


def _normalize(name):
    return name.strip().lower().replace("-", "_")


def _normalize_dist(name):
    # PEP 503 normalisation, with "_" so that import names ("polymlp_extras") match too.
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass
class Entry:
    """One provider of a name: a built-in, a class registered in-process, or an entry point.

    Attributes
    ----------
    kind, name : str
        The kind (``"activations"``, ...) and the normalised name.
    source : str
        ``"builtin"``, ``"registered"`` or the providing distribution's name.
    version : str
        The distribution's version (polymlp's for built-ins).
    entry_point : importlib.metadata.EntryPoint or None
    obj : type or None
        The class, once loaded.
    error : BaseException or None
        Why the plugin is unusable (import error or protocol violation).
    shadowed_by : str
        What takes precedence over this entry under its bare name, if anything.
    conflicts : list of str
        Other distributions providing the same name.
    """

    kind: str
    name: str
    source: str
    version: str = ""
    entry_point: object = None
    obj: object = None
    error: BaseException | None = None
    reason: str = ""
    shadowed_by: str = ""
    conflicts: list = field(default_factory=list)

    @property
    def value(self):
        """``"module:attribute"`` of the object this entry refers to."""
        if self.entry_point is not None:
            return self.entry_point.value
        return f"{self.obj.__module__}:{self.obj.__qualname__}"

    @property
    def qualified_name(self):
        """``"distribution:name"`` (always resolves to this entry), or the bare name."""
        if self.entry_point is None:
            return self.name
        return f"{self.source}:{self.name}"

    @property
    def loaded(self):
        return self.obj is not None or self.error is not None

    @property
    def status(self):
        """``"ok"``, ``"broken: why"``, ``"shadowed by ..."`` or ``"not loaded"``."""
        if self.error is not None:
            return f"broken: {self.reason or f'{type(self.error).__name__}: {self.error}'}"
        if self.shadowed_by:
            return f"shadowed by {self.shadowed_by} (use {self.qualified_name!r})"
        if not self.loaded:
            return "not loaded"
        if self.conflicts:
            return (f"ok, but conflicts with {', '.join(self.conflicts)} "
                    f"(use {self.qualified_name!r})")
        return "ok"


_registered = {kind: {} for kind in KINDS}


def _dist_of(ep):
    dist = getattr(ep, "dist", None)
    if dist is None:
        # An EntryPoint built by hand: name the top-level module instead.
        return ep.value.split(":")[0].split(".")[0], ""
    return dist.metadata["Name"] or dist.name, dist.version


def _discover(group):
    """Every installed entry point of `group` (the one call into importlib.metadata)."""
    return importlib.metadata.entry_points(group=group)


def autoload_disabled():
    """Whether ``POLYMLP_DISABLE_PLUGIN_AUTOLOAD`` turns off discovery of installed plugins."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _entry_points(group):
    if autoload_disabled():
        return []
    return list(_discover(group))


@functools.cache
def _plugins(kind):
    """``name -> [Entry, ...]`` for the installed plugins of `kind`; imports nothing."""
    found = {}
    for ep in _entry_points(_kinds.group(kind)):
        dist, version = _dist_of(ep)
        name = _normalize(ep.name)
        same = [e for e in found.get(name, [])
                if _normalize_dist(e.source) == _normalize_dist(dist)]
        if same:  # one distribution seen twice on sys.path: keep the first, as Python would
            continue
        found.setdefault(name, []).append(Entry(kind, name, dist, version, entry_point=ep))
    for name, entries_ in found.items():
        if name in _builtins(kind):
            for e in entries_:
                e.shadowed_by = f"built-in {name!r}"
            warnings.warn(
                f"polymlp.{kind} entry point {name!r} from "
                f"{', '.join(e.source for e in entries_)} is shadowed: the built-in "
                f"{_one(kind)} {name!r} takes precedence. Use {entries_[0].qualified_name!r} "
                f"to pick the plugin's.", RuntimeWarning, stacklevel=4)
        elif len(entries_) > 1:
            dists = [e.source for e in entries_]
            for e in entries_:
                e.conflicts = [d for d in dists if d != e.source]
            warnings.warn(
                f"polymlp.{kind} name {name!r} is provided by several distributions: "
                f"{', '.join(dists)}. Pick one explicitly, e.g. "
                f"{entries_[0].qualified_name!r}, or pass the class itself.",
                RuntimeWarning, stacklevel=4)
    return found


def refresh():
    """Forget discovered plugins; the next lookup rescans the installed entry points.

    Classes registered in-process with :func:`register` are kept.
    """
    _plugins.cache_clear()
    _backend_entry_points.cache_clear()
    _packages_distributions.cache_clear()


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {list(KINDS)}; got {kind!r}.")


def names(kind):
    """Sorted names available for `kind`: built-ins, registered classes and plugins.

    Imports no plugin; a plugin listed here may still turn out broken on first use.
    """
    _check_kind(kind)
    return sorted(set(_builtins(kind)) | set(_registered[kind]) | set(_plugins(kind)))


def entries(kind):
    """Every provider of every name of `kind`, as :class:`Entry` objects (imports nothing)."""
    _check_kind(kind)
    from . import __version__

    out = [Entry(kind, n, "builtin", __version__, obj=c)
           for n, c in sorted(_builtins(kind).items())]
    out += [_registered[kind][n] for n in sorted(_registered[kind])]
    for name in sorted(_plugins(kind)):
        for entry in _plugins(kind)[name]:
            if name not in _builtins(kind):  # registration can come and go
                entry.shadowed_by = (f"registered {name!r} ({_registered[kind][name].value})"
                                     if name in _registered[kind] else "")
            out.append(entry)
    return out


# --- the protocol ---------------------------------------------------------------------

def _protocol(kind, cls):
    if kind == "activations" and issubclass(cls, activations.ElementwiseActivation):
        return "elementwise", activations.ElementwiseActivation
    return kind, _base(kind)


def _accepts(func, keywords):
    """Keywords among `keywords` that `func` cannot take."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return [k for k in keywords if k not in params or params[k].kind not in (
        inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def _checked(kind, cls):
    """Reason why `cls` breaks `kind`'s protocol, or "" when it satisfies it."""
    base = _base(kind)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        what = f"an instance of {type(cls).__name__}" if not isinstance(cls, type) else repr(cls)
        return (f"must be a subclass of polymlp.{base.__name__} (the {_one(kind)} protocol); "
                f"got {what}.")
    return _checked_class(kind, cls)


@functools.cache
def _checked_class(kind, cls):
    protocol, proto_base = _protocol(kind, cls)
    problems = []
    missing = [m for m in _REQUIRED[protocol] if getattr(cls, m) is getattr(proto_base, m)]
    if missing:
        problems.append(f"does not implement {', '.join(missing)}")
    methods = {**_REQUIRED[protocol], **_OPTIONAL.get(kind, {})}
    for method, keywords in methods.items():
        if method in missing:
            continue
        lacking = _accepts(getattr(cls, method), keywords)
        if lacking:
            problems.append(f"{method}() does not accept the keyword argument(s) "
                            f"{', '.join(lacking)}")
    name = getattr(cls, "name", None)
    if name is not None and not isinstance(name, str):
        problems.append(f"its `name` attribute must be a string; got {name!r}")
    if problems:
        what = {"elementwise": "an ElementwiseActivation needs value() and derivative()",
                "activations": "an Activation needs forward() and backward()",
                "losses": "a Loss needs value() and gradient()",
                "optimizers": "an Optimizer needs update() (and usually init())",
                "layers": "a Layer needs forward() and backward() (and usually build() "
                          "and parameter_specs())",
                "initializers": "an Initializer needs __call__(shape, *, rng, fan_in, fan_out)",
                }[protocol]
        return f"{'; '.join(problems)} ({what}; see CONTRIBUTING.md, 'Writing a plugin')."
    return ""


def check_protocol(kind, cls, origin=None):
    """Return `cls` if it satisfies `kind`'s protocol, else raise :class:`PluginError`.

    The check is static: `cls` must subclass the kind's base class, define the
    required methods itself and accept their keyword arguments (``xp``, ...).
    :mod:`polymlp.testing` runs the numerical checks.
    """
    _check_kind(kind)
    why = _checked(kind, cls)
    if why:
        origin = origin or (f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type)
                            else repr(cls))
        raise PluginError(f"{origin} {why}")
    return cls


# --- loading --------------------------------------------------------------------------

def _load_entry(entry):
    """Import an entry point's object and check it; a failure marks the entry broken."""
    if entry.loaded:
        return entry
    ep = entry.entry_point
    origin = (f"polymlp.{entry.kind} entry point {entry.name!r} = {ep.value!r} "
              f"(from {entry.source} {entry.version})".replace(" )", ")"))
    try:
        obj = ep.load()
        entry.reason = _checked(entry.kind, obj)
        check_protocol(entry.kind, obj, origin)
        if getattr(obj, "name", None) is None:
            obj.name = entry.name  # saved configs refer to the class by this name
        entry.obj = obj
    except Exception as exc:  # a broken plugin must never break polymlp
        entry.error = exc
        message = str(exc) if isinstance(exc, PluginError) else (
            f"{origin} failed to load: {type(exc).__name__}: {exc}")
        if not entry.reason:
            entry.reason = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"{message.rstrip('.')}. It is unusable until fixed.", RuntimeWarning,
                      stacklevel=4)
    return entry


def _split(name):
    dist, key = (name.split(":", 1) if ":" in name else (None, name))
    key = _normalize(key)
    return (dist.strip() if dist is not None else None), key


def load(kind, name):
    """The class registered as `name` for `kind`.

    Parameters
    ----------
    kind : {"activations", "losses", "optimizers", "layers", "initializers"}
    name : str
        A name (``"relu"``), an alias (``"sgd"``), or ``"distribution:name"``
        to pick one provider (``"polymlp-extras:swish"``; the distribution may
        be spelt with ``_``, like its import name, and ``"polymlp:relu"`` names
        a built-in).

    Raises
    ------
    ValueError
        Unknown name (the message lists what is available and suggests close names).
    PluginError
        The plugin failed to import or breaks the protocol (the original error
        is the ``__cause__``), or several distributions provide the bare name.
    """
    _check_kind(kind)
    if not isinstance(name, str):
        raise TypeError(f"{_a(kind).capitalize()} name must be a string; got {name!r} of type "
                        f"{type(name).__name__}.")
    dist, key = _split(name)
    key = _ALIASES[kind].get(key, key)
    if dist is None or _normalize_dist(dist) in ("polymlp", "builtin"):
        if key in _builtins(kind):
            return _builtins(kind)[key]
        if dist is None and key in _registered[kind]:
            return _registered[kind][key].obj
    providers = _plugins(kind).get(key, [])
    if dist is not None:
        want = _normalize_dist(dist)
        candidates = [e for e in providers if want in (
            _normalize_dist(e.source),
            _normalize_dist(e.entry_point.value.split(":")[0].split(".")[0]))]
        if not candidates:
            if not providers and key not in _builtins(kind):
                raise ValueError(_unknown_message(kind, name, key))
            have = ", ".join([e.qualified_name for e in providers]
                             + ([f"polymlp:{key}"] if key in _builtins(kind) else []))
            raise ValueError(f"No {_one(kind)} {key!r} from distribution {dist!r}. "
                             f"Providers of {key!r}: {have}.")
    else:
        candidates = providers
        if len(candidates) > 1:
            raise PluginError(
                f"{_one(kind).capitalize()} {key!r} is provided by several distributions: "
                f"{', '.join(f'{e.source} {e.version}'.strip() for e in candidates)}. "
                f"Pick one as 'distribution:{key}' (e.g. {candidates[0].qualified_name!r}) "
                f"or pass the class itself.")
    if not candidates:
        raise ValueError(_unknown_message(kind, name, key))
    entry = _load_entry(candidates[0])
    if entry.error is not None:
        raise PluginError(
            f"{_one(kind).capitalize()} {key!r} comes from plugin {entry.source} "
            f"{entry.version} ({entry.value}), which is unusable: "
            f"{type(entry.error).__name__}: {entry.error}") from entry.error
    return entry.obj


def _unknown_message(kind, given, key):
    available = names(kind)
    close = difflib.get_close_matches(key, available + list(_ALIASES[kind]), n=3, cutoff=0.6)
    close = list(dict.fromkeys(_ALIASES[kind].get(c, c) for c in close))
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    elsewhere = [_a(k) for k in KINDS if k != kind and key in
                 (set(_builtins(k)) | set(_registered[k]) | set(_plugins(k)))]
    if elsewhere:
        hint += f" ({key!r} is {' and '.join(elsewhere)}.)"
    return (f"Unknown {_one(kind)} {given!r}.{hint} Available: {', '.join(available)}. "
            f"Plugins register under the 'polymlp.{kind}' entry-point group; is the "
            f"package that provides it installed?"
            + (f" (Plugin autoload is off: {DISABLE_ENV} is set.)" if autoload_disabled() else ""))


def register(kind, name=None, *, override=False):
    """Class decorator: register a class under `name` for `kind`, in this process.

    For code that is not an installed package (a script, a notebook).  The
    class goes through the same protocol check as plugins.  Built-in names
    cannot be taken; a registered name takes precedence over installed
    plugins of the same name.

    Parameters
    ----------
    kind : {"activations", "losses", "optimizers", "layers", "initializers"}
    name : str, optional
        Defaults to the class's ``name`` attribute, else its lower-cased class name.
    override : bool
        Replace a class already registered under `name` (re-defining a class
        of the same module and name, e.g. re-running a notebook cell, needs no flag).

    Examples
    --------
    >>> import polymlp as pm
    >>> @pm.register("activations", "cube_demo")
    ... class Cube(pm.ElementwiseActivation):
    ...     def value(self, z, /, *, xp): return z * z * z
    ...     def derivative(self, z, /, *, xp): return 3 * z * z
    >>> pm.Dense(4, activation="cube_demo").activation.name
    'cube_demo'
    >>> pm.registry.unregister("activations", "cube_demo")
    """
    _check_kind(kind)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a string; got {name!r} of type {type(name).__name__}.")

    def decorator(cls):
        key = _normalize(name or getattr(cls, "name", None) or cls.__name__)
        if not re.fullmatch(r"[a-z_][a-z0-9_.]*", key):
            raise ValueError(f"`name` must look like an identifier (letters, digits, '_'); "
                             f"got {key!r}.")
        check_protocol(kind, cls)
        if key in _builtins(kind):
            raise ValueError(f"{_one(kind).capitalize()} {key!r} is a built-in name and "
                             f"built-ins take precedence; register under another name.")
        old = _registered[kind].get(key)
        if old is not None and not override and old.obj is not cls and (
                (old.obj.__module__, old.obj.__qualname__) != (cls.__module__, cls.__qualname__)):
            raise ValueError(f"{_one(kind).capitalize()} {key!r} is already registered to "
                             f"{old.value}; pass override=True to replace it.")
        if getattr(cls, "name", None) != key:
            cls.name = key  # saved configs refer to the class by this name
        _registered[kind][key] = Entry(kind, key, "registered", obj=cls)
        return cls

    return decorator


def unregister(kind, name):
    """Remove a name registered with :func:`register` (no error if absent)."""
    _check_kind(kind)
    _registered[kind].pop(_normalize(name), None)


def get(kind, identifier, **kwargs):
    """An instance of `kind` from a name, a class, a ``{"name", "config"}`` dict or an instance.

    `kwargs` are passed to the constructor when `identifier` is a name or a class.
    """
    _check_kind(kind)
    base = _base(kind)
    if isinstance(identifier, base):
        check_protocol(kind, type(identifier))
        return identifier
    if isinstance(identifier, str):
        return load(kind, identifier)(**kwargs)
    if isinstance(identifier, type) and issubclass(identifier, base):
        return check_protocol(kind, identifier)(**kwargs)
    if isinstance(identifier, dict) and isinstance(identifier.get("name"), str):
        return load(kind, identifier["name"]).from_config(dict(identifier.get("config") or {}))
    raise TypeError(
        f"Expected {_a(kind)} name (one of {', '.join(names(kind))}), a "
        f"polymlp.{base.__name__} subclass or instance, or a {{'name': ..., 'config': ...}} "
        f"dict; got {identifier!r} of type {type(identifier).__name__}.")


def get_activation(identifier):
    """Activation from a name, instance, class, config, or ``None`` (identity)."""
    return get("activations", "identity" if identifier is None else identifier)


def get_loss(identifier):
    """Loss from a name, instance, class or config."""
    return get("losses", identifier)


def get_optimizer(identifier):
    """Optimizer from a name, instance, class or config."""
    return get("optimizers", identifier)


def get_initializer(identifier):
    """Initializer from a name, instance, class or config."""
    return get("initializers", identifier)


def get_layer(identifier):
    """Layer from a name, instance, class or config."""
    return get("layers", identifier)


def kind_of(obj):
    """The kind (``"activations"``, ...) of an instance or class, or None."""
    return _kinds.kind_of(obj)


def _loaded_entry_of(cls):
    kind = kind_of(cls)
    if kind is None:
        return None
    for entry in _plugins(kind).get(_normalize(getattr(cls, "name", None) or ""), []):
        if entry.obj is cls:
            return entry
    return None


def qualified_name(obj):
    """The name under which :func:`load` finds exactly `obj`'s class.

    The bare ``name`` when it resolves to this class; ``"distribution:name"``
    for a plugin whose bare name is shadowed or ambiguous.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    name, kind = getattr(cls, "name", None), kind_of(cls)
    if name is None or kind is None:
        return name
    try:
        if load(kind, name) is cls:
            return name
    except (ValueError, PluginError):
        pass
    entry = _loaded_entry_of(cls)
    return entry.qualified_name if entry is not None else name


def to_config(obj):
    """``{"name": ..., "config": {...}}`` for a registered object (JSON-safe).

    :func:`get` rebuilds the object from it.
    """
    return {"name": qualified_name(obj), "config": obj.get_config()}


@functools.cache
def _packages_distributions():
    return importlib.metadata.packages_distributions()


def provenance(obj):
    """``(distribution, version)`` providing `obj`'s class (an instance or a class).

    ``("polymlp", version)`` for built-ins, the plugin's distribution for
    classes loaded from entry points or defined in an installed package, and
    ``(None, None)`` for classes defined outside any distribution (a script).
    """
    cls = obj if isinstance(obj, type) else type(obj)
    entry = _loaded_entry_of(cls)
    if entry is not None:
        return entry.source, entry.version
    top = cls.__module__.split(".")[0]
    if top == "polymlp":
        from . import __version__

        return "polymlp", __version__
    for dist in _packages_distributions().get(top, []):
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


def describe_plugins(load_plugins=True):
    """One row per provider of every name of every kind (what ``polymlp plugins`` prints).

    Each row is a dict with ``kind``, ``name``, ``source`` (``"builtin"``,
    ``"registered"`` or a distribution), ``version``, ``value`` (the object's
    import path), ``qualified_name`` and ``status`` (``"ok"``, ``"broken: why"``,
    ``"shadowed by ..."``, ...).  With `load_plugins`, every plugin that is not
    shadowed is imported to learn its status; broken ones warn as usual.
    """
    rows = []
    for kind in KINDS:
        for entry in entries(kind):
            if load_plugins and entry.entry_point is not None and not entry.shadowed_by:
                _load_entry(entry)
            rows.append({"kind": kind, "name": entry.name, "source": entry.source,
                         "version": entry.version, "value": entry.value,
                         "qualified_name": entry.qualified_name, "status": entry.status})
    for name, ep in sorted(_backend_entry_points().items()):
        dist, version = _dist_of(ep)
        rows.append({"kind": "backends", "name": name, "source": dist, "version": version,
                     "value": ep.value, "qualified_name": name,
                     "status": "not loaded (see `polymlp backends`)"})
    return rows


# --- array libraries --------------------------------------------------------------

@functools.cache
def _backend_entry_points():
    eps = {}
    for group in BACKEND_GROUPS:  # polymlp's own group first: it wins on a name clash
        for ep in _entry_points(group):
            eps.setdefault(_normalize(ep.name), ep)
    return eps


def backend_names():
    """Names of array libraries registered through entry points (imports none)."""
    return sorted(_backend_entry_points())


def load_backend(name):
    """Namespace registered under `name` in ``polymlp.backends`` or ``array_api``, or None."""
    ep = _backend_entry_points().get(_normalize(name))
    if ep is None:
        return None
    dist, version = _dist_of(ep)
    try:
        xp = ep.load()
    except Exception as exc:
        raise PluginError(f"Backend entry point {name!r} = {ep.value!r} (from {dist} "
                          f"{version}) failed to load: {type(exc).__name__}: {exc}") from exc
    if not (hasattr(xp, "asarray") and hasattr(xp, "__array_namespace_info__")):
        raise PluginError(f"Backend entry point {name!r} = {ep.value!r} (from {dist} "
                          f"{version}) is not an Array API namespace (it lacks asarray or "
                          f"__array_namespace_info__); got {xp!r}.")
    return xp


# The backend hub finds plugin array libraries through these (it does not import this module).
_array_api.PLUGIN_BACKENDS.load, _array_api.PLUGIN_BACKENDS.names = load_backend, backend_names
