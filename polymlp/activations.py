"""Activation functions: the value and its derivative, side by side.

An :class:`ElementwiseActivation` needs only ``value`` and ``derivative``
(the seed's template method); a general :class:`Activation` such as softmax
implements ``backward``, the vector-Jacobian product.  All math goes
through the namespace ``xp`` handed in by the caller.
"""

from . import _kinds, _validate
from ._config import Configurable


class Activation(Configurable):
    """Base class of activations (the plugin protocol; see CONTRIBUTING.md).

    Subclasses set ``name`` and implement :meth:`forward` and :meth:`backward`
    (the vector-Jacobian product) with the namespace ``xp`` they are given,
    without writing into their inputs.  Element-wise activations subclass
    :class:`ElementwiseActivation` instead.
    """

    def forward(self, z, /, *, xp):
        """Activation of the pre-activations `z` (shape ``(n, units)``)."""
        raise NotImplementedError

    def backward(self, z, a, grad, /, *, xp):
        """Gradient with respect to `z`, given ``a = forward(z)`` and ``grad = dL/da``."""
        raise NotImplementedError

    def __call__(self, z, /, *, xp):
        return self.forward(z, xp=xp)

    #: Optional in-place kernels (see :mod:`polymlp._kernels`), used on writable
    #: backends: ``forward_inplace(z, /, *, xp) -> a`` may overwrite `z` with
    #: ``a``, and ``backward_inplace(z, a, grad, /, *, xp)`` may overwrite `grad`.
    #: Offer them only when ``backward(a, a, grad)`` equals ``backward(z, a, grad)``
    #: (the caller may keep ``a`` in place of the overwritten ``z``). ``None``: not offered.
    forward_inplace = None
    backward_inplace = None


class ElementwiseActivation(Activation):
    """An activation applied element by element: implement ``value`` and ``derivative``.

    ``forward`` and ``backward`` (``grad * derivative(z)``) follow from them;
    override ``backward`` only for a cheaper formula from ``a = forward(z)``.
    """

    def value(self, z, /, *, xp):
        """``sigma(z)`` element-wise."""
        raise NotImplementedError

    def derivative(self, z, /, *, xp):
        """``sigma'(z)`` element-wise."""
        raise NotImplementedError

    def forward(self, z, /, *, xp):
        return self.value(z, xp=xp)

    def backward(self, z, a, grad, /, *, xp):
        return grad * self.derivative(z, xp=xp)


class Identity(ElementwiseActivation):
    """``z``: the activation of regression outputs and of collapsible networks."""

    name = "identity"

    def value(self, z, /, *, xp):
        return z

    def derivative(self, z, /, *, xp):
        return xp.ones_like(z)

    def backward(self, z, a, grad, /, *, xp):
        return grad

    def forward_inplace(self, z, /, *, xp):
        return z

    def backward_inplace(self, z, a, grad, /, *, xp):
        return grad

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see :mod:`polymlp.onnx`): ``Identity``."""
        return builder.node("Identity", [input_name])


class Sigmoid(ElementwiseActivation):
    """Logistic sigmoid ``1 / (1 + exp(-z))``."""

    name = "sigmoid"

    def value(self, z, /, *, xp):
        # exp of -|z| never overflows; both branches are exact rewrites.
        e = xp.exp(-xp.abs(z))
        return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def derivative(self, z, /, *, xp):
        s = self.value(z, xp=xp)
        return s * (1.0 - s)

    def backward(self, z, a, grad, /, *, xp):
        return grad * a * (1.0 - a)

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see :mod:`polymlp.onnx`): ``Sigmoid``."""
        return builder.node("Sigmoid", [input_name])


class ReLU(ElementwiseActivation):
    """Rectified linear unit ``max(z, 0)``; derivative 0 at 0, as in PyTorch."""

    name = "relu"

    def value(self, z, /, *, xp):
        return xp.maximum(z, 0.0)

    def derivative(self, z, /, *, xp):
        return xp.astype(z > 0, z.dtype)

    def backward(self, z, a, grad, /, *, xp):
        return xp.where(z > 0, grad, 0.0)

    def forward_inplace(self, z, /, *, xp):
        return xp.maximum(z, 0, out=z)  # z now holds a; a > 0 exactly where z > 0

    def backward_inplace(self, z, a, grad, /, *, xp):
        grad *= a > 0
        return grad

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see :mod:`polymlp.onnx`): ``Relu``."""
        return builder.node("Relu", [input_name])


class LeakyReLU(ElementwiseActivation):
    """``z`` for positive inputs, ``negative_slope * z`` otherwise (default 0.01, as in PyTorch)."""

    name = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        self.negative_slope = _validate.finite_float("negative_slope", negative_slope)

    def value(self, z, /, *, xp):
        return xp.where(z > 0, z, self.negative_slope * z)

    def derivative(self, z, /, *, xp):
        return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, self.negative_slope))

    def backward(self, z, a, grad, /, *, xp):
        return xp.where(z > 0, grad, self.negative_slope * grad)

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see :mod:`polymlp.onnx`): ``LeakyRelu`` with ``alpha = negative_slope``.

        ONNX attributes are float32, so a float64 graph uses ``Where(z > 0, z,
        slope * z)`` with the slope as a float64 constant instead.
        """
        if builder.dtype.itemsize > 4:
            scaled = builder.node("Mul", [input_name, builder.constant(self.negative_slope,
                                                                       "slope")])
            positive = builder.node("Greater", [input_name, builder.constant(0.0, "zero")])
            return builder.node("Where", [positive, input_name, scaled])
        return builder.node("LeakyRelu", [input_name], alpha=self.negative_slope)


class Tanh(ElementwiseActivation):
    """Hyperbolic tangent."""

    name = "tanh"

    def value(self, z, /, *, xp):
        return xp.tanh(z)

    def derivative(self, z, /, *, xp):
        t = xp.tanh(z)
        return 1.0 - t * t

    def backward(self, z, a, grad, /, *, xp):
        return grad * (1.0 - a * a)

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see :mod:`polymlp.onnx`): ``Tanh``."""
        return builder.node("Tanh", [input_name])


class Softmax(Activation):
    """Softmax over the last axis, shifted by the row maximum for stability."""

    name = "softmax"

    def forward(self, z, /, *, xp):
        e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def backward(self, z, a, grad, /, *, xp):
        # Vector-Jacobian product of softmax: a * (g - <g, a>).
        return a * (grad - xp.sum(grad * a, axis=-1, keepdims=True))

    def to_onnx(self, builder, input_name):
        """ONNX mapping (see :mod:`polymlp.onnx`): ``Softmax`` over the last axis."""
        return builder.node("Softmax", [input_name], axis=-1)


def log_softmax(z, /, *, xp):
    """``log(softmax(z))`` computed without forming the softmax (stable for large logits)."""
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


BUILTINS = {cls.name: cls for cls in (Identity, Sigmoid, ReLU, LeakyReLU, Tanh, Softmax)}
_kinds.declare("activations", Activation, BUILTINS)
