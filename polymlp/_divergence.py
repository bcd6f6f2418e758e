"""Catching divergence (a non-finite loss or weight) without a device sync per batch.

``fit`` takes a snapshot of the parameters, optimizer state, RNG state and
counters at the start of each epoch (device copies: no host transfer, and
safe from in-place updates), and checks once at the epoch's end, with one
reduction on the device, that the weights and the recorded losses are
finite.  NaN and inf propagate, so nothing is missed by checking late.  Only
when the check fails is the epoch replayed from the snapshot, step by step,
to find the exact iteration and the last finite weights: the price is paid
on the failure path alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from .errors import TrainingDivergedError

ACTIONS = ("raise", "warn")


@dataclass
class Snapshot:
    theta: object
    state: object
    rng_state: dict
    iterations: int


@dataclass
class Divergence:
    """Where training went non-finite, and what was kept."""

    epoch: int  # 1-based
    iteration: int | None  # 1-based, None when the replay did not reproduce it
    first: int  # first iteration of the epoch
    last: int  # last iteration run in the epoch
    what: str  # "loss" or "weights"
    steps_kept: int  # iterations of the epoch whose results were kept


def _copy_state(state, xp):
    if state is None:
        return None
    return {k: (_copy_state(v, xp) if isinstance(v, dict)
                else xp.asarray(v, copy=True) if hasattr(v, "shape") else v)
            for k, v in state.items()}


def snapshot(net):
    """Copies of everything an epoch changes (cheap: one pass over the parameters)."""
    xp = net.xp
    return Snapshot(xp.asarray(net.theta, copy=True), _copy_state(net.opt_state, xp),
                    net.rng.bit_generator.state, net.iterations)


def finite(xp, theta, losses):
    """Whether the weights and the recorded batch losses (a 1-d array or None) are all
    finite: one host sync."""
    ok = xp.all(xp.isfinite(theta))
    if losses is not None:
        ok = xp.logical_and(ok, xp.all(xp.isfinite(losses)))
    return bool(ok)


def restore_last_finite(net, snap, X, Y, batch_size, shuffle, epoch, last_iteration,
                        step=None, draw_noise=None):
    """Replay the epoch from `snap`, leave the last finite state in `net`, describe the failure.

    `step` is the engine's pure step (the training step's arithmetic, on
    copies). Without one (data-parallel training, whose steps a single rank
    cannot redo alone) the state of the epoch's start is restored.
    `draw_noise(rows)` draws a batch's randomness as training did (or None).
    """
    replay = step is not None
    xp = net.xp
    net.rng.bit_generator.state = snap.rng_state
    theta, state = xp.asarray(snap.theta, copy=True), _copy_state(snap.state, xp)
    n, it = X.shape[0], snap.iterations
    if not replay:
        n = 0
    if shuffle and replay:
        perm = net.backend.asarray(net.rng.permutation(n))
        X, Y = xp.take(X, perm, axis=0), xp.take(Y, perm, axis=0)
    found = None
    for s in range(0, n, batch_size):
        if it >= last_iteration:
            break
        xb, yb = X[s:min(s + batch_size, n), ...], Y[s:min(s + batch_size, n), ...]
        noise = draw_noise(xb.shape[0]) if draw_noise is not None else None
        new_theta, new_state, loss, _ = step(theta, state, xb, yb, None, noise)
        if loss is not None and not bool(xp.isfinite(loss)):
            found = (it + 1, "loss")
            break
        if not bool(xp.all(xp.isfinite(new_theta))):
            found = (it + 1, "weights")
            break
        theta, state, it = new_theta, new_state, it + 1
    if found is None:  # not reproduced (non-deterministic device?): keep the epoch's start
        net.rng.bit_generator.state = snap.rng_state
        net.theta, net.opt_state, net.iterations = snap.theta, snap.state, snap.iterations
        return Divergence(epoch, None, snap.iterations + 1, last_iteration, "weights", 0)
    net.theta, net.opt_state, net.iterations = theta, state, it
    return Divergence(epoch, found[0], snap.iterations + 1, last_iteration, found[1],
                      it - snap.iterations)


def report(net, div, action, history):
    """Raise :class:`TrainingDivergedError` or warn, per `action`."""
    lr = getattr(net.optimizer, "learning_rate", None)
    hint = (f"Try a smaller learning rate (now {lr:g}; e.g. {lr / 10:g})"
            if isinstance(lr, float) else "Try a smaller learning rate")
    hint += ", or scale the inputs to unit variance."
    if div.iteration is not None:
        where = f"in epoch {div.epoch} at iteration {div.iteration}"
        what = "the loss" if div.what == "loss" else "the weights after the update"
        kept = (f"The network keeps the last finite weights, from iteration "
                f"{div.iteration - 1}.")
    else:
        where = f"in epoch {div.epoch} (iterations {div.first} to {div.last})"
        what = "the weights"
        kept = "The network keeps the weights it had when the epoch started."
    message = f"Training diverged {where}: {what} became NaN or infinite. {kept} {hint}"
    if action == "warn":
        warnings.warn(message + " Training stopped.", RuntimeWarning, stacklevel=4)
        return
    exc = TrainingDivergedError(message + " (fit(on_divergence='warn') warns and stops "
                                          "instead of raising.)")
    exc.epoch, exc.iteration, exc.history = div.epoch, div.iteration, history
    raise exc


def report_full_batch(net, epoch, action):
    """A full-batch optimizer (L-BFGS) left non-finite weights: raise or warn, per `action`."""
    message = (f"Training diverged in epoch {epoch}: {type(net.optimizer).__name__} produced "
               f"non-finite weights; the network keeps the weights of the epoch's start. "
               f"Scale the inputs to unit variance, or raise alpha.")
    if action == "raise":
        raise TrainingDivergedError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=4)
