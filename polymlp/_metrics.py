"""What ``fit`` and ``evaluate`` report besides the loss: accuracy or R^2, as 0-d arrays."""

from __future__ import annotations


def variance(y, /, *, xp):
    """Per-output variance of `y` (the reference for a regressor's batch R^2)."""
    return xp.mean((y - xp.mean(y, axis=0)) ** 2, axis=0)


def labels(out, /, *, xp):
    """Class labels from outputs: a threshold at 0.5 for one unit, else the argmax."""
    if out.shape[1] == 1:
        info = xp.__array_namespace_info__()
        index = info.default_dtypes(device=out.device)["indexing"]
        return xp.astype(out[:, 0] > 0.5, index)
    return xp.argmax(out, axis=1)


def accuracy(out, y, /, *, xp):
    """Fraction of rows whose predicted class is the target's."""
    if out.shape[1] == 1:  # one sigmoid unit: threshold at 0.5
        hits = (out > 0.5) == (y > 0.5)
    else:
        hits = xp.argmax(out, axis=1) == xp.argmax(y, axis=1)
    return xp.mean(xp.astype(hits, out.dtype))


def r2_score(y_hat, y, /, *, xp, y_var=None):
    """Coefficient of determination, averaged uniformly over outputs (as scikit-learn).

    `y_var` replaces the variance of `y` by a reference one (a training set's):
    a regressor's batch score ``1 - MSE(batch) / y_var`` then averages, weighted
    by batch size, to the epoch's R^2, even for batches of one row.
    """
    ss_res = xp.sum((y - y_hat) ** 2, axis=0)
    ss_tot = xp.sum((y - xp.mean(y, axis=0)) ** 2, axis=0)
    if y_var is not None:  # against a reference variance (the whole training set's)
        ss_tot = y_var * y.shape[0]
    safe = xp.where(ss_tot > 0, ss_tot, 1.0)
    # A constant target scores 1 when predicted exactly and 0 otherwise (as scikit-learn).
    constant = xp.astype(ss_res == 0, ss_res.dtype)
    return xp.mean(xp.where(ss_tot > 0, 1.0 - ss_res / safe, constant))


def metric(out, y, /, *, xp, classification, y_var=None):
    """Accuracy for classifiers, R^2 for regressors."""
    if classification:
        return accuracy(out, y, xp=xp)
    return r2_score(out, y, xp=xp, y_var=y_var)
