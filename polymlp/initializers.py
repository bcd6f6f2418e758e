"""Weight initializers.

All randomness is drawn on the host from the network's ``numpy.random.Generator``
(so a seed gives the same initial weights on every backend); the network then
casts and moves the result onto its backend.
"""

import math

# Initializers run on the host by contract (drawn with a NumPy Generator, then
# moved to the backend by the network), so NumPy is the right tool here.
import numpy

from . import _kinds, _validate
from ._config import Configurable


class Initializer(Configurable):
    """Base class of initializers (the plugin protocol; see CONTRIBUTING.md).

    Subclasses set ``name`` and implement ``__call__(shape, *, rng, fan_in,
    fan_out)``, returning a host (NumPy) float array drawn from ``rng`` only.
    """

    def __call__(self, shape, *, rng, fan_in, fan_out):
        raise NotImplementedError


class Zeros(Initializer):
    """All zeros (the default for biases)."""

    name = "zeros"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        return numpy.zeros(shape)  # draws nothing, so later draws do not shift


class Constant(Initializer):
    """Every entry equal to `value`."""

    name = "constant"

    def __init__(self, value=0.0):
        self.value = _validate.finite_float("value", value)

    def __call__(self, shape, *, rng, fan_in, fan_out):
        return numpy.full(shape, self.value)


class GlorotUniform(Initializer):
    """Glorot (Xavier) uniform: ``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``."""

    name = "glorot_uniform"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)


class GlorotNormal(Initializer):
    """Glorot (Xavier) normal: ``N(0, 2 / (fan_in + fan_out))``."""

    name = "glorot_normal"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)


class HeUniform(Initializer):
    """He (Kaiming) uniform: ``U(-l, l)``, ``l = sqrt(6 / fan_in)``."""

    name = "he_uniform"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)


class HeNormal(Initializer):
    """He (Kaiming) normal: ``N(0, 2 / fan_in)``."""

    name = "he_normal"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


BUILTINS = {cls.name: cls for cls in (Zeros, Constant, GlorotUniform, GlorotNormal,
                                      HeUniform, HeNormal)}
_kinds.declare("initializers", Initializer, BUILTINS)
