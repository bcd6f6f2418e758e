"""The training loop: epochs of minibatch steps, recording, callbacks, divergence.

:class:`Trainer` runs what :meth:`polymlp.Network.fit` asked for, described
by one :class:`FitSettings`.  Each epoch: snapshot (for divergence), the
callbacks' ``on_epoch_begin``, one host permutation of the rows, then the
steps, each made by the engine's one step function; losses stay on the
device and are recorded once per epoch; one finiteness check per epoch.

Where contracts of other features plug in:

- the L2 penalty (``alpha``) is part of the engine's objective (``Engine.penalty``);
- an optimizer with ``full_batch = True`` is dispatched in :meth:`Trainer.run` to
  :mod:`polymlp._fullbatch`;
- sample weights ride as a target column (:mod:`polymlp._weights`) through the one step;
- a resumed position (:mod:`polymlp._resume`) hands :meth:`Trainer._epoch` the
  RNG state to draw the permutation from and the batch to start at; the
  network's ``_cursor`` says where the running epoch is at each boundary
  where batch hooks run (compiled chunks end at ``callbacks.host_every``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import nan

import numpy

from . import _divergence, _fullbatch, _metrics, _resume
from ._engine import make_chunk
from .callbacks import epoch_logs
from ._array_api import to_numpy
from .history import History

EVAL_CHUNK = 8192  # rows per forward pass when evaluating (bounds activation memory)


@dataclass(frozen=True)
class FitSettings:
    """Everything :meth:`~polymlp.Network.fit` was asked, checked (see its docstring)."""

    epochs: int
    batch_size: int
    shuffle: bool = True
    record: str | None = "iteration"
    validation_freq: int | None = None  # iterations; None: at each epoch's end only
    on_divergence: str = "raise"
    validation: tuple | None = None  # (x_val, y_val) on the backend
    steps_per_execution: int | None = None  # steps per compiled call (None: as many as fit)

    @property
    def want_loss(self):
        return self.record is not None


@dataclass
class _Epoch:
    """What one epoch recorded: device 0-d arrays, converted once at its end."""

    losses: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    vlosses: list = field(default_factory=list)
    vmetrics: list = field(default_factory=list)

    def stacked(self, name, xp):
        """The per-step values of `name` as one 1-d device array (pieces are 0-d values
        of single steps or 1-d stacks of chunks); None when nothing was recorded."""
        pieces = getattr(self, name)
        if not pieces:
            return None
        if all(p.ndim == 0 for p in pieces):
            return xp.stack(pieces)
        return xp.concat([xp.reshape(p, (-1,)) for p in pieces])

    def kept(self, k, xp):
        """The first `k` steps' records."""
        return _Epoch([self.stacked("losses", xp)[:k]], [self.stacked("metrics", xp)[:k]],
                      self.sizes[:k], self.vlosses[:k], self.vmetrics[:k])


class Trainer:
    """One ``fit`` call: `network` trained as `settings` say, with `callbacks`.

    Parameters
    ----------
    network : Network
    settings : FitSettings
    callbacks : polymlp.callbacks.CallbackList
    dp : polymlp.distributed.DataParallel, optional
        Data-parallel training: the step's host phase allreduces the gradient.
    """

    def __init__(self, network, settings, callbacks, dp=None):
        self.net, self.settings, self.callbacks, self.dp = network, settings, callbacks, dp
        self.engine = network.engine
        self.metric = network.metric_name
        self.hist = History("epoch" if settings.record == "epoch" else "iteration",
                            name=network.name)
        # One slicer per batch size, kept across fit() calls: on JAX each is a compiled
        # gather, and compiling it again for every partial_fit dominated small fits.
        slicers = network.__dict__.setdefault("_slicers", {})
        if settings.batch_size not in slicers:
            slicers[settings.batch_size] = _batch_slicer(network.backend, settings.batch_size)
        self.rows = slicers[settings.batch_size]
        self._step = None
        self._fresh = True  # the first binding of a fit copies: never train the caller's arrays

    # --- the step ----------------------------------------------------------------------

    def _make_step(self, y_var):
        """The engine's step for the network's current optimizer and hook (cached across fits)."""
        net, s = self.net, self.settings
        reducer = self.dp.allreduce if self.dp is not None else None
        opt = net.optimizer
        self._y_var, self._y_var_key = y_var, None if y_var is None else id(y_var)
        key = (s.want_loss, opt, self._static(opt), net.grad_hook, reducer, self._y_var_key,
               self.engine.alpha)
        cache = self.engine.step_cache
        if key not in cache:  # kept across fit() calls: compiling is not free
            cache.clear()
            cache[key] = self.engine.make_step(net.optimizer, want_loss=s.want_loss,
                                               y_var=y_var, rng=net.rng, hook=net.grad_hook,
                                               reducer=reducer)
        return cache[key]

    @staticmethod
    def _static(opt):
        """Hyperparameters outside the state are constants of the step: a new value, a new step."""
        return tuple(sorted((k, repr(v)) for k, v in opt.get_config().items()
                            if k not in opt.state_hyperparameters))

    def _bind(self, step):
        """``(theta, state)`` the step starts from; the network holds them from now on."""
        net = self.net
        if hasattr(step, "bind"):  # an in-place step: it trains its own copies
            if self._fresh:
                step.owner.theta = step.owner.state = None
            net.theta, net.opt_state = step.bind(net.theta, net.opt_state)
        self._fresh = False
        return net.theta, net.opt_state

    # --- the loop ----------------------------------------------------------------------

    def run(self, X, Y):
        """Train on `X`, `Y` (arrays on the backend); return the :class:`History`."""
        net, s, cbs = self.net, self.settings, self.callbacks
        if getattr(net.optimizer, "full_batch", False):
            return _fullbatch.run(self, X, Y)
        y_var = (None if net.classification or not s.want_loss  # not the weight column
                 else _metrics.variance(Y[:, :net.output_size], xp=net.xp))
        net.stop_training, logs = False, {}
        # Counted to a target: a backup restored in on_train_begin shortens the run.
        end_epoch = net.epochs_done + s.epochs
        cbs.on_train_begin()
        resume = _resume.take(net, X.shape[0], s.batch_size, s.shuffle, s.record,
                              s.validation is not None, self.hist, self.dp)
        while net.epochs_done < end_epoch:
            logs = self._epoch(X, Y, y_var, resume)
            resume = None
            if logs is None or net.stop_training:
                break
        net._cursor = None
        cbs.on_train_end(logs or {})
        return self.hist

    def _epoch(self, X, Y, y_var, resume=None):
        """One epoch (from `resume`'s batch when given); its logs, or None when it diverged
        (and warned)."""
        net, s, cbs, xp, dp = self.net, self.settings, self.callbacks, self.net.xp, self.dp
        n = X.shape[0]
        epoch = net.epochs_done
        cbs.on_epoch_begin(epoch)
        # After the callbacks, which may change the weights, the optimizer or its rate:
        # a rate set on the optimizer goes into its state (the step stays the same).
        net.opt_state = net.optimizer.sync_state(net.opt_state, xp=xp)
        start = _divergence.snapshot(net)
        step = self._make_step(y_var)
        theta, state = self._bind(step)
        # The resume cursor: the RNG state that draws this epoch's permutation.
        perm_rng = resume["rng"] if resume else net.rng.bit_generator.state
        if s.shuffle:
            saved_rng = net.rng.bit_generator.state
            net.rng.bit_generator.state = perm_rng
            perm = net.backend.asarray(net.rng.permutation(n))
            if resume:  # back to where the checkpoint left the generator
                net.rng.bit_generator.state = saved_rng
            Xs, Ys = xp.take(X, perm, axis=0), xp.take(Y, perm, axis=0)
        else:
            Xs, Ys = X, Y
        first = resume["batch"] if resume else 0
        rec = _Epoch(*_resume.prefill(net.backend, net.dtype, resume, s.record,
                                      s.validation is not None, dp is None or dp.is_root))
        net._cursor = cursor = _resume.Cursor(
            perm_rng, first, n, s.batch_size, s.shuffle, s.record, s.validation is not None,
            (rec.losses, rec.metrics, rec.sizes, rec.vlosses, rec.vmetrics), self.hist, dp)
        theta, state = self._steps(step, theta, state, Xs, Ys, first, rec, epoch)
        losses = rec.stacked("losses", xp)
        if not _divergence.finite(xp, theta, losses):  # one host sync per epoch
            net._cursor = None
            self._diverged(start, X, Y, rec, replay=resume is None)
            return None
        net.theta, net.opt_state = theta, state
        net.epochs_done += 1
        cursor.batch = None  # between epochs: nothing to resume inside one
        if s.want_loss:
            rec.losses, rec.metrics = [losses], [rec.stacked("metrics", xp)]
            if dp is not None:  # sum the weighted shard values: one reduction per epoch
                rec.losses = [dp.allreduce(rec.losses[0])]
                rec.metrics = [dp.allreduce(rec.metrics[0])]
            self._record(rec)
        logs = epoch_logs(self.hist, s.record, len(rec.sizes), rec.sizes, self.metric)
        cbs.on_epoch_end(epoch, logs)
        return logs

    def _steps(self, step, theta, state, Xs, Ys, first_batch, rec, epoch):
        """Run the epoch's batches from `first_batch`: in compiled chunks where possible,
        else one step at a time; returns the last ``(theta, state)``."""
        net, s, cbs, dp = self.net, self.settings, self.callbacks, self.dp
        n, size = Xs.shape[0], s.batch_size
        validate = s.validation is not None and s.record == "iteration"
        b, batches, noisy = first_batch, -(-n // size), bool(self.engine.noisy)
        if self._chunks_apply(step):
            self._step = step
            theta, state, b = self._chunks(theta, state, Xs, Ys, b, n // size, rec, validate)
            if net.stop_training:  # a batch hook at a chunk's end asked to stop
                return theta, state
        rows, hooks, want_loss, noise = self.rows, cbs.batch_hooks, s.want_loss, None
        cursor = net._cursor
        for b in range(b, batches):
            lo, hi = b * size, min(b * size + size, n)  # out-of-bounds stops are undefined
            if hooks:
                cbs.on_batch_begin(net.iterations + 1, _batch_logs(epoch, b, hi - lo))
            if noisy:
                noise = self.engine.draw_noise(net.rng, hi - lo, net.dtype)
            if dp is None:
                xb, yb = rows(Xs, Ys, lo, hi)
                theta, state, loss, score = step(theta, state, xb, yb, None, noise)
            else:  # every rank draws the global batch's noise and takes its shard's rows
                r0, r1, weight = dp.shard(lo, hi)
                if noise is not None:
                    noise = [a if a is None else a[r0 - lo:r1 - lo, ...] for a in noise]
                theta, state, loss, score = step(theta, state, Xs[r0:r1, ...], Ys[r0:r1, ...],
                                                 weight, noise, hi - lo)
            net.iterations += 1
            if want_loss:
                # Kept as device arrays: converted once per epoch, never per batch.
                rec.sizes.append(hi - lo)
                rec.losses.append(loss)
                rec.metrics.append(score)
                if validate:
                    self._validate_at(theta, rec, 1, hi >= n)
            if hooks:
                net.theta, net.opt_state = theta, state
                cursor.batch = b + 1
                blogs = _batch_logs(epoch, b, hi - lo)
                if want_loss and cbs.wants_batch_loss(net.iterations):
                    # A host sync only every N iterations, for a callback that asked.
                    blogs["loss"] = float(loss if dp is None else dp.allreduce(loss))
                cbs.on_batch_end(net.iterations, blogs)
                theta, state = self._bind(step)  # a callback may have set new weights
                if net.stop_training:
                    break
        return theta, state

    def _validate_at(self, theta, rec, steps, epoch_end):
        """NaN placeholders for `steps` - 1 iterations, then the last one's validation
        values when it is a validation point (every validation_freq, and the epoch's end)."""
        net, s = self.net, self.settings
        rec.vlosses.extend([nan] * (steps - 1))
        rec.vmetrics.extend([nan] * (steps - 1))
        if epoch_end or (s.validation_freq and net.iterations % s.validation_freq == 0):
            net.theta = theta
            vl, vm = net.engine.evaluate(theta, *s.validation, EVAL_CHUNK)
        else:
            vl = vm = nan
        rec.vlosses.append(vl)
        rec.vmetrics.append(vm)

    # --- compiled chunks (backends that compile: JAX) ----------------------------------

    def _chunks_apply(self, step):
        """Whether this epoch's full batches run as compiled chunks: on a compiling
        backend, when nothing on the host must run between steps (no batch-level
        callback that must, no gradient hook, no data-parallel reduction) and the
        step traces). Chunks end at the callbacks' ``host_every`` boundaries."""
        net, s = self.net, self.settings
        asked = s.steps_per_execution is not None and s.steps_per_execution > 1
        pays = asked or net.backend.chunks_pay(6 * net.n_parameters * s.batch_size)
        return (pays and net.backend.compiles and self.callbacks.host_every != 1
                and self.dp is None and net.grad_hook is None
                and getattr(step, "traceable", False))

    def _chunks(self, theta, state, Xs, Ys, b, full, rec, validate):
        """Full batches ``b .. full - 1`` in chunks; returns ``(theta, state, next batch)``."""
        net, s, xp, size = self.net, self.settings, self.net.xp, self.settings.batch_size
        n = Xs.shape[0]
        every = [p for p in ((s.validation_freq if validate else None),
                             self.callbacks.host_every) if isinstance(p, int) and p > 0]
        slots = min([s.steps_per_execution or full, full] + every) if full > b else 0
        if slots < 1:
            return theta, state, b
        chunk = self._chunk_fn(slots)
        while b < full:
            end = min(full, b + slots)
            for period in every:  # end at the next validation point or host boundary
                end = min(end, b + period - net.iterations % period)
            count = end - b
            starts = numpy.zeros(slots, dtype="int64")
            starts[:count] = numpy.arange(b, end) * size
            active = numpy.arange(slots) < count
            args = (Xs, Ys, net.backend.asarray(starts, dtype=self._index),
                    net.backend.asarray(active), self._chunk_noise(slots, count))
            if getattr(chunk, "ran", False):
                theta, state, losses, metrics = chunk(theta, state, *args)
            else:
                try:  # the first call traces the step: a layer may not allow it
                    theta, state, losses, metrics = chunk(theta, state, *args)
                except Exception as exc:  # noqa: BLE001 - run the epoch step by step instead
                    self._step.untraceable(exc)
                    return theta, state, b
                chunk.ran = True
            net.theta, net.opt_state = theta, state  # the old buffers may be donated
            net.iterations += count
            if s.want_loss:
                rec.sizes.extend([size] * count)
                rec.losses.append(losses[:count])
                rec.metrics.append(metrics[:count])
                if validate:
                    self._validate_at(theta, rec, count, end * size >= n)
            if self.callbacks.batch_hooks:  # each step's hooks, after the chunk
                net._cursor.batch = end
                self._report_steps(b, end, n, losses if s.want_loss else None)
                theta, state = net.theta, net.opt_state  # a callback may have set new weights
                if net.stop_training:
                    return theta, state, end
            b = end
        return theta, state, b

    def _report_steps(self, b, end, n, losses):
        """The batch hooks of steps ``b .. end - 1`` of a chunk that ran (the network holds
        its last state, which is exact at the host boundaries it ended on)."""
        net, cbs, size = self.net, self.callbacks, self.settings.batch_size
        first = net.iterations - (end - b) + 1
        for i, batch in enumerate(range(b, end)):
            logs = _batch_logs(net.epochs_done, batch, min(size, n - batch * size))
            cbs.on_batch_begin(first + i, logs)
            if losses is not None and cbs.wants_batch_loss(first + i):
                logs = {**logs, "loss": float(losses[i])}
            cbs.on_batch_end(first + i, logs)

    def _chunk_noise(self, slots, count):
        """Each random layer's draws for the chunk's first `count` slots, stacked (zeros
        in the idle slots): drawn on the host in the order step-by-step training draws."""
        engine, net, size = self.engine, self.net, self.settings.batch_size
        if not engine.noisy:
            return None
        draws = [[None] * len(engine.layers) for _ in range(count)]
        for slot in range(count):
            for i in engine.noisy:
                draws[slot][i] = engine.layers[i].draw_noise(net.rng, size)
        noise = [None] * len(engine.layers)
        for i in engine.noisy:
            if draws[0][i] is not None:
                host = numpy.zeros((slots,) + draws[0][i].shape)
                host[:count] = [d[i] for d in draws]
                noise[i] = net.backend.asarray(host, dtype=net.dtype)
        return noise

    def _chunk_fn(self, slots):
        net, s = self.net, self.settings
        info = net.xp.__array_namespace_info__()
        self._index = info.default_dtypes(device=net.device)["integral"]
        key = ("chunk", s.want_loss, net.optimizer, self._static(net.optimizer), slots,
               s.batch_size, self._y_var_key, self.engine.alpha)
        cache = self.engine.chunk_cache
        if key not in cache:
            cache.clear()
            cache[key] = make_chunk(self.engine, net.optimizer, want_loss=s.want_loss,
                                    y_var=self._y_var, batch_size=s.batch_size, slots=slots)
        return cache[key]

    # --- recording -----------------------------------------------------------------

    def _record(self, rec):
        net, s, xp, hist, metric = self.net, self.settings, self.net.xp, self.hist, self.metric
        loss_h = to_numpy(rec.stacked("losses", xp))
        metric_h = to_numpy(rec.stacked("metrics", xp))
        if s.record == "iteration":
            first = net.iterations - len(loss_h) + 1
            hist.extend("iteration", range(first, net.iterations + 1))
            hist.epoch_ends.append(net.iterations)  # for History.plot's epoch marks
            hist.extend("loss", loss_h)
            hist.extend(metric, metric_h)
            if s.validation is not None:
                hist.extend("val_loss", _host_values(rec.vlosses, xp))
                hist.extend(f"val_{metric}", _host_values(rec.vmetrics, xp))
            return
        total = sum(rec.sizes)
        row = {"epoch": net.epochs_done,
               "loss": sum(v * w for v, w in zip(loss_h, rec.sizes)) / total,
               metric: sum(v * w for v, w in zip(metric_h, rec.sizes)) / total}
        if s.validation is not None:
            # Every epoch row: validation_freq counts iterations.
            vl, vm = net.engine.evaluate(net.theta, *s.validation, EVAL_CHUNK)
            row["val_loss"], row[f"val_{metric}"] = float(vl), float(vm)
        hist.append(**row)

    def _diverged(self, start, X, Y, rec, replay=True):
        """Put back the last finite state, record the epoch up to it, then raise or warn.

        Without `replay` (a resumed epoch, whose first batches ran in another
        process) the state of the epoch's start is restored."""
        net, s = self.net, self.settings
        replay_step = None
        if self.dp is None and replay:  # one rank cannot redo data-parallel steps alone
            replay_step = self.engine.make_step(net.optimizer, want_loss=True, rng=net.rng,
                                                hook=net.grad_hook, inplace=False)
        div = _divergence.restore_last_finite(
            net, start, X, Y, s.batch_size, s.shuffle, net.epochs_done + 1, net.iterations,
            replay_step, lambda rows: self.engine.draw_noise(net.rng, rows, net.dtype))
        if s.record == "iteration" and div.steps_kept:
            self._record(rec.kept(div.steps_kept, net.xp))
        _divergence.report(net, div, s.on_divergence, self.hist)


def _batch_slicer(backend, size):
    """``rows(X, Y, start, stop)``: rows ``start:stop`` of `X` and `Y`.

    Plain slices (views on NumPy), except where the backend compiles (JAX):
    there each slice is a dispatch costing more than the compiled step itself,
    so a full batch of both arrays is one compiled gather at a traced offset.
    """
    xp = backend.xp

    def gather(X, Y, start):
        index = start + xp.arange(size)
        return xp.take(X, index, axis=0), xp.take(Y, index, axis=0)

    compiled, compiles = backend.jit(gather), backend.compiles

    def rows(X, Y, start, stop):
        if compiles and stop - start == size:
            return compiled(X, Y, start)
        return X[start:stop, ...], Y[start:stop, ...]

    return rows


def _host_values(values, xp):
    """Floats from a list of 0-d arrays and NaN placeholders, with one transfer."""
    arrays = [v for v in values if v is not nan]
    host = iter(to_numpy(xp.stack(arrays)).tolist() if arrays else [])
    return [nan if v is nan else next(host) for v in values]


def _batch_logs(epoch, batch, size):
    return {"epoch": epoch, "batch": batch, "size": size}
