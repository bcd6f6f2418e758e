"""What the :class:`polymlp.callbacks.TensorBoard` callback does: TensorBoard event files.

The callback class itself is in :mod:`polymlp.callbacks` (this mixin plus the
``Callback`` base), so that this module needs nothing from it. Events are
written with tensorboardX's ``SummaryWriter``, imported when a callback is
created: ``import polymlp`` never imports it.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os

from ._callback import writes_files

_FILE_NUMBERS = itertools.count()


def _summary_writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError as exc:
        raise ImportError("The TensorBoard callback writes with tensorboardX: "
                          "pip install 'polymlp[tensorboard]'") from exc
    return SummaryWriter


class TensorBoardLogger:
    """Write training curves for TensorBoard (``tensorboard --logdir LOG_DIR``).

    At the end of every epoch, one scalar per tag at step = the epoch index
    (0-based, counting on across ``fit`` calls): ``loss``, ``accuracy`` (or
    ``r2`` for regressors), ``val_loss`` and ``val_accuracy`` (``val_r2``)
    when validation data is given (epochs without a validation are skipped),
    and ``learning_rate`` (the optimizer's ``learning_rate``, as a scheduler
    set it). These are the values of the epoch logs, the ones ``fit``'s
    :class:`~polymlp.History` holds for ``record="epoch"``.

    Parameters
    ----------
    log_dir : str or os.PathLike
        Directory of the event files (created if needed). Give each run its own
        sub-directory to compare runs side by side.
    update_freq : "epoch", "batch" or int, default "epoch"
        With an int N (``"batch"`` is 1), also ``batch_loss``, the loss of the
        minibatch, every N iterations at step = the iteration (1-based, the
        history's ``iteration``). Each costs one device synchronisation.

    Notes
    -----
    Needs ``fit(record="epoch")`` or ``record="iteration"`` (``record=None``
    computes no loss). Under MPI only rank 0 writes; create the callback on
    every rank, as for any callback. Needs tensorboardX
    (``pip install 'polymlp[tensorboard]'``).

    Examples
    --------
    >>> import polymlp as pm                                    # doctest: +SKIP
    >>> tb = pm.callbacks.TensorBoard("runs/14-100-40-4", update_freq=10)
    >>> net.fit(x, y, epochs=10, validation_data=(xv, yv), callbacks=[tb])
    """

    def __init__(self, log_dir, update_freq="epoch"):
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"`log_dir` must be a directory path (str or os.PathLike); got "
                            f"{log_dir!r} of type {type(log_dir).__name__}.")
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self.batch_loss_every = _batch_period(update_freq)
        # Host code runs only where batch_loss is written (Callback.host_every).
        self.host_every = self.batch_loss_every or "epoch"
        self._writer_class = _summary_writer_class()
        self.writer = None

    def check_logs(self, keys):
        if not keys:
            raise ValueError("TensorBoard writes what fit() records, and with record=None it "
                             "records nothing: pass record='epoch' (or 'iteration').")
        self._keys = list(keys)

    def on_train_begin(self, logs=None):
        # Under MPI, only rank 0 writes files (the same rule as ModelCheckpoint).
        if self.writer is None and writes_files(self):
            # One event file per fit(); the suffix keeps two fits started within the same
            # second (tensorboardX names files by the second) from overwriting each other.
            suffix = f".polymlp.{os.getpid()}.{next(_FILE_NUMBERS):06d}"
            self.writer = self._writer_class(logdir=self.log_dir, filename_suffix=suffix)

    def on_batch_end(self, iteration, logs=None):
        if self.writer is not None and logs and "loss" in logs:
            self.writer.add_scalar("batch_loss", logs["loss"], iteration)

    def on_epoch_end(self, epoch, logs=None):
        if self.writer is None:
            return
        logs = logs or {}
        for key in getattr(self, "_keys", ()):
            value = logs.get(key)
            if _finite(value):  # val_* are NaN in epochs without a validation
                self.writer.add_scalar(key, float(value), epoch)
        rate = getattr(getattr(self.network, "optimizer", None), "learning_rate", None)
        if _finite(rate):
            self.writer.add_scalar("learning_rate", float(rate), epoch)
        self.writer.flush()  # a crash later loses nothing written so far

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        """Flush and close the event file (``fit`` does it when training ends)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __repr__(self):
        return f"TensorBoard({self.log_dir!r}, update_freq={self.update_freq!r})"


def _finite(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _batch_period(update_freq):
    if update_freq == "epoch":
        return None
    if update_freq == "batch":
        return 1
    if isinstance(update_freq, numbers.Integral) and not isinstance(update_freq, bool) \
            and update_freq > 0:
        return int(update_freq)
    raise ValueError(f"`update_freq` must be 'epoch', 'batch' or a positive int N (write "
                     f"batch_loss every N iterations); got {update_freq!r}.")
