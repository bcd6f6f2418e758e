"""Initializers: LeCun (normal, uniform) and orthogonal.

Initializers run on the host by contract: they draw from the network's
``numpy.random.Generator`` and return a float64 NumPy array, which the
network casts and moves onto its backend.
"""

import math

import numpy  # host-side by contract (see polymlp.initializers)

from polymlp import Initializer, checks


class LeCunNormal(Initializer):
    """LeCun normal ``N(0, 1 / fan_in)`` (the initialisation for SELU-like units)."""

    name = "lecun_normal"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=shape)


class LeCunUniform(Initializer):
    """LeCun uniform ``U(-l, l)``, ``l = sqrt(3 / fan_in)``."""

    name = "lecun_uniform"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        limit = math.sqrt(3.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times `gain` (Saxe et al. 2014), as ``torch.nn.init.orthogonal_``.

    The QR decomposition of a Gaussian matrix, with the signs of R's
    diagonal folded into Q so that the result is uniformly distributed.
    Vectors (biases) are drawn as a 1-row matrix and normalised.
    """

    name = "orthogonal"

    def __init__(self, gain=1.0):
        self.gain = checks.finite_float("gain", gain)

    def __call__(self, shape, *, rng, fan_in, fan_out):
        shape = tuple(shape)
        rows = shape[0] if len(shape) > 1 else 1
        cols = math.prod(shape) // rows
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = numpy.linalg.qr(a)
        q = q * numpy.sign(numpy.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)
