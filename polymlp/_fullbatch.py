"""Training with a full-batch optimizer (``full_batch = True``, e.g. :class:`polymlp.LBFGS`).

Such an optimizer is not stepped per batch: each epoch is one
``optimizer.minimize(objective, theta, state, xp=xp)`` over the whole
training set, where ``objective(theta) -> (loss, flat gradient)`` is the
engine's objective (the L2 penalty and sample weights included), compiled
where the backend compiles and the layers trace. It returns ``(theta, state,
losses)``; training stops after an epoch whose state reports ``status == 0``
(converged). The history holds the loss after each of the optimizer's
iterations (``record="iteration"``) or epochs.
"""

from __future__ import annotations

from math import nan

from . import _divergence
from ._engine import _TracingRng

EVAL_CHUNK = 8192  # as polymlp._loop's (not imported: that module imports this one)


def run(trainer, X, Y):
    """:meth:`polymlp._loop.Trainer.run` for a full-batch optimizer; the History."""
    net, s, cbs, engine = trainer.net, trainer.settings, trainer.callbacks, trainer.engine
    if trainer.dp is not None:
        raise ValueError(f"{type(net.optimizer).__name__} is a full-batch optimizer and "
                         f"does not train data-parallel; use distributed=False.")
    xp, metric, hist = net.xp, trainer.metric, trainer.hist
    objective = _objective(engine, net, X, Y)
    net.stop_training, logs = False, {}
    cbs.on_train_begin()
    for _ in range(s.epochs):
        epoch, start = net.epochs_done, net.theta
        cbs.on_epoch_begin(epoch)
        theta, state, losses = net.optimizer.minimize(objective, net.theta, net.opt_state,
                                                      xp=xp)
        if not bool(xp.all(xp.isfinite(theta))):
            net.theta = start
            _divergence.report_full_batch(net, epoch, s.on_divergence)
            break
        net.theta, net.opt_state = theta, state
        net.iterations += len(losses)
        net.epochs_done += 1
        loss, score = (float(v) for v in engine.evaluate(theta, X, Y, EVAL_CHUNK))
        row = {}
        if s.validation is not None:
            vl, vm = engine.evaluate(theta, *s.validation, EVAL_CHUNK)
            row = {"val_loss": float(vl), f"val_{metric}": float(vm)}
        if s.record == "iteration" and losses:
            n = len(losses)
            hist.extend("iteration", range(net.iterations - n + 1, net.iterations + 1))
            hist.epoch_ends.append(net.iterations)
            hist.extend("loss", losses)
            hist.extend(metric, [nan] * (n - 1) + [score])
            for key, value in row.items():
                hist.extend(key, [nan] * (n - 1) + [value])
        elif s.record == "epoch":
            hist.append(epoch=net.epochs_done, loss=loss, **{metric: score}, **row)
        logs = {"loss": loss, metric: score, **row}
        cbs.on_epoch_end(epoch, logs)
        if net.stop_training or int(state.get("status", 1)) == 0:
            break
    cbs.on_train_end(logs)
    return hist


def _objective(engine, net, X, Y):
    """``objective(theta) -> (loss, flat gradient)`` over the whole set; compiled where
    the backend compiles (eager from the first trace failure on, e.g. a layer that
    draws host randomness)."""
    def with_rng(rng):
        def objective(theta):
            grad, loss, _ = engine.gradient(theta, X, Y, want_loss=True, rng=rng)
            return loss, grad
        return objective

    eager = with_rng(net.rng)
    if not net.backend.compiles or engine.noisy:
        return eager
    compiled = net.backend.jit(with_rng(_TracingRng()))  # host randomness cannot be traced
    use = [compiled]

    def objective(theta):
        if use[0] is compiled:
            try:
                return compiled(theta)
            except Exception:  # noqa: BLE001 - not traceable: run eagerly from now on
                use[0] = eager
        return use[0](theta)

    return objective
