"""The position of training inside an epoch, so that a checkpoint can resume there.

``fit`` keeps a :class:`Cursor` on the network (``network._cursor``) while an
epoch runs, and updates its ``batch`` at each batch boundary where host code
runs.  The cursor holds what regenerates the epoch's order, the RNG state
taken just before the epoch's permutation was drawn, instead of the
permutation itself (a few hundred bytes rather than one integer per row),
and the values the epoch has recorded so far (``pending``), so that the
resumed epoch logs the same means and History rows as an uninterrupted one.

A file saved inside an epoch stores :func:`capture`'s dict; loading it (or
:class:`polymlp.callbacks.BackupAndRestore` restoring it) leaves it in
``network._resume``, and the next ``fit`` takes it with :func:`take`: it
regenerates the permutation from the saved RNG state, puts the RNG back to
where it was when the file was saved, and continues from the saved batch.
(The file format converts the RNG states to JSON; this module sees them as
``bit_generator.state`` dicts.)
"""

from __future__ import annotations

import math

from ._array_api import to_numpy

# The per-batch values an epoch accumulates before recording them at its end.
PENDING = ("loss", "metric", "size", "val_loss", "val_metric")


class Cursor:
    """Where ``fit`` is inside the current epoch (host values only; internal)."""

    __slots__ = ("rng_state", "batch", "samples", "batch_size", "shuffle", "record",
                 "validation", "lists", "history", "dp")

    def __init__(self, rng_state, batch, samples, batch_size, shuffle, record, validation,
                 lists, history, dp=None):
        self.rng_state = rng_state  # before this epoch's permutation was drawn
        self.batch = batch  # next batch (0-based) to run in this epoch; None once it ended
        self.samples, self.batch_size, self.shuffle = samples, batch_size, shuffle
        self.record, self.validation = record, validation
        self.lists = lists  # the epoch's (losses, metrics, sizes, vlosses, vmetrics)
        self.history = history  # the History of this fit call (epochs already recorded)
        self.dp = dp


def capture(cursor, xp, collective=False):
    """The JSON-able state of `cursor`, or None (no epoch in progress).

    With `collective` (every MPI rank calls it at the same batch), the pending
    shard values are summed over the ranks, so the file holds global values.
    """
    if cursor is None or cursor.batch is None:  # no fit, or between two epochs
        return None
    losses, metrics, sizes, vlosses, vmetrics = cursor.lists
    pending = {"loss": _host(losses, xp, cursor.dp if collective else None),
               "metric": _host(metrics, xp, cursor.dp if collective else None),
               "size": [int(s) for s in sizes],
               "val_loss": _host(vlosses, xp), "val_metric": _host(vmetrics, xp)}
    return {"rng": cursor.rng_state, "batch": int(cursor.batch),
            "samples": int(cursor.samples), "batch_size": int(cursor.batch_size),
            "shuffle": bool(cursor.shuffle), "record": cursor.record,
            "validation": bool(cursor.validation),
            "pending": {k: [None if isinstance(v, float) and math.isnan(v) else v
                            for v in values] for k, values in pending.items()}}


def _is_nan(v):
    return isinstance(v, float) and math.isnan(v)


def _host(values, xp, dp=None):
    """Floats from device arrays (0-d values of single steps, 1-d stacks of compiled
    chunks) and NaN placeholders (kept), in one transfer."""
    arrays = [xp.reshape(v, (-1,)) for v in values if not _is_nan(v)]
    if not arrays:
        return [math.nan if isinstance(v, float) else v for v in values]
    flat = xp.concat(arrays)
    if dp is not None:
        flat = dp.allreduce(flat)
    host = iter(to_numpy(flat).tolist())
    out = []
    for v in values:
        if _is_nan(v):
            out.append(math.nan)
        else:
            out.extend(next(host) for _ in range(1 if v.ndim == 0 else v.shape[0]))
    return out


def history_rows(history):
    """The columns of a History as JSON-able lists (NaN as None)."""
    if history is None:
        return None
    return {"step": history.step,
            "columns": {k: [None if math.isnan(v) else v for v in col]
                        for k, col in history.columns.items()},
            "epoch_ends": [int(e) for e in getattr(history, "epoch_ends", ())]}


def take(net, samples, batch_size, shuffle, record, validation, hist, dp=None):
    """The saved position for this ``fit`` (checked), or None; prefills `hist`.

    Called by ``fit`` after ``on_train_begin`` (where a backup is restored).
    Raises ``ValueError`` when the saved position belongs to another
    configuration: continuing it with other data or batches would silently
    train on a different order than the one the epoch started with.
    """
    saved = getattr(net, "_resume", None)
    if saved is None:
        return None
    cursor = saved.get("cursor")
    if cursor is not None:
        got = {"samples": samples, "batch_size": batch_size, "shuffle": shuffle}
        want = {k: cursor[k] for k in got}
        if got != want:  # raised with the position kept: a corrected fit() can still use it
            raise ValueError(
                f"Network {net.name!r} was saved inside epoch {net.epochs_done + 1}, at batch "
                f"{cursor['batch']} of a pass over {want['samples']} rows in batches of "
                f"{want['batch_size']} (shuffle={want['shuffle']}); fit() was called with "
                f"{got['samples']} rows, batch_size={got['batch_size']}, "
                f"shuffle={got['shuffle']}. Call fit() with the same training data, "
                f"batch_size and shuffle to finish that epoch exactly.")
    net._resume = None
    rows = saved.get("history")
    if rows is not None and rows.get("step") == hist.step:
        for key, col in rows["columns"].items():
            hist.extend(key, [math.nan if v is None else v for v in col])
        if hasattr(hist, "epoch_ends"):  # where History.plot marks epochs
            hist.epoch_ends[:0] = [int(e) for e in rows.get("epoch_ends", ())]
    return cursor


def prefill(backend, dtype, cursor, record, validation, is_root=True):
    """The epoch's lists as the saved cursor left them (empty if recorded differently)."""
    lists = ([], [], [], [], [])
    if cursor is None or cursor["record"] != record or bool(cursor["validation"]) != validation:
        return lists
    pending = cursor["pending"]
    def device(values, zero=False):
        return [backend.asarray(0.0 if zero else v, dtype=dtype) for v in values]

    # Under MPI the epoch's values are summed over ranks at its end: rank 0 carries them.
    lists[0].extend(device(pending["loss"], zero=not is_root))
    lists[1].extend(device(pending["metric"], zero=not is_root))
    lists[2].extend(int(s) for s in pending["size"])
    for i, key in ((3, "val_loss"), (4, "val_metric")):
        lists[i].extend(math.nan if v is None else backend.asarray(v, dtype=dtype)
                        for v in pending[key])
    return lists
