"""The callback base class, when callbacks need the host, and checkpoint writing.

Kept apart from :mod:`polymlp.callbacks` so that callbacks living in their own
modules (:mod:`polymlp.backup`) can subclass :class:`Callback` while
``polymlp.callbacks`` re-exports them, without an import cycle.
"""

from __future__ import annotations

import math
import numbers

from . import _modelfile, _resume


class Callback:
    """Base class of callbacks: every hook does nothing. See :mod:`polymlp.callbacks`.

    Attributes
    ----------
    host_every : None, "epoch" or int
        Where this callback needs the network's exact state between steps. A
        loop that runs several steps in one compiled call ends a call at each
        of these boundaries. ``"epoch"``: epoch boundaries only; an int ``N``:
        after every iteration whose 1-based count (``network.iterations``) is a
        multiple of ``N``, and at epoch boundaries; None (the default): every
        batch when ``on_batch_begin`` or ``on_batch_end`` is overridden, else
        ``"epoch"``. A callback that overrides a batch hook but acts only every
        ``N`` iterations declares ``host_every = N``, so that the other
        iterations can run without the host. When some callback needs batch
        hooks, they are called for every step, in order; those of the steps
        inside a compiled call run after it, when the network holds the
        call's last state (exact at the boundaries the call ended on).
    runs_between_steps : bool
        False: the batch hooks only report (a progress bar) and never need the
        network's state between steps: they are called for every step, after
        the compiled call holding it, and `host_every` is not consulted (they
        never end a compiled call). Default True.
    """

    network = None
    params = None
    host_every = None
    runs_between_steps = True

    def set_network(self, network):
        self.network = network

    def set_params(self, params):
        self.params = params

    def check_logs(self, keys):
        """Raise ``ValueError`` now if a key this callback needs will not be logged."""

    def on_train_begin(self, logs=None):
        """Called once when ``fit`` starts training (after every argument was checked)."""

    def on_train_end(self, logs=None):
        """Called once when training ends normally (``logs``: the last epoch's logs)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of each epoch with its logs (host floats)."""

    def on_batch_begin(self, iteration, logs=None):
        """Called before each minibatch step."""

    def on_batch_end(self, iteration, logs=None):
        """Called after each minibatch step (logs: ``epoch``, ``batch``, ``size``)."""


def _overrides(cb, method):
    return getattr(type(cb), method) is not getattr(Callback, method)


def has_batch_hooks(cb):
    """Whether `cb` overrides ``on_batch_begin`` or ``on_batch_end``."""
    return _overrides(cb, "on_batch_begin") or _overrides(cb, "on_batch_end")


def writes_files(cb):
    """Whether `cb` writes files in this ``fit`` (only rank 0 does under MPI)."""
    return (cb.params or {}).get("writes_files", True)


def reports_steps(cb):
    """Whether `cb`'s batch hooks only report (see :attr:`Callback.runs_between_steps`)."""
    return not getattr(cb, "runs_between_steps", True) and has_batch_hooks(cb)


def host_every(cb):
    """`cb`'s declared :attr:`Callback.host_every`, resolved: ``"epoch"`` or an int."""
    if not getattr(cb, "runs_between_steps", True):
        return "epoch"  # reporting hooks: they run after compiled calls, never end one
    declared = getattr(cb, "host_every", None)
    if declared is None:
        return 1 if has_batch_hooks(cb) else "epoch"
    if declared != "epoch" and (isinstance(declared, bool) or not isinstance(
            declared, numbers.Integral) or declared < 1):
        raise ValueError(f"{type(cb).__name__}.host_every must be None, 'epoch' or a positive "
                         f"number of iterations; got {declared!r}.")
    return declared if declared == "epoch" else int(declared)


def host_every_all(callbacks):
    """The iterations between host boundaries that `callbacks` need together.

    ``"epoch"`` when none needs the host inside epochs, else the greatest
    common divisor of their periods (1: every batch).
    """
    periods = [p for p in map(host_every, callbacks) if p != "epoch"]
    return math.gcd(*periods) if periods else "epoch"


def check_save_freq(save_freq):
    """`save_freq` of a checkpointing callback: ``"epoch"`` or a positive int."""
    if save_freq == "epoch":
        return save_freq
    if isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral) \
            or save_freq < 1:
        raise ValueError(f"`save_freq` must be 'epoch' or a positive number of iterations "
                         f"(e.g. save_freq=500); got {save_freq!r}.")
    return int(save_freq)


def save_file(network, path, include_optimizer=True, extra=None, version=None,
              history=False, writes=True):
    """Save `network` from a callback: the same position on every MPI rank, rank 0 writes.

    Every rank calls this at the same batch (callbacks run on every rank), so
    the epoch's pending values are summed over ranks before rank 0 writes them.
    `writes` is False on the ranks that do not write (see :func:`writes_files`).
    Returns whether this process wrote the file.
    """
    cursor = getattr(network, "_cursor", None)
    position = _resume.capture(cursor, network.xp, collective=True) if include_optimizer \
        else None
    if history:
        extra = {**(extra or {}), "history": _resume.history_rows(
            cursor.history if cursor is not None else None)}
    if not writes:
        return False  # another MPI rank than 0: rank 0 writes the same state
    _modelfile._save(network, path, include_optimizer, cursor=position, extra=extra,
                     version=version)
    return True
