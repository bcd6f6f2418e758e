"""Callbacks: code run by :meth:`polymlp.Network.fit` at the boundaries of training.

The protocol
------------
A callback subclasses :class:`Callback` and overrides any of

- ``on_train_begin(logs)`` / ``on_train_end(logs)``
- ``on_epoch_begin(epoch, logs)`` / ``on_epoch_end(epoch, logs)``
- ``on_batch_begin(iteration, logs)`` / ``on_batch_end(iteration, logs)``

``epoch`` is the 0-based count of epochs the network had completed before
this one (it keeps counting across ``fit`` calls and after ``load``, so a
schedule resumes where it stopped); ``iteration`` is the 1-based count of
minibatches, the ``iteration`` column of the history.  ``self.network`` is
the network being trained and ``self.params`` holds ``epochs`` (the last
epoch of this call, exclusive), ``initial_epoch``, ``steps`` (batches per
epoch), ``samples``, ``batch_size``, ``shuffle`` and ``keys`` (what epoch logs
will hold).

``logs`` only ever hold host Python numbers, so a callback never forces a
device synchronisation.  Batch logs hold ``epoch``, ``batch`` (index within
the epoch) and ``size``; the batch loss is *not* included, because reading
it would sync the device on every batch.  Epoch logs hold what ``fit``
records (``record="iteration"`` or ``"epoch"``): ``loss`` and ``accuracy``
(or ``r2``) as means over the epoch, and ``val_loss`` and ``val_accuracy``
at the epoch's end when validation data is given; with ``record=None`` they
are empty.  Setting ``self.network.stop_training = True`` ends training
after the current batch.

A callback that sets the attribute ``batch_loss_every = N`` also gets the
batch loss, as a host float under ``loss``, in the batch logs of every N-th
iteration when ``fit`` records losses: one device synchronisation every N
iterations (under MPI, one allreduce of the loss, so every rank must hold
the same callbacks).

A callback may also define ``check_logs(keys)``, called before any work is
done, to refuse (``ValueError``) a configuration in which what it monitors
will never be logged.

Per-batch hooks cost nothing unless a callback overrides them.  A callback
declares how often it needs host code with ``host_every`` (``"epoch"``, or
every ``N`` iterations; by default every batch when it overrides a batch
hook): where the backend compiles (JAX), ``fit`` runs many steps in one
compiled call and ends a call at those iterations only (:class:`ModelCheckpoint`
and :class:`BackupAndRestore` with ``save_freq=N`` and :class:`TensorBoard` with
``update_freq=N`` declare ``host_every = N``).  Batch hooks are then called for
every step, in order; those of the steps inside a compiled call run after it.
A callback whose batch hooks only report sets ``runs_between_steps = False``
(as :class:`ProgressBar` does): it never ends a compiled call.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import os
import re
import string
import sys
import time

from . import _atomic, _callback, _validate
from ._callback import Callback, host_every_all, reports_steps, writes_files
from ._tensorboard import TensorBoardLogger as _TensorBoardLogger
from .backup import BackupAndRestore

log = logging.getLogger("polymlp")

__all__ = ["BackupAndRestore", "Callback", "EarlyStopping", "LearningRateScheduler",
           "ModelCheckpoint", "ProgressBar"]
__all__ += ["TensorBoard"]


class CallbackList:
    """The callbacks of one ``fit`` call, called in order (internal)."""

    def __init__(self, callbacks, network):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_network(network)
        #: Iterations between the boundaries where some callback needs the host
        #: ("epoch": none inside epochs); see Callback.host_every.
        self.host_every = host_every_all(self.callbacks)
        #: Whether batch hooks run (for every step; after a compiled chunk for the steps
        #: inside it): some callback needs the host inside epochs, or reports steps.
        self.batch_hooks = self.host_every != "epoch" or any(map(reports_steps,
                                                                 self.callbacks))
        # Periods (in iterations) at which a callback asked for the batch loss.
        self.batch_loss_every = sorted({cb.batch_loss_every for cb in self.callbacks
                                        if getattr(cb, "batch_loss_every", None)})

    def wants_batch_loss(self, iteration):
        """Whether the batch logs of `iteration` carry ``loss`` (see ``batch_loss_every``)."""
        return any(iteration % every == 0 for every in self.batch_loss_every)

    def __bool__(self):
        return bool(self.callbacks)

    def set_params(self, params):
        for cb in self.callbacks:
            cb.set_params(params)

    def check_logs(self, keys):
        for cb in self.callbacks:
            check = getattr(cb, "check_logs", None)
            if check is not None:
                check(keys)

    def _call(self, method, *args):
        for cb in self.callbacks:
            getattr(cb, method)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs if logs is not None else {})

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs if logs is not None else {})

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs if logs is not None else {})

    def on_epoch_end(self, epoch, logs):
        self._call("on_epoch_end", epoch, logs)

    def on_batch_begin(self, iteration, logs):
        self._call("on_batch_begin", iteration, logs)

    def on_batch_end(self, iteration, logs):
        self._call("on_batch_end", iteration, logs)

    def abort(self):
        """Training stopped on an exception: release what callbacks hold open (bars, event files)."""
        for cb in self.callbacks:
            if isinstance(cb, ProgressBar):
                cb.on_train_end({})
            elif isinstance(cb, TensorBoard):
                cb.close()  # writes the events still queued


def check_callbacks(callbacks):
    """The `callbacks` argument of ``fit`` as a list of :class:`Callback` (checked)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"`callbacks` must be a list of polymlp.callbacks.Callback instances; "
                        f"got {callbacks!r} of type {type(callbacks).__name__}.")
    for i, cb in enumerate(callbacks):
        if isinstance(cb, type) and issubclass(cb, Callback):
            raise TypeError(f"`callbacks[{i}]` is the class {cb.__name__}, not an instance; "
                            f"pass {cb.__name__}(...).")
        if not isinstance(cb, Callback):
            raise TypeError(f"`callbacks[{i}]` must be a polymlp.callbacks.Callback instance; "
                            f"got {cb!r} of type {type(cb).__name__}. Subclass Callback and "
                            f"override its on_* methods.")
    return list(callbacks)


def log_keys(record, metric, validation):
    """Keys that epoch logs will hold for these ``fit`` settings."""
    if record is None:
        return []
    keys = ["loss", metric]
    if validation:
        keys += ["val_loss", f"val_{metric}"]
    return keys


def epoch_logs(history, record, rows, sizes, metric):
    """Host-float logs of the epoch just recorded in `history` (its last `rows` rows)."""
    if record is None or rows == 0 or len(history) == 0:
        return {}
    cols = history.columns
    if record == "epoch":
        return {k: v[-1] for k, v in cols.items() if k != history.step and v}
    total = sum(sizes)
    logs = {}
    for key in ("loss", metric):
        if key in cols:
            values = cols[key][-rows:]
            logs[key] = sum(v * s for v, s in zip(values, sizes)) / total
    for key in ("val_loss", f"val_{metric}"):
        if key in cols:
            done = [v for v in cols[key][-rows:] if not math.isnan(v)]
            logs[key] = done[-1] if done else math.nan
    return logs


# --- built-ins ----------------------------------------------------------------------

def _mode(monitor, mode):
    _validate.choice("mode", mode, ("auto", "min", "max"))
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.endswith("r2")) else "min"
    return mode


def _check_monitor(owner, monitor, keys):
    if monitor not in keys:
        if not keys:
            fix = "fit() records nothing with record=None: pass record='epoch' (or 'iteration')."
        elif monitor.startswith("val_"):
            fix = "pass validation_data=(x_val, y_val) to fit()."
        else:
            fix = f"monitor one of {keys}."
        raise ValueError(f"{owner} monitors {monitor!r}, which fit() will not log (it logs "
                         f"{keys}); {fix}")


class _Monitor:
    """Tracks the best value of a monitored log key."""

    def __init__(self, monitor, mode, min_delta):
        if not isinstance(monitor, str):
            raise TypeError(f"`monitor` must be a log key such as 'val_loss'; got {monitor!r}.")
        self.monitor = monitor
        self.mode = _mode(monitor, mode)
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real):
            raise TypeError(f"`min_delta` must be a non-negative number; got {min_delta!r}.")
        if not (min_delta >= 0 and math.isfinite(min_delta)):
            raise ValueError(f"`min_delta` must be a non-negative, finite number; got "
                             f"{min_delta!r}.")
        self.min_delta = float(min_delta)
        self.reset()

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop training when a monitored value stops improving.

    Parameters
    ----------
    monitor : str, default "val_loss"
        An epoch log key: ``"loss"``, ``"accuracy"``, ``"val_loss"``, ``"val_accuracy"``...
    patience : int, default 0
        Number of consecutive epochs without improvement after which training
        stops, as in Keras: ``patience=3`` stops at the end of the 3rd epoch in
        a row that does not improve (0 and 1 both stop at the first one).
    min_delta : float, default 0
        Smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        ``"auto"`` maximises accuracy and R^2 and minimises everything else.
    restore_best_weights : bool, default False
        When training ends (stopped early or not), put back the weights of
        the best epoch. The optimizer state is kept as it is.
    verbose : int, default 0
        At 1 or more, write a line (to stderr) when training is stopped and
        when the best weights are restored.

    Attributes
    ----------
    best : float
        The best monitored value seen.
    best_epoch : int or None
        The epoch (0-based, as in callbacks and Keras) that achieved it.
    stopped_epoch : int or None
        The epoch (0-based) at whose end training was stopped, or None when
        it ran to the end.
    wait : int
        Consecutive epochs without improvement so far.

    Examples
    --------
    >>> import polymlp as pm
    >>> stop = pm.callbacks.EarlyStopping(monitor="val_loss", patience=3,
    ...                                   restore_best_weights=True)
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False, verbose=0):
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._monitor.mode, min_delta
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral):
            raise TypeError(f"`patience` must be a non-negative integer; got {patience!r}.")
        if patience < 0:
            raise ValueError(f"`patience` must be a non-negative integer; got {patience!r}.")
        self.patience = int(patience)
        if not isinstance(restore_best_weights, bool):
            raise TypeError(f"`restore_best_weights` must be True or False; got "
                            f"{restore_best_weights!r}.")
        self.restore_best_weights = restore_best_weights
        self.verbose = _validate.verbose(verbose)
        self._reset()

    def _reset(self):
        self._monitor.reset()
        self.wait = 0
        self.best_epoch = None
        self.stopped_epoch = None
        self._best_theta = None

    @property
    def best(self):
        return self._monitor.best

    def check_logs(self, keys):
        _check_monitor("EarlyStopping", self.monitor, keys)

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor, math.nan)
        if math.isnan(value):
            return  # not evaluated this epoch (validation_freq): neither better nor worse
        if self._monitor.improved(value):
            self._monitor.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                net = self.network
                # A copy on the device: no host transfer, and safe from in-place updates.
                self._best_theta = net.xp.asarray(net.theta, copy=True)
            return
        self.wait += 1
        if self.wait >= self.patience:  # Keras' rule: patience epochs without improvement
            self.stopped_epoch = epoch
            self.network.stop_training = True

    def on_train_end(self, logs=None):
        # Said here, as Keras does: by now the progress bar of the last epoch is closed.
        if self.stopped_epoch is not None:
            self._say(f"EarlyStopping: {self.monitor} did not improve on {self.best:.6g} "
                      f"(epoch {self.best_epoch + 1}) for {self.wait} epoch(s); stopping "
                      f"after epoch {self.stopped_epoch + 1}.")
        if self.restore_best_weights and self._best_theta is not None:
            self.network.theta = self._best_theta
            self._best_theta = None
            self._say(f"EarlyStopping: restored the weights of the best epoch, "
                      f"{self.best_epoch + 1} ({self.monitor} {self.best:.6g}).")

    def _say(self, message):
        log.info(message)
        if self.verbose >= 1:
            print(message, file=sys.stderr, flush=True)


class ModelCheckpoint(Callback):
    """Save the network (atomically) at the end of epochs or every N iterations.

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to save; may hold ``str.format`` fields ``{epoch}`` (1-based:
        the epoch just finished, or the one in progress for a save inside an
        epoch), ``{iteration}`` (``network.iterations``) and, for saves at
        the end of epochs, any epoch log key, e.g.
        ``"ckpt-{epoch:03d}-{val_loss:.4f}.polymlp"``.
    monitor : str, default "val_loss"
        The log key compared when `save_best_only`.
    save_best_only : bool, default False
        Save only when `monitor` improves on the best value so far (at the
        end of epochs: needs ``save_freq="epoch"``).
    mode : {"auto", "min", "max"}
    every : int, default 1
        With ``save_freq="epoch"`` and without `save_best_only`, save every
        this many epochs.
    include_optimizer : bool, default True
        Store the optimizer state, counters, RNG state and the position inside
        the epoch too, so that ``fit`` on the loaded file continues exactly.
    save_freq : "epoch" or int, default "epoch"
        ``"epoch"``: at the end of epochs. An int ``N``: after every iteration
        whose count (``network.iterations``, which keeps counting across
        ``fit`` calls and files) is a multiple of ``N``, inside epochs too
        (Keras's ``save_freq``). Such a file resumes in the middle of its
        epoch: load it and call ``fit`` with the same data and batch size for
        the remaining epochs (the partial one counts as one).
    keep_last : int, optional
        Keep only the newest `keep_last` files matching `filepath` (with
        ``{epoch}`` or ``{iteration}`` in it), deleting older ones after each
        save, including those left by an earlier run.

    Attributes
    ----------
    saved : list of str
        The paths written, in order.
    host_every : "epoch" or int
        `save_freq`: the iterations at which this callback needs the host
        (see :attr:`Callback.host_every`).

    Examples
    --------
    >>> import polymlp as pm
    >>> ckpt = pm.callbacks.ModelCheckpoint("ckpt-{iteration:07d}.polymlp",
    ...                                     save_freq=500, keep_last=3)
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 every=1, include_optimizer=True, save_freq="epoch", keep_last=None):
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"`filepath` must be a path (str or os.PathLike); got {filepath!r}.")
        self.filepath = os.fspath(filepath)
        self._monitor = _Monitor(monitor, mode, 0.0)
        self.monitor = monitor
        if not isinstance(save_best_only, bool):
            raise TypeError(f"`save_best_only` must be True or False; got {save_best_only!r}.")
        if not isinstance(include_optimizer, bool):
            raise TypeError(f"`include_optimizer` must be True or False; got "
                            f"{include_optimizer!r}.")
        self.save_best_only = save_best_only
        self.include_optimizer = include_optimizer
        self.every = _validate.positive_int("every", every)
        self.save_freq = _callback.check_save_freq(save_freq)
        if save_best_only and self.save_freq != "epoch":
            raise ValueError(f"`save_best_only=True` compares epoch logs, so it needs "
                             f"save_freq='epoch'; got save_freq={save_freq!r}.")
        self.host_every = self.save_freq
        self.keep_last = None if keep_last is None else _validate.positive_int("keep_last",
                                                                               keep_last)
        self.saved = []

    def check_logs(self, keys):
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, keys)
        fields = {} if self.save_freq != "epoch" else {k: 0.0 for k in keys}
        try:
            self.filepath.format(epoch=1, iteration=1, **fields)
        except (KeyError, IndexError, ValueError) as exc:
            available = "epoch, iteration" + (
                "" if self.save_freq != "epoch" else "".join(f", {k}" for k in keys))
            raise ValueError(f"`filepath` {self.filepath!r} has a field fit() will not log "
                             f"({exc}); available: {available}.") from exc
        directory = os.path.dirname(os.path.abspath(self.filepath))
        if "{" not in directory and not os.path.isdir(directory):
            raise ValueError(f"ModelCheckpoint cannot write to {self.filepath!r}: directory "
                             f"{directory!r} does not exist. Create it first.")

    def on_train_begin(self, logs=None):
        self._monitor.reset()
        regex = _template_regex(self.filepath)
        if writes_files(self):  # left by saves killed earlier
            _atomic.clean_stale(self.filepath, regex)

    def on_batch_end(self, iteration, logs=None):
        if self.save_freq != "epoch" and iteration % self.save_freq == 0:
            epoch = (logs or {}).get("epoch", self.network.epochs_done)
            self._save(self.filepath.format(epoch=epoch + 1, iteration=iteration),
                       f"at iteration {iteration}")

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq != "epoch":
            return
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor, math.nan)
            if math.isnan(value) or not self._monitor.improved(value):
                return
            self._monitor.best = value
        elif (epoch + 1) % self.every:
            return
        path = self.filepath.format(**{**logs, "epoch": epoch + 1,
                                       "iteration": self.network.iterations})
        self._save(path, f"after epoch {epoch + 1}")

    def _save(self, path, when):
        if not _callback.save_file(self.network, path, self.include_optimizer,
                                   writes=writes_files(self)):
            return  # another MPI rank than 0: rank 0 writes the same weights
        self.saved.append(path)
        log.info("ModelCheckpoint: saved %s %s.", path, when)
        regex = _template_regex(self.filepath)
        if regex is not None:
            # Saves killed halfway to any file of this template (one that may never be
            # saved again) leave temporaries: remove those no process is writing.
            _atomic.clean_stale(path, regex)
            if self.keep_last is not None:
                _keep_newest(regex, os.path.dirname(os.path.abspath(path)), self.keep_last,
                             path)


def _template_regex(template):
    """A regex of the file names `template` formats to, or None without a field."""
    pattern, named, fields = "", set(), False
    for literal, name, _, _ in string.Formatter().parse(os.path.basename(template)):
        pattern += re.escape(literal)
        if name is None:
            continue
        fields = True
        if name in ("epoch", "iteration") and name not in named:
            named.add(name)
            pattern += rf"(?P<{name}>-?\d+)"
        else:
            pattern += ".*?"
    if not fields:
        return None  # one file, overwritten by every save: nothing to prune
    return re.compile(f"^{pattern}$")


def _keep_newest(regex, directory, keep, just_saved):
    """Delete all but the newest `keep` files of `directory` that `regex` matches."""
    found = []
    for name in os.listdir(directory):
        match = regex.match(name)
        full = os.path.join(directory, name)
        if match is None or not os.path.isfile(full):
            continue
        numbers = match.groupdict()
        # Newest by iteration, then epoch (both monotonic), the file time breaking ties.
        key = (int(numbers.get("iteration") or -1), int(numbers.get("epoch") or -1),
               os.stat(full).st_mtime_ns)
        found.append((key, full))
    found.sort()
    for _, full in found[:-keep]:
        if os.path.abspath(full) != os.path.abspath(just_saved):
            try:
                os.unlink(full)
            except FileNotFoundError:  # another process pruned it first
                pass


_SCHEDULES = ("step", "exponential", "cosine")


class LearningRateScheduler(Callback):
    """Set the optimizer's ``learning_rate`` at the start of every epoch.

    The rate is written into the optimizer's state (a 0-d array, see
    :mod:`polymlp.optimizers`) as well as its ``learning_rate`` attribute, so
    a compiled training step (JAX) is not recompiled when it changes.

    Parameters
    ----------
    schedule : {"step", "exponential", "cosine"} or callable
        ``"step"``: ``lr0 * gamma ** (epoch // step_size)``;
        ``"exponential"``: ``lr0 * gamma ** epoch``;
        ``"cosine"``: ``eta_min + (lr0 - eta_min) * (1 + cos(pi * min(epoch, t_max) / t_max)) / 2``;
        a callable ``f(epoch)`` or ``f(epoch, lr)`` returning the new rate.
        ``epoch`` is 0-based and keeps counting across ``fit`` calls.
    step_size : int
        Epochs per step (``"step"``).
    gamma : float, default 0.1
        Decay factor (``"step"``, ``"exponential"``).
    t_max : int
        Epochs of the half cosine (``"cosine"``).
    eta_min : float, default 0
        Final rate of ``"cosine"``.
    initial_learning_rate : float, optional
        ``lr0``; by default the optimizer's rate when this callback first
        runs. Give it when resuming from a file, whose optimizer already
        holds a scheduled rate.

    Examples
    --------
    >>> import polymlp as pm
    >>> sched = pm.callbacks.LearningRateScheduler("cosine", t_max=10)
    """

    def __init__(self, schedule, *, step_size=None, gamma=0.1, t_max=None, eta_min=0.0,
                 initial_learning_rate=None):
        if callable(schedule):
            self._arity = _arity(schedule)
        elif isinstance(schedule, str):
            _validate.choice("schedule", schedule, _SCHEDULES)
        else:
            raise TypeError(f"`schedule` must be one of {list(_SCHEDULES)} or a function "
                            f"f(epoch) or f(epoch, lr); got {schedule!r}.")
        self.schedule = schedule
        if schedule == "step":
            if step_size is None:
                raise ValueError("schedule='step' needs `step_size` (epochs per step), e.g. "
                                 "step_size=10.")
            step_size = _validate.positive_int("step_size", step_size)
        if schedule == "cosine":
            if t_max is None:
                raise ValueError("schedule='cosine' needs `t_max` (epochs of the half cosine), "
                                 "e.g. t_max=the number of epochs.")
            t_max = _validate.positive_int("t_max", t_max)
        self.step_size, self.t_max = step_size, t_max
        self.gamma = _validate.positive_float("gamma", gamma)
        self.eta_min = _validate.finite_float("eta_min", eta_min)
        if self.eta_min < 0:
            raise ValueError(f"`eta_min` must be non-negative; got {eta_min!r}.")
        self.initial_learning_rate = (None if initial_learning_rate is None else
                                      _validate.positive_float("initial_learning_rate",
                                                               initial_learning_rate))

    def on_train_begin(self, logs=None):
        opt = self.network.optimizer
        if not hasattr(opt, "learning_rate"):
            raise TypeError(f"LearningRateScheduler needs an optimizer with a `learning_rate` "
                            f"attribute; {type(opt).__name__} has none.")

    def rate(self, epoch, current):
        """The learning rate for `epoch` (0-based), given the `current` one."""
        lr0 = self.initial_learning_rate
        if self.schedule == "step":
            return lr0 * self.gamma ** (epoch // self.step_size)
        if self.schedule == "exponential":
            return lr0 * self.gamma ** epoch
        if self.schedule == "cosine":
            e = min(epoch, self.t_max)
            cosine = (1 + math.cos(math.pi * e / self.t_max)) / 2
            return self.eta_min + (lr0 - self.eta_min) * cosine
        return self.schedule(epoch) if self._arity == 1 else self.schedule(epoch, current)

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.network.optimizer
        if self.initial_learning_rate is None:
            self.initial_learning_rate = float(opt.learning_rate)
        lr = self.rate(epoch, float(opt.learning_rate))
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) \
                or lr < 0:
            raise ValueError(f"The learning-rate schedule {self.schedule!r} returned {lr!r} "
                             f"for epoch {epoch}; it must return a finite number >= 0.")
        # The attribute is what callbacks read; the state is what the step reads.
        opt.learning_rate = float(lr)
        net = self.network
        net.opt_state = opt.sync_state(net.opt_state, xp=net.xp)
        log.debug("LearningRateScheduler: epoch %d learning_rate %g", epoch + 1, lr)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.network.optimizer.learning_rate)


def _arity(fn):
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    except (TypeError, ValueError):
        return 2
    if len(params) not in (1, 2):
        raise TypeError(f"A learning-rate schedule function must take (epoch) or (epoch, lr); "
                        f"{fn!r} takes {len(params)} required arguments.")
    return len(params)


class ProgressBar(Callback):
    """Progress of ``fit``: a tqdm bar per epoch, or one line per epoch.

    ``fit(verbose=1)`` adds ``ProgressBar("bar")``, ``verbose=2`` adds
    ``ProgressBar("lines")``. Its batch hooks only report
    (``runs_between_steps = False``), so compiled chunks of steps (JAX) keep running: the bar then
    advances a chunk at a time. The bar uses ``tqdm.auto`` (it renders in
    notebooks too) and falls back to lines when tqdm is not installed
    (``pip install 'polymlp[progress]'``). Loss and metrics appear when each
    epoch ends: reading them mid-epoch would synchronise the device.

    Parameters
    ----------
    mode : {"bar", "lines"}
    stream : file, optional
        Where to write (default: ``sys.stderr`` at the time of writing).
    label : str, optional
        Prefix of each bar or line (default: the network's name).
    """

    runs_between_steps = False  # reports only: its hooks may run after a compiled chunk

    def __init__(self, mode="bar", stream=None, label=None):
        _validate.choice("mode", mode, ("bar", "lines"))
        self._tqdm = _tqdm() if mode == "bar" else None
        self.mode = "bar" if self._tqdm is not None else "lines"
        self.stream = stream
        self.label = label
        self._bar = None

    def _out(self):
        return self.stream if self.stream is not None else sys.stderr

    def on_train_begin(self, logs=None):
        self._label = self.label if self.label is not None else str(self.network.name)
        self._t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_t0 = time.perf_counter()
        if self._tqdm is not None:
            total = self.params["epochs"] if self.params else "?"
            self._bar = self._tqdm(total=self.params["steps"] if self.params else None,
                                   desc=f"{self._label} epoch {epoch + 1}/{total}",
                                   unit="batch", file=self._out(), leave=True)

    def on_batch_end(self, iteration, logs=None):
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        values = {k: v for k, v in (logs or {}).items() if isinstance(v, float)
                  and not math.isnan(v)}
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()}, refresh=False)
            self._bar.close()
            self._bar = None
            return
        total = self.params["epochs"] if self.params else "?"
        parts = [f"{self._label} epoch {epoch + 1}/{total}"]
        parts += [f"{k} {v:.4f}" for k, v in values.items()]
        parts.append(f"{time.perf_counter() - self._epoch_t0:.2f}s")
        out = self._out()
        out.write(" - ".join(parts) + "\n")
        out.flush()

    def on_train_end(self, logs=None):
        if self._bar is not None:  # stopped mid-epoch
            self._bar.close()
            self._bar = None


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def progress_callbacks(verbose):
    """The progress callback for ``fit(verbose=...)``: none, a bar, or lines."""
    if verbose == 1:
        return [ProgressBar("bar")]
    if verbose == 2:
        return [ProgressBar("lines")]
    return []


class TensorBoard(_TensorBoardLogger, Callback):
    # The behaviour lives in polymlp/_tensorboard.py; this binds it to the protocol.
    __doc__ = _TensorBoardLogger.__doc__
