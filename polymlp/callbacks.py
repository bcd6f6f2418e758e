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
epoch), ``samples``, ``batch_size`` and ``keys`` (what epoch logs will hold).

``logs`` only ever hold host Python numbers, so a callback never forces a
device synchronisation.  Batch logs hold ``epoch``, ``batch`` (index within
the epoch) and ``size``; the batch loss is *not* included, because reading
it would sync the device on every batch.  Epoch logs hold what ``fit``
records (``record="iteration"`` or ``"epoch"``): ``loss`` and ``accuracy``
(or ``r2``) as means over the epoch, and ``val_loss`` and ``val_accuracy``
at the epoch's end when validation data is given; with ``record=None`` they
are empty.  Setting ``self.network.stop_training = True`` ends training
after the current batch.

A callback may also define ``check_logs(keys)``, called before any work is
done, to refuse (``ValueError``) a configuration in which what it monitors
will never be logged.

Per-batch hooks cost nothing unless a callback overrides them.  Where the
backend compiles (JAX), ``fit`` runs many steps per compiled call; a callback
with batch hooks makes it run step by step instead, unless the callback sets
``runs_between_steps = False`` (hooks that only report, such as
:class:`ProgressBar`): its batch hooks are then called for every step of a
compiled chunk, in order, after the chunk ran.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import os
import sys
import time

from . import _validate

log = logging.getLogger("polymlp")

__all__ = ["Callback", "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint",
           "ProgressBar"]


class Callback:
    """Base class of callbacks: every hook does nothing. See the module docstring."""

    network = None
    params = None
    #: False: the batch hooks only report, and may run after a compiled chunk of
    #: steps rather than between its steps (see the module docstring).
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


class CallbackList:
    """The callbacks of one ``fit`` call, called in order (internal)."""

    def __init__(self, callbacks, network):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_network(network)
        hooked = [cb for cb in self.callbacks
                  if _overrides(cb, "on_batch_begin") or _overrides(cb, "on_batch_end")]
        self.batch_hooks = bool(hooked)
        #: Whether some batch hook must run between steps (no compiled chunks then).
        self.between_steps = any(cb.runs_between_steps for cb in hooked)

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
        """Training stopped on an exception: release what callbacks hold open (bars)."""
        for cb in self.callbacks:
            if isinstance(cb, ProgressBar):
                cb.on_train_end({})


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
        Epochs without improvement that are tolerated: training stops at the
        ``patience + 1``-th consecutive epoch that does not improve.
    min_delta : float, default 0
        Smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        ``"auto"`` maximises accuracy and R^2 and minimises everything else.
    restore_best_weights : bool, default False
        When training ends (stopped early or not), put back the weights of
        the best epoch. The optimizer state is kept as it is.

    Attributes
    ----------
    best : float
        The best monitored value seen.
    best_epoch : int or None
        The epoch (0-based, as in callbacks) that achieved it.
    stopped_epoch : int or None
        The epoch after which training was stopped, or None.

    Examples
    --------
    >>> import polymlp as pm
    >>> stop = pm.callbacks.EarlyStopping(monitor="val_loss", patience=3,
    ...                                   restore_best_weights=True)
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
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
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.network.stop_training = True
            log.info("EarlyStopping: %s did not improve on %.6g for %d epoch(s); stopping "
                     "after epoch %d.", self.monitor, self.best, self.wait, epoch + 1)

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._best_theta is not None:
            self.network.theta = self._best_theta
            self._best_theta = None
            log.info("EarlyStopping: restored the weights of epoch %d (%s %.6g).",
                     self.best_epoch + 1, self.monitor, self.best)


class ModelCheckpoint(Callback):
    """Save the network (atomically) at the end of epochs.

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to save; may hold ``str.format`` fields ``{epoch}`` (1-based)
        and any epoch log key, e.g. ``"ckpt-{epoch:03d}-{val_loss:.4f}.polymlp"``.
    monitor : str, default "val_loss"
        The log key compared when `save_best_only`.
    save_best_only : bool, default False
        Save only when `monitor` improves on the best value so far.
    mode : {"auto", "min", "max"}
    every : int, default 1
        Without `save_best_only`, save every this many epochs.
    include_optimizer : bool, default True
        Store the optimizer state too, so training can resume from the file.

    Attributes
    ----------
    saved : list of str
        The paths written, in order.
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 every=1, include_optimizer=True):
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
        self.saved = []

    def check_logs(self, keys):
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, keys)
        try:
            self.filepath.format(epoch=1, **{k: 0.0 for k in keys})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"`filepath` {self.filepath!r} has a field fit() will not log "
                             f"({exc}); available: epoch, {', '.join(keys) or '(none)'}.") from exc
        directory = os.path.dirname(os.path.abspath(self.filepath))
        if "{" not in directory and not os.path.isdir(directory):
            raise ValueError(f"ModelCheckpoint cannot write to {self.filepath!r}: directory "
                             f"{directory!r} does not exist. Create it first.")

    def on_train_begin(self, logs=None):
        self._monitor.reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor, math.nan)
            if math.isnan(value) or not self._monitor.improved(value):
                return
            self._monitor.best = value
        elif (epoch + 1) % self.every:
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if not (self.params or {}).get("writes_files", True):
            return  # another MPI rank than 0: rank 0 writes the same weights
        self.network.save(path, include_optimizer=self.include_optimizer)
        self.saved.append(path)
        log.info("ModelCheckpoint: saved %s after epoch %d.", path, epoch + 1)


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
    ``ProgressBar("lines")``. Its batch hooks only report, so compiled chunks
    of steps (JAX) keep running: the bar then advances a chunk at a time. The bar uses ``tqdm.auto`` (it renders in
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

    runs_between_steps = False

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
