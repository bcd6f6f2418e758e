"""Layer types: dropout and layer normalisation.

A layer declares its parameters (:meth:`parameter_specs`), builds for an
input width, and implements a pure ``forward`` returning ``(output, cache)``
and a ``backward`` returning ``(input_grad, param_grads)``; the network owns
the parameter values and hands them in as a tuple.
"""

from polymlp import Layer, ParamSpec, checks, registry


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability `rate`
    and scale the rest by ``1 / (1 - rate)``; the identity at inference.

    The mask is drawn on the host from the network's ``numpy.random.Generator``
    (:meth:`draw_noise`), so a seed gives the same masks, and the same training
    run, on every backend; the network hands it to :meth:`forward` as data, so
    a compiled training step (JAX) takes a fresh mask every step.  As
    ``torch.nn.functional.dropout`` except for the source of randomness.

    Parameters
    ----------
    rate : float in [0, 1), default 0.5
    """

    name = "dropout"

    def __init__(self, rate=0.5):
        self.rate = checks.unit_interval("rate", rate, hint="It is the fraction of inputs "
                                         "dropped in training.")

    def build(self, input_size):
        self.input_size = input_size
        return input_size

    def draw_noise(self, rng, rows):
        """The scaled keep-mask of one training batch of `rows` rows (host array)."""
        if self.rate == 0.0:
            return None
        return self._mask(rng, (rows, self.input_size))

    def _mask(self, rng, shape):
        keep = rng.random(shape) >= self.rate  # a host draw: identical on every backend
        return keep / (1.0 - self.rate)

    def forward(self, params, x, /, *, xp, training=False, rng=None, noise=None):
        if not training or self.rate == 0.0:
            return x, None
        if noise is None:  # called on its own, not by a network: draw the mask here
            if rng is None:
                raise ValueError("Dropout in training needs `rng`, the network's "
                                 "numpy.random.Generator, or `noise` from draw_noise().")
            noise = xp.asarray(self._mask(rng, tuple(x.shape)), dtype=x.dtype, device=x.device)
        return x * noise, noise

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        mask = cache
        return (grad if mask is None else grad * mask), ()

    def __repr__(self):
        return f"Dropout(rate={self.rate})"

    def to_onnx(self, builder, input_name, params):
        """ONNX mapping (see ``polymlp.onnx``): ``Identity``, as dropout is at inference."""
        return builder.node("Identity", [input_name])


class LayerNorm(Layer):
    """Layer normalisation over the features (Ba et al. 2016), as ``torch.nn.LayerNorm``.

    ``y = (x - mean) / sqrt(var + epsilon) * gain + bias`` per sample, with the
    biased variance; ``gain`` starts at ones and ``bias`` at zeros, both learnt.

    Parameters
    ----------
    epsilon : float, default 1e-5
    """

    name = "layer_norm"

    def __init__(self, epsilon=1e-5):
        self.epsilon = checks.positive_float("epsilon", epsilon)

    def build(self, input_size):
        self.input_size = input_size
        return input_size

    def parameter_specs(self):
        ones = registry.get_initializer({"name": "constant", "config": {"value": 1.0}})
        zeros = registry.get_initializer("zeros")
        return [ParamSpec("gain", (self.input_size,), ones),
                ParamSpec("bias", (self.input_size,), zeros)]

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        gain, bias = params
        centred = x - xp.mean(x, axis=-1, keepdims=True)
        rstd = 1.0 / xp.sqrt(xp.mean(centred * centred, axis=-1, keepdims=True) + self.epsilon)
        x_hat = centred * rstd
        return x_hat * gain + bias, (x_hat, rstd)

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        gain, _ = params
        x_hat, rstd = cache
        grad_gain = xp.sum(grad * x_hat, axis=0)
        grad_bias = xp.sum(grad, axis=0)
        grad_in = None
        if need_input_grad:
            g = grad * gain
            # d/dx of the normalisation: remove the mean and the component along x_hat.
            grad_in = rstd * (g - xp.mean(g, axis=-1, keepdims=True)
                              - x_hat * xp.mean(g * x_hat, axis=-1, keepdims=True))
        return grad_in, (grad_gain, grad_bias)

    def __repr__(self):
        size = f", input_size={self.input_size}" if self.input_size else ""
        return f"LayerNorm(epsilon={self.epsilon}{size})"

    def to_onnx(self, builder, input_name, params):
        """ONNX mapping (see ``polymlp.onnx``): ``LayerNormalization`` over the last axis.

        Needs opset 17. Its ``epsilon`` is a float32 attribute, which moves a
        float64 network's outputs by about ``1e-13`` relative.
        """
        builder.require_opset(17, "layer_norm's LayerNormalization")
        gain, bias = params
        return builder.node("LayerNormalization",
                            [input_name, builder.constant(gain, "gain"),
                             builder.constant(bias, "bias")], axis=-1, epsilon=self.epsilon)
