"""Activations: Swish/SiLU, GELU, Softplus and Mish.

Each is an :class:`polymlp.ElementwiseActivation`: a value and its
derivative, computed with the namespace ``xp`` the network hands in.
Formulas and defaults follow ``torch.nn.functional``.
"""

import math

from polymlp import ElementwiseActivation, checks

from ._special import normal_cdf, normal_pdf


def _sigmoid(z, xp):
    # exp of -|z| never overflows; both branches are exact rewrites.
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z, xp):
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): no overflow for large |z|.
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


class Swish(ElementwiseActivation):
    """Swish ``z * sigmoid(beta * z)`` (Ramachandran et al. 2017); SiLU when ``beta = 1``.

    Parameters
    ----------
    beta : float, default 1.0
    """

    name = "swish"

    def __init__(self, beta=1.0):
        self.beta = checks.positive_float("beta", beta)

    def value(self, z, /, *, xp):
        return z * _sigmoid(self.beta * z, xp)

    def derivative(self, z, /, *, xp):
        s = _sigmoid(self.beta * z, xp)
        return s + self.beta * z * s * (1.0 - s)

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see ``polymlp.onnx``): ``z * Sigmoid(beta * z)``."""
        scaled = input_name
        if self.beta != 1.0:
            scaled = builder.node("Mul", [input_name, builder.constant(self.beta, "beta")])
        return builder.node("Mul", [input_name, builder.node("Sigmoid", [scaled])])


class SiLU(Swish):
    """Sigmoid linear unit ``z * sigmoid(z)`` (``torch.nn.functional.silu``)."""

    name = "silu"

    def __init__(self):
        super().__init__(beta=1.0)


class GELU(ElementwiseActivation):
    """Gaussian error linear unit ``z * Phi(z)`` (Hendrycks & Gimpel 2016).

    Parameters
    ----------
    approximate : {"none", "tanh"}, default "none"
        ``"none"`` uses the normal CDF ``Phi`` exactly (the error function is
        evaluated from elementary ``xp`` functions, as the Array API has no
        ``erf``); ``"tanh"`` uses ``0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))``.
        As ``torch.nn.functional.gelu``.
    """

    name = "gelu"
    _K = math.sqrt(2.0 / math.pi)
    _C = 0.044715

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"`approximate` must be 'none' or 'tanh'; got {approximate!r}.")
        self.approximate = approximate

    def _tanh_inner(self, z, xp):
        return xp.tanh(self._K * (z + self._C * (z * z * z)))

    def value(self, z, /, *, xp):
        if self.approximate == "tanh":
            return 0.5 * z * (1.0 + self._tanh_inner(z, xp))
        return z * normal_cdf(z, xp=xp)

    def derivative(self, z, /, *, xp):
        if self.approximate == "tanh":
            t = self._tanh_inner(z, xp)
            return (0.5 * (1.0 + t)
                    + 0.5 * z * (1.0 - t * t) * self._K * (1.0 + 3.0 * self._C * (z * z)))
        return normal_cdf(z, xp=xp) + z * normal_pdf(z, xp=xp)

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see ``polymlp.onnx``).

        Exact: ``0.5 z (1 + Erf(z / sqrt 2))`` in float32; in float64 (which
        onnxruntime's ``Erf`` lacks) the same Chebyshev evaluation of the normal
        CDF as :meth:`value`. ``"tanh"``: the formula of :meth:`value` with ``Tanh``.
        """
        c = builder.constant
        if self.approximate == "tanh":
            cube = builder.node("Mul", [builder.node("Mul", [input_name, input_name]), input_name])
            inner = builder.node("Add", [input_name, builder.node("Mul", [cube, c(self._C, "c")])])
            t = builder.node("Tanh", [builder.node("Mul", [inner, c(self._K, "k")])])
            half_z = builder.node("Mul", [input_name, c(0.5, "half")])
            return builder.node("Mul", [half_z, builder.node("Add", [t, c(1.0, "one")])])
        if builder.dtype.itemsize > 4:
            from ._onnx import GraphNamespace

            ns = GraphNamespace(builder)
            z = ns.value(input_name)
            return (z * normal_cdf(z, xp=ns)).name
        erf = builder.node("Erf", [builder.node("Mul", [input_name,
                                                        c(1.0 / math.sqrt(2.0), "rsqrt2")])])
        half_z = builder.node("Mul", [input_name, c(0.5, "half")])
        return builder.node("Mul", [half_z, builder.node("Add", [erf, c(1.0, "one")])])


class Softplus(ElementwiseActivation):
    """Softplus ``log(1 + exp(beta * z)) / beta``, and ``z`` where ``beta * z > threshold``.

    As ``torch.nn.functional.softplus`` (defaults ``beta=1``, ``threshold=20``).
    """

    name = "softplus"

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta = checks.positive_float("beta", beta)
        self.threshold = checks.positive_float("threshold", threshold)

    def value(self, z, /, *, xp):
        bz = self.beta * z
        return xp.where(bz > self.threshold, z, _softplus(bz, xp) / self.beta)

    def derivative(self, z, /, *, xp):
        bz = self.beta * z
        return xp.where(bz > self.threshold, xp.ones_like(z), _sigmoid(bz, xp))

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see ``polymlp.onnx``): ``Where(bz > threshold, z, Softplus(bz) / beta)``."""
        bz = input_name
        if self.beta != 1.0:
            bz = builder.node("Mul", [input_name, builder.constant(self.beta, "beta")])
        soft = builder.node("Softplus", [bz])
        if self.beta != 1.0:
            soft = builder.node("Div", [soft, builder.constant(self.beta, "beta")])
        linear = builder.node("Greater", [bz, builder.constant(self.threshold, "threshold")])
        return builder.node("Where", [linear, input_name, soft])


class Mish(ElementwiseActivation):
    """Mish ``z * tanh(softplus(z))`` (Misra 2019), as ``torch.nn.functional.mish``."""

    name = "mish"

    def value(self, z, /, *, xp):
        return z * xp.tanh(_softplus(z, xp))

    def derivative(self, z, /, *, xp):
        t = xp.tanh(_softplus(z, xp))
        # d/dz softplus(z) = sigmoid(z)
        return t + z * (1.0 - t * t) * _sigmoid(z, xp)

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see ``polymlp.onnx``): ``z * Tanh(Softplus(z))``."""
        t = builder.node("Tanh", [builder.node("Softplus", [input_name])])
        return builder.node("Mul", [input_name, t])
