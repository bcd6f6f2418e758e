"""The losses of scikit-learn's MLP, with its scaling, for :mod:`polymlp.sklearn`.

scikit-learn's squared error is half the mean squared error, its multilabel
log-loss sums over labels (mean over rows), and its Poisson loss is the half
deviance summed over outputs with an exponential output.  The estimators
train with these so that ``tol``, ``alpha`` and ``loss_curve_`` mean what
they mean in scikit-learn.

Every loss here takes ``sample_weight``: per-row weights scaled to sum to
the batch's row count (``Network.fit(sample_weight=...)`` does that), so the
weighted loss is ``sum(c_i * l_i) / n`` and its gradient the rows of the
unweighted one times ``c_i``.
"""

from __future__ import annotations

from .activations import ElementwiseActivation, Sigmoid, Softmax, log_softmax
from .losses import Loss


def _weigh(rows, sample_weight, xp):
    """Mean over rows of the per-row values `rows` (shape ``(n,)``), weighted when asked."""
    if sample_weight is not None:
        rows = rows * xp.reshape(sample_weight, (-1,))
    return xp.sum(rows) / rows.shape[0]


def _scale(grad, sample_weight):
    return grad if sample_weight is None else grad * sample_weight


def _clip(p, xp):
    eps = float(xp.finfo(p.dtype).eps)
    return xp.clip(p, eps, 1.0 - eps)


class Exp(ElementwiseActivation):
    """``exp(z)``: the output activation of Poisson regression (the log link)."""

    name = "exp"

    def value(self, z, /, *, xp):
        return xp.exp(z)

    def derivative(self, z, /, *, xp):
        return xp.exp(z)

    def backward(self, z, a, grad, /, *, xp):
        return grad * a


class HalfSquaredError(Loss):
    """scikit-learn's ``squared_error``: ``0.5 * mean((y_hat - y) ** 2)`` over all elements."""

    name = "half_squared_error"

    def value(self, y_hat, y, /, *, xp, sample_weight=None):
        d = y_hat - y
        return 0.5 * _weigh(xp.mean(d * d, axis=1), sample_weight, xp)

    def gradient(self, y_hat, y, /, *, xp, sample_weight=None):
        return _scale((y_hat - y) / (y.shape[0] * y.shape[1]), sample_weight)

    def output_value(self, z, y_hat, y, activation, /, *, xp, sample_weight=None):
        return self.value(y_hat, y, xp=xp, sample_weight=sample_weight)

    def output_delta(self, z, y_hat, y, activation, /, *, xp, sample_weight=None):
        grad = self.gradient(y_hat, y, xp=xp, sample_weight=sample_weight)
        return activation.backward(z, y_hat, grad, xp=xp)


class LogLoss(Loss):
    """scikit-learn's ``log_loss``: cross-entropy of a softmax output, or the
    binary log-loss of sigmoid outputs summed over labels; mean over rows."""

    name = "sklearn_log_loss"
    classification = True

    def __init__(self, binary=False):
        #: Independent binary log-losses (sigmoid outputs: binary and multilabel y).
        self.binary = bool(binary)

    def value(self, y_hat, y, /, *, xp, sample_weight=None):
        p = _clip(y_hat, xp)
        if self.binary:
            rows = -xp.sum(y * xp.log(p) + (1.0 - y) * xp.log(1.0 - p), axis=1)
        else:
            rows = -xp.sum(y * xp.log(p), axis=1)
        return _weigh(rows, sample_weight, xp)

    def gradient(self, y_hat, y, /, *, xp, sample_weight=None):
        p = _clip(y_hat, xp)
        g = (p - y) / (p * (1.0 - p)) if self.binary else -y / p
        return _scale(g / y.shape[0], sample_weight)

    def output_value(self, z, y_hat, y, activation, /, *, xp, sample_weight=None):
        if isinstance(activation, Softmax):
            return _weigh(-xp.sum(y * log_softmax(z, xp=xp), axis=1), sample_weight, xp)
        if isinstance(activation, Sigmoid):
            # log(1 + exp(-|z|)) + max(z, 0) - z * y: never overflows.
            terms = xp.maximum(z, 0.0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
            return _weigh(xp.sum(terms, axis=1), sample_weight, xp)
        return self.value(y_hat, y, xp=xp, sample_weight=sample_weight)

    def output_delta(self, z, y_hat, y, activation, /, *, xp, sample_weight=None):
        if isinstance(activation, (Softmax, Sigmoid)):  # canonical links: (p - y) / n
            return _scale((y_hat - y) / y.shape[0], sample_weight)
        grad = self.gradient(y_hat, y, xp=xp, sample_weight=sample_weight)
        return activation.backward(z, y_hat, grad, xp=xp)


class PoissonLoss(Loss):
    """scikit-learn's ``poisson``: half Poisson deviance summed over outputs, mean over rows.

    ``y log(y / y_hat) - y + y_hat`` per element (0 log 0 = 0); with the
    :class:`Exp` output its gradient at the pre-activations is ``(y_hat - y) / n``.
    """

    name = "sklearn_poisson"

    def value(self, y_hat, y, /, *, xp, sample_weight=None):
        tiny = float(xp.finfo(y_hat.dtype).smallest_normal)
        safe_y = xp.where(y > 0, y, 1.0)
        xlogy = xp.where(y > 0, y * xp.log(safe_y / xp.maximum(y_hat, tiny)), 0.0)
        return _weigh(xp.sum(xlogy - y + y_hat, axis=1), sample_weight, xp)

    def gradient(self, y_hat, y, /, *, xp, sample_weight=None):
        tiny = float(xp.finfo(y_hat.dtype).smallest_normal)
        return _scale((1.0 - y / xp.maximum(y_hat, tiny)) / y.shape[0], sample_weight)

    def output_value(self, z, y_hat, y, activation, /, *, xp, sample_weight=None):
        return self.value(y_hat, y, xp=xp, sample_weight=sample_weight)

    def output_delta(self, z, y_hat, y, activation, /, *, xp, sample_weight=None):
        if isinstance(activation, Exp):
            return _scale((y_hat - y) / y.shape[0], sample_weight)
        grad = self.gradient(y_hat, y, xp=xp, sample_weight=sample_weight)
        return activation.backward(z, y_hat, grad, xp=xp)
