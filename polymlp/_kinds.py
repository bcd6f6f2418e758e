"""The one table of plugin kinds, shared by the registry, saving and the conformance kit.

Each kind's module (``activations``, ``losses``, ``optimizers``, ``layers``,
``initializers``) declares its base class and built-ins here when it is
imported, so nothing that reads the table has to import the kinds' modules
(and the layers, which look names up in the registry, do not form a cycle
with it).  This module imports nothing from polymlp.
"""

from __future__ import annotations

#: The kinds, in the order listings show them.
KINDS = ("activations", "losses", "optimizers", "layers", "initializers")

#: Singular nouns for messages: "losses" -> "loss".
SINGULAR = {"activations": "activation", "losses": "loss", "optimizers": "optimizer",
            "layers": "layer", "initializers": "initializer"}

_declared = {}  # kind -> (base class, {name: built-in class})


def declare(kind, base, builtins):
    """Called once by each kind's module: its plugin base class and built-in classes."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {list(KINDS)}; got {kind!r}.")
    _declared[kind] = (base, dict(builtins))


def add_builtins(kind, builtins):
    """More built-ins of a declared `kind`, from a module of their own (``polymlp.lbfgs``)."""
    _get(kind)[1].update(builtins)


def _get(kind):
    try:
        return _declared[kind]
    except KeyError:
        raise ValueError(f"`kind` must be one of {list(KINDS)}; got {kind!r}.") from None


def base(kind):
    """The base class plugins of `kind` subclass (``polymlp.Layer``, ...)."""
    return _get(kind)[0]


def builtins(kind):
    """``{name: class}`` of the built-ins of `kind`."""
    return _get(kind)[1]


def group(kind):
    """The entry-point group plugins of `kind` register under."""
    return f"polymlp.{kind}"


def kind_of(obj):
    """The kind of an instance or a class, or None."""
    for kind in KINDS:
        cls = base(kind)
        if isinstance(obj, cls) or (isinstance(obj, type) and issubclass(obj, cls)):
            return kind
    return None
