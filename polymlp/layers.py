"""Layer types.

A layer declares its parameters (:meth:`Layer.parameter_specs`: name, shape,
initializer) and implements a pure ``forward`` that returns its output and a
cache, and a ``backward`` that returns the input gradient and the parameter
gradients.  The network owns the parameter values (views of one flat
vector) and hands them in as a tuple, in the order of the specs.
"""

from dataclasses import dataclass

from . import _validate
from ._config import Configurable


@dataclass(frozen=True)
class ParamSpec:
    """One trainable parameter of a layer.

    `regularized` says whether the network's L2 penalty (``Network(alpha=...)``)
    applies to it; ``None`` means "when it is a matrix" (weights yes, biases and
    per-feature gains no).
    """

    name: str
    shape: tuple
    initializer: object  # an Initializer instance
    regularized: object = None

    @property
    def penalized(self):
        """Whether the L2 penalty applies (`regularized`, or a shape of 2+ axes)."""
        return len(self.shape) >= 2 if self.regularized is None else bool(self.regularized)


class Layer(Configurable):
    """Base class of layer types (the plugin protocol; see CONTRIBUTING.md).

    Subclasses set ``name`` and implement :meth:`forward` and :meth:`backward`,
    :meth:`build` if the output width differs from the input width, and
    :meth:`parameter_specs` if they have parameters.  The network owns the
    parameter values and passes them in; randomness comes from ``rng``.
    """

    #: Input width, set by :meth:`build`.
    input_size = None

    def build(self, input_size):
        """Fix the input width; return the output width."""
        self.input_size = input_size
        return input_size

    def parameter_specs(self):
        """Parameters of the built layer, a list of :class:`ParamSpec`."""
        return []

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        """Return ``(output, cache)`` for input batch `x` of shape ``(n, input_size)``.

        `rng` is a ``numpy.random.Generator`` for layers that draw randomness in
        training (drawn on the host, so runs are identical across backends).
        """
        raise NotImplementedError

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        """Return ``(input_grad, param_grads)`` from ``grad = dL/d(output)``.

        `input_grad` may be ``None`` when `need_input_grad` is false;
        `param_grads` is a tuple in the order of :meth:`parameter_specs`.
        """
        raise NotImplementedError

    @property
    def output_size(self):
        return getattr(self, "_output_size", None)


class Dense(Layer):
    """Fully connected layer ``activation(x @ W + b)`` with ``W`` of shape ``(inputs, units)``.

    Parameters
    ----------
    units : int
        Number of outputs.
    activation : str, Activation or None
        Registered name, instance, or ``None`` for identity.
    kernel_initializer : str or Initializer, optional
        Defaults to He uniform for ReLU-like activations and Glorot uniform otherwise.
    bias_initializer : str or Initializer, optional
        Defaults to the constant 0.01 for ReLU-like activations (keeps units of
        deep narrow stacks alive at the start) and zeros otherwise.
    """

    name = "dense"

    def __init__(self, units, activation=None, *, kernel_initializer=None,
                 bias_initializer=None):
        from . import registry

        self.units = _validate.positive_int("units", units)
        self.activation = registry.get_activation(activation)
        self.kernel_initializer = registry.get_initializer(
            kernel_initializer if kernel_initializer is not None
            else _default_kernel_initializer(self.activation))
        self.bias_initializer = registry.get_initializer(
            bias_initializer if bias_initializer is not None
            else _default_bias_initializer(self.activation))

    def get_config(self):
        from .registry import to_config

        return {"units": self.units, "activation": to_config(self.activation),
                "kernel_initializer": to_config(self.kernel_initializer),
                "bias_initializer": to_config(self.bias_initializer)}

    def build(self, input_size):
        self.input_size = input_size
        self._output_size = self.units
        return self.units

    def parameter_specs(self):
        return [ParamSpec("W", (self.input_size, self.units), self.kernel_initializer,
                          regularized=True),
                ParamSpec("b", (self.units,), self.bias_initializer, regularized=False)]

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        W, b = params
        z = x @ W + b
        a = self.activation.forward(z, xp=xp)
        return a, (x, z, a)

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        x, z, a = cache
        delta = self.activation.backward(z, a, grad, xp=xp)
        return self.backward_delta(params, cache, delta, xp=xp, need_input_grad=need_input_grad)

    def backward_delta(self, params, cache, delta, /, *, xp, need_input_grad=True):
        """Backward pass from ``delta = dL/dz``, the gradient at the pre-activations."""
        W, _ = params
        x = cache[0]
        grad_W = x.T @ delta
        grad_b = xp.sum(delta, axis=0)
        grad_in = delta @ W.T if need_input_grad else None
        return grad_in, (grad_W, grad_b)

    def __repr__(self):
        return (f"Dense(units={self.units}, activation={self.activation.name!r}"
                + (f", input_size={self.input_size}" if self.input_size else "") + ")")


_RECTIFIERS = ("relu", "leaky_relu")


def _default_kernel_initializer(activation):
    # He for rectifiers (keeps the variance of deep ReLU stacks), Glorot otherwise.
    return "he_uniform" if activation.name in _RECTIFIERS else "glorot_uniform"


def _default_bias_initializer(activation):
    # A small positive bias keeps ReLU units active at the start: with zero biases
    # the 28-layer, 14-wide seed net died in one of five seeds (test accuracy 0.25);
    # with 0.01 all five train (median 0.919, and 0.945 / 0.943 for the other nets).
    if activation.name in _RECTIFIERS:
        return {"name": "constant", "config": {"value": 0.01}}
    return "zeros"


BUILTINS = {cls.name: cls for cls in (Dense,)}
