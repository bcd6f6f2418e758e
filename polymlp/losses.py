"""Loss functions: the mean loss of a batch and its gradient.

A loss implements ``value`` and ``gradient`` (with respect to the network's
output ``y_hat``).  Losses that pair with an output activation into a simpler,
more stable formula (softmax + cross-entropy, sigmoid + binary cross-entropy)
override ``output_value`` and ``output_delta``, which receive the
pre-activations ``z`` as well.
"""

from . import _kinds
from ._config import Configurable
from .activations import Sigmoid, Softmax, log_softmax

# Smallest probability fed to a log when a loss is not fused with its activation.
_EPS = 1e-12


def _clip_probability(p, xp):
    # 1 - 1e-12 rounds to 1 in float32: clip by the dtype's own epsilon instead.
    eps = float(xp.finfo(p.dtype).eps)
    return xp.clip(p, eps, 1.0 - eps)


def _size(a):
    n = 1
    for s in a.shape:
        n *= s
    return n


class Loss(Configurable):
    """Base class of losses (the plugin protocol; see CONTRIBUTING.md).

    Subclasses set ``name`` and implement :meth:`value` (the mean batch loss,
    a 0-d array) and :meth:`gradient` (with respect to ``y_hat``) with the
    namespace ``xp`` they are given; :meth:`output_value` and
    :meth:`output_delta` may fuse the loss with an output activation.

    Attributes
    ----------
    classification : bool
        True when targets are classes (accuracy is then the reported metric).
    """

    classification = False

    def value(self, y_hat, y, /, *, xp):
        """Mean loss of the batch, a 0-d array."""
        raise NotImplementedError

    def gradient(self, y_hat, y, /, *, xp):
        """Gradient of :meth:`value` with respect to `y_hat`."""
        raise NotImplementedError

    def output_value(self, z, y_hat, y, activation, /, *, xp):
        """Mean loss given the output layer's pre-activations `z` too."""
        return self.value(y_hat, y, xp=xp)

    def output_delta(self, z, y_hat, y, activation, /, *, xp):
        """Gradient of the mean loss with respect to the output pre-activations `z`."""
        return activation.backward(z, y_hat, self.gradient(y_hat, y, xp=xp), xp=xp)

    #: Optional in-place kernel (see :mod:`polymlp._kernels`), for the output
    #: activations listed in :attr:`inplace_activations`:
    #: ``output_inplace(z, y, activation, /, *, xp, ops, want_loss) -> (loss, y_hat,
    #: delta)`` overwrites `z`; `loss` is None unless `want_loss`, and `y_hat`
    #: too (it is then not needed). ``None``: not offered.
    output_inplace = None
    inplace_activations = ()


class CrossEntropy(Loss):
    """Categorical cross-entropy ``-sum(y * log(y_hat))``, mean over the batch.

    With a softmax output it is computed from the logits (log-sum-exp) and its
    gradient with respect to the logits is the fused ``(y_hat - y) / n``.
    """

    name = "cross_entropy"
    classification = True

    def value(self, y_hat, y, /, *, xp):
        logp = xp.log(xp.clip(y_hat, _EPS, 1.0))
        return -xp.sum(y * logp) / y.shape[0]

    def gradient(self, y_hat, y, /, *, xp):
        return -y / (xp.clip(y_hat, _EPS, 1.0) * y.shape[0])

    def output_value(self, z, y_hat, y, activation, /, *, xp):
        if isinstance(activation, Softmax):
            return -xp.sum(y * log_softmax(z, xp=xp)) / y.shape[0]
        return self.value(y_hat, y, xp=xp)

    def output_delta(self, z, y_hat, y, activation, /, *, xp):
        if isinstance(activation, Softmax):
            return (y_hat - y) / y.shape[0]
        return super().output_delta(z, y_hat, y, activation, xp=xp)

    inplace_activations = (Softmax,)

    def output_inplace(self, z, y, activation, /, *, xp, ops, want_loss=True):
        """Softmax and cross-entropy from the logits `z`, in place: the operations of
        ``Softmax.forward``, :meth:`output_value` and :meth:`output_delta`, in order."""
        n = y.shape[0]
        z -= ops.max(z, axis=-1, keepdims=True)  # the shifted logits of log_softmax
        if want_loss:
            e = xp.exp(z)
            s = ops.sum(e, axis=-1, keepdims=True)
            loss = -xp.sum(y * (z - xp.log(s))) / n
            e /= s
            delta = e - y
        else:  # nothing else needs the probabilities: reuse z's memory throughout
            loss = None
            e = xp.exp(z, out=z)
            e /= ops.sum(e, axis=-1, keepdims=True)
            e -= y
            delta, e = e, None
        delta /= n  # the fused gradient (y_hat - y) / n
        return loss, e, delta


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy, mean over all elements (for sigmoid outputs, multi-label too)."""

    name = "binary_cross_entropy"
    classification = True

    def value(self, y_hat, y, /, *, xp):
        p = _clip_probability(y_hat, xp)
        return -xp.mean(y * xp.log(p) + (1.0 - y) * xp.log(1.0 - p))

    def gradient(self, y_hat, y, /, *, xp):
        p = _clip_probability(y_hat, xp)
        return (p - y) / (p * (1.0 - p) * _size(y))

    def output_value(self, z, y_hat, y, activation, /, *, xp):
        if isinstance(activation, Sigmoid):
            # log(1 + exp(-|z|)) + max(z, 0) - z * y: never overflows.
            return xp.mean(xp.maximum(z, 0.0) - z * y + xp.log1p(xp.exp(-xp.abs(z))))
        return self.value(y_hat, y, xp=xp)

    def output_delta(self, z, y_hat, y, activation, /, *, xp):
        if isinstance(activation, Sigmoid):
            return (y_hat - y) / _size(y)
        return super().output_delta(z, y_hat, y, activation, xp=xp)


class MeanSquaredError(Loss):
    """Mean squared error, mean over all elements."""

    name = "mse"

    def value(self, y_hat, y, /, *, xp):
        d = y_hat - y
        return xp.mean(d * d)

    def gradient(self, y_hat, y, /, *, xp):
        return 2.0 * (y_hat - y) / _size(y)


class MeanAbsoluteError(Loss):
    """Mean absolute error, mean over all elements (subgradient 0 at equality)."""

    name = "mae"

    def value(self, y_hat, y, /, *, xp):
        return xp.mean(xp.abs(y_hat - y))

    def gradient(self, y_hat, y, /, *, xp):
        return xp.sign(y_hat - y) / _size(y)


BUILTINS = {cls.name: cls for cls in (CrossEntropy, BinaryCrossEntropy, MeanSquaredError,
                                      MeanAbsoluteError)}
_kinds.declare("losses", Loss, BUILTINS)
