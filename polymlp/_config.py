"""Shared base for objects that are built from, and described by, a JSON-safe config."""

import inspect


class Configurable:
    """Mixin: ``get_config()`` returns constructor arguments; ``from_config`` rebuilds.

    Subclasses store each constructor argument under an attribute of the same
    name, which is what the default ``get_config`` reads.
    """

    #: Registered name of the class (the key used by the registry and in saved files).
    name = None

    def get_config(self):
        """Constructor arguments as a JSON-safe dict."""
        params = inspect.signature(type(self).__init__).parameters
        return {p: getattr(self, p) for p in params
                if p != "self" and params[p].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                          inspect.Parameter.VAR_KEYWORD)}

    @classmethod
    def from_config(cls, config):
        """Rebuild an instance from :meth:`get_config`'s output."""
        return cls(**config)

    # Compared and hashed by identity (object's): their config is mutable
    # (``opt.learning_rate = 0.1``), and a hash must not change while an object
    # is a dict key. :meth:`same_config` compares configurations.

    def same_config(self, other):
        """Whether `other` is of the same class with the same configuration."""
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
