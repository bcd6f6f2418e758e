"""Layer types.

A layer declares its parameters (:meth:`Layer.parameter_specs`: name, shape,
initializer) and implements a pure ``forward`` that returns its output and a
cache, and a ``backward`` that returns the input gradient and the parameter
gradients.  The network owns the parameter values (views of one flat
vector) and hands them in as a tuple, in the order of the specs.
"""

from dataclasses import dataclass, replace

from . import _kinds, _validate, registry
from ._config import Configurable
from ._kernels import kernel


@dataclass(frozen=True)
class ParamSpec:
    """One trainable parameter of a layer.

    Parameters
    ----------
    name : str
        The parameter's name within its layer (``"W"``); saved files call it
        ``layers.<i>.<name>``.
    shape : tuple of int
    initializer : Initializer, str or dict
        An instance, a registered initializer name (``"he_uniform"``) or a
        ``{"name": ..., "config": ...}`` dict; checked when the layer is stacked.
    regularized : bool, optional
        Whether the network's L2 penalty (``Network(alpha=...)``) applies to it;
        None (the default) means "when it is a matrix" (weights yes, biases and
        per-feature gains no).
    """

    name: str
    shape: tuple
    initializer: object
    regularized: object = None

    @property
    def penalized(self):
        """Whether the L2 penalty applies (`regularized`, or a shape of 2+ axes)."""
        return len(self.shape) >= 2 if self.regularized is None else bool(self.regularized)


def check_param_spec(spec, layer, index):
    """`spec` with its initializer resolved; a clear error for anything invalid.

    Called for every parameter when a layer is stacked, so a bad spec fails
    at ``stack()``/``output()`` and names the layer, the parameter and the fix.
    """
    where = f"layer {index} ({type(layer).__name__})"
    if not isinstance(spec, ParamSpec):
        raise TypeError(f"{where}.parameter_specs() must return ParamSpec objects; got "
                        f"{spec!r} of type {type(spec).__name__}. Return "
                        f"[pm.ParamSpec(name, shape, initializer), ...].")
    if not isinstance(spec.name, str) or not spec.name.isidentifier():
        raise ValueError(f"{where}: ParamSpec `name` must be an identifier such as 'W'; got "
                         f"{spec.name!r}.")
    shape = spec.shape
    if not (isinstance(shape, (tuple, list)) and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ValueError(f"{where}: ParamSpec {spec.name!r} `shape` must be a tuple of "
                         f"non-negative ints; got {shape!r}. Build it from input_size and "
                         f"your layer's settings, e.g. (self.input_size, self.units).")
    init = spec.initializer
    base = _kinds.base("initializers")
    if not isinstance(init, base):
        try:
            init = registry.get_initializer(init)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{where}: ParamSpec {spec.name!r} has initializer {init!r}, which is not "
                f"an initializer. Allowed: an Initializer instance, a registered name (one "
                f"of {', '.join(registry.names('initializers'))}) or a "
                f"{{'name': ..., 'config': ...}} dict. ({exc})") from exc
    if init is spec.initializer and tuple(shape) == shape:
        return spec
    return replace(spec, shape=tuple(shape), initializer=init)


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

    #: Optional in-place kernels (see :mod:`polymlp._kernels`), used on writable
    #: backends only: ``forward_inplace`` takes the arguments of :meth:`forward`
    #: and ``backward_inplace(params, cache, grad, grads, /, *, xp, ops,
    #: need_input_grad, is_delta, owned)`` writes the parameter gradients into
    #: the views `grads` and returns the input gradient. ``None``: not offered.
    forward_inplace = None
    backward_inplace = None

    #: Optional, for layers that are random in training (dropout):
    #: ``draw_noise(rng, rows) -> host array or None`` draws one training batch's
    #: randomness from the network's ``numpy.random.Generator``, and the engine
    #: passes it (on the backend) to ``forward(..., noise=...)``. Drawn on the host,
    #: it is the same on every backend, and a compiled step takes it as data.
    draw_noise = None


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
        self.units = _validate.positive_int("units", units)
        self.activation = registry.get_activation(activation)
        self.kernel_initializer = registry.get_initializer(
            kernel_initializer if kernel_initializer is not None
            else _default_kernel_initializer(self.activation))
        self.bias_initializer = registry.get_initializer(
            bias_initializer if bias_initializer is not None
            else _default_bias_initializer(self.activation))

    def get_config(self):
        to_config = registry.to_config
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

    # --- in-place kernels (writable backends; the same numbers as the methods above) ---

    def linear_inplace(self, params, x, /, *, xp):
        """The pre-activations ``x @ W + b``, with the bias added in place."""
        W, b = params
        z = x @ W
        z += b
        return z

    @property
    def activation(self):
        return self._activation

    @activation.setter
    def activation(self, activation):
        # The activation's in-place kernels, looked up once per activation (per step
        # lookups would cost more than some small layers' math).
        self._activation = activation
        self._act_forward_inplace = kernel(activation, "forward_inplace")
        self._act_backward_inplace = kernel(activation, "backward_inplace")

    def forward_inplace(self, params, x, /, *, xp, training=False, rng=None):
        W, b = params
        z = x @ W  # linear_inplace, inlined: this runs per layer per step
        z += b
        act = self._act_forward_inplace
        if act is None:
            a = self.activation.forward(z, xp=xp)
            return a, (x, z, a)
        a = act(z, xp=xp)
        return a, (x, a, a)  # z may be gone: the activation's kernel allows a in its place

    def backward_inplace(self, params, cache, grad, grads, /, *, xp, ops, need_input_grad=True,
                         is_delta=False, owned=True):
        """:meth:`backward` (or :meth:`backward_delta` when `is_delta`) writing ``dW``
        and ``db`` into the views `grads`; `grad` may be overwritten when `owned`."""
        x, z, a = cache
        if is_delta:
            delta = grad
        else:
            act = self._act_backward_inplace if owned else None
            delta = (act(z, a, grad, xp=xp) if act is not None
                     else self.activation.backward(z, a, grad, xp=xp))
        xp.matmul(x.T, delta, out=grads[0])
        ops.sum(delta, axis=0, out=grads[1])
        return delta @ params[0].T if need_input_grad else None

    def __repr__(self):
        return (f"Dense(units={self.units}, activation={self.activation.name!r}"
                + (f", input_size={self.input_size}" if self.input_size else "") + ")")

    def to_onnx(self, builder, input_name, params):
        """ONNX mapping (see :mod:`polymlp.onnx`): ``Gemm(x, W, b)``, then the activation's."""
        W, b = params
        z = builder.node("Gemm", [input_name, builder.constant(W, "W"), builder.constant(b, "b")])
        return builder.activation(self.activation, z)


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
_kinds.declare("layers", Layer, BUILTINS)
