"""Sample weights (``fit(sample_weight=...)``): a column riding along with the targets.

``fit`` appends the checked weights to the targets as one more column, so they
are shuffled and batched with them by the same code; the engine splits them
off again (:func:`split_weights`) for the loss, which takes them as
``sample_weight``, and leaves them out of metrics.
"""

from __future__ import annotations

import inspect

import numpy

from . import data


def split_weights(y, width, xp):
    """``(targets, weights)``: `y` and None, or, when `y` carries a weight column, its
    `width` target columns and the weights scaled to sum to its rows."""
    if y.shape[1] == width:
        return y, None
    w = y[:, -1:]
    return y[:, :width], w * (y.shape[0] / safe_total(w, xp))


def weight_total(y, width, xp):
    """The sum of the batch's weights (the L2 penalty's divisor), or None when unweighted."""
    return None if y.shape[1] == width else safe_total(y[:, -1], xp)


def safe_total(w, xp):
    total = xp.sum(w)
    return xp.where(total > 0, total, xp.ones_like(total))


def with_weights(net, Y, sample_weight, dp):
    """`Y` with the checked `sample_weight` of ``net.fit`` as one more column."""
    if dp is not None:
        raise ValueError("`sample_weight` is not supported with distributed training; "
                         "pass distributed=False, or repeat rows instead of weighting them.")
    for method in ("output_value", "output_delta"):
        if "sample_weight" not in inspect.signature(getattr(net.loss_fn, method)).parameters:
            raise TypeError(f"`sample_weight` needs a loss whose {method}() takes "
                            f"sample_weight; loss {net.loss_fn.name!r} does not.")
    w = data.host_array(sample_weight, "sample_weight")
    if w.shape != (Y.shape[0],):
        raise ValueError(f"`sample_weight` must have shape ({Y.shape[0]},), one weight per "
                         f"row; got shape {w.shape}.")
    w = w.astype(numpy.float64)
    if not numpy.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise ValueError("`sample_weight` must hold finite weights >= 0 with a positive "
                         f"sum; got values from {w.min():g} to {w.max():g}.")
    W = net.backend.asarray(data.flat_host([w], net.dtype_name))
    return net.xp.concat([Y, net.xp.reshape(W, (-1, 1))], axis=1)
