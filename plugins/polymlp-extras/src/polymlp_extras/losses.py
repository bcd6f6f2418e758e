"""Losses: Huber and (multi-class) hinge, as ``torch.nn.functional``."""

import math

from polymlp import Loss, checks


def _size(a):
    return math.prod(a.shape)


class Huber(Loss):
    """Huber loss, mean over all elements (``torch.nn.functional.huber_loss``).

    ``0.5 d**2`` where ``|d| <= delta``, else ``delta * (|d| - 0.5 delta)``,
    with ``d = y_hat - y``: squared error near the target, absolute error far
    from it (robust to outliers).

    Parameters
    ----------
    delta : float, default 1.0
    """

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = checks.positive_float("delta", delta)

    def value(self, y_hat, y, /, *, xp):
        d = y_hat - y
        a = xp.abs(d)
        return xp.mean(xp.where(a <= self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta)))

    def gradient(self, y_hat, y, /, *, xp):
        d = y_hat - y
        clipped = xp.where(xp.abs(d) <= self.delta, d, self.delta * xp.sign(d))
        return clipped / _size(y)


class Hinge(Loss):
    """Hinge loss for classification: raw scores, one-hot or 0/1 targets.

    With ``k > 1`` outputs and one-hot targets, the multi-class hinge of
    ``torch.nn.functional.multi_margin_loss``: for each sample,
    ``sum over wrong classes i of max(0, margin - s_true + s_i) / k``, mean
    over the batch.  With one output and targets in {0, 1}, the binary hinge
    ``mean(max(0, margin - t * s))`` with ``t = 2 y - 1``.  Pair it with the
    ``identity`` output activation. (The network reports the accuracy of a
    one-output classifier by thresholding at 0.5, so prefer two outputs.)

    Parameters
    ----------
    margin : float, default 1.0
    """

    name = "hinge"
    classification = True

    def __init__(self, margin=1.0):
        self.margin = checks.positive_float("margin", margin)

    def _violations(self, y_hat, y, xp):
        if y_hat.shape[-1] == 1:
            t = 2.0 * y - 1.0
            return self.margin - t * y_hat, t
        true_score = xp.sum(y * y_hat, axis=-1, keepdims=True)
        return self.margin - true_score + y_hat, None

    def value(self, y_hat, y, /, *, xp):
        v, t = self._violations(y_hat, y, xp)
        hinge = xp.maximum(v, 0.0)
        if t is not None:
            return xp.mean(hinge)
        return xp.sum((1.0 - y) * hinge) / _size(y)

    def gradient(self, y_hat, y, /, *, xp):
        v, t = self._violations(y_hat, y, xp)
        if t is not None:
            return xp.where(v > 0, -t, 0.0) / _size(y)
        active = (1.0 - y) * xp.astype(v > 0, y_hat.dtype)
        # Each active wrong class pushes its own score up and the true score down.
        return (active - y * xp.sum(active, axis=-1, keepdims=True)) / _size(y)
