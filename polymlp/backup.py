"""BackupAndRestore: run the same script again after a crash, and lose nothing.

Keras's callback of the same name and behaviour: ``fit`` backs the training
state up to one file in a directory (at the end of every epoch, or every
``N`` iterations); when the script runs again after a crash, the same
``fit`` call restores that state as it starts and continues with the
remaining epochs and iterations; when training completes, the backup is
deleted.  Re-exported as ``polymlp.callbacks.BackupAndRestore``.

A backup holds everything a model file holds (weights, optimizer state,
counters, RNG state, the position inside the epoch) plus the History of the
interrupted ``fit`` and what identifies it: the architecture, seed and dtype
of the network, the training set's size, the batch size and ``shuffle``, the optimizer and
counters the ``fit`` started from, and the file format version.  A backup
that does not match the ``fit`` now starting is refused with an error that
says what differs; it is read and checked completely before anything is
applied, so a refused or damaged backup changes nothing.
"""

from __future__ import annotations

import json
import logging
import os

from . import _atomic, _modelfile, registry
from ._callback import Callback, check_save_freq, save_file, writes_files
from .errors import ModelFileError

log = logging.getLogger("polymlp")

BACKUP_FILE = "backup.polymlp"
BACKUP_VERSION = 1  # of the "backup" entry of the file's config

__all__ = ["BackupAndRestore"]


class BackupAndRestore(Callback):
    """Back training up to `directory`, restore it when ``fit`` runs again, delete it at the end.

    Parameters
    ----------
    directory : str or os.PathLike
        Where the backup lives (created when missing): one file,
        ``backup.polymlp``. Use one directory per training job.
    save_freq : "epoch" or int, default "epoch"
        Back up at the end of every epoch, or after every iteration whose
        count (``network.iterations``) is a multiple of ``N``, inside epochs
        too: a crash then loses at most ``N`` iterations.
    delete_checkpoint : bool, default True
        Delete the backup when training completes (Keras's name).

    Attributes
    ----------
    path : str
        The backup file.
    restored : bool
        Whether the current ``fit`` started from a backup.
    host_every : "epoch" or int
        `save_freq` (see :attr:`polymlp.callbacks.Callback.host_every`).

    Raises
    ------
    polymlp.ModelFileError
        When ``fit`` starts and finds a backup written by another network,
        training set size, batch size, optimizer or file format version, or
        a damaged one; nothing is changed then.

    Notes
    -----
    With ``fit(distributed=True)`` rank 0 writes the backup and every rank
    restores from it, so relaunching ``mpiexec`` resumes the job. The state
    of other callbacks (EarlyStopping's patience count, say) is not backed
    up; a LearningRateScheduler continues its schedule, which depends on the
    epoch only.

    Examples
    --------
    >>> import polymlp as pm
    >>> backup = pm.callbacks.BackupAndRestore("backup-dir", save_freq=200)
    >>> # net.fit(x, y, epochs=50, callbacks=[backup])   # rerun after a crash: it resumes
    """

    def __init__(self, directory, save_freq="epoch", delete_checkpoint=True):
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"`directory` must be a directory path (str or os.PathLike); got "
                            f"{directory!r} of type {type(directory).__name__}.")
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, BACKUP_FILE)
        self.save_freq = check_save_freq(save_freq)
        self.host_every = self.save_freq
        if not isinstance(delete_checkpoint, bool):
            raise TypeError(f"`delete_checkpoint` must be True or False; got "
                            f"{delete_checkpoint!r}.")
        self.delete_checkpoint = delete_checkpoint
        self.restored = False
        self._signature = None

    # --- hooks ----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        net = self.network
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise NotADirectoryError(f"BackupAndRestore needs a directory; {self.directory!r} "
                                     f"is a file. Give a directory path.")
        os.makedirs(self.directory, exist_ok=True)
        self._signature = _signature(net, self.params or {})
        self.restored = False
        if os.path.exists(self.path):
            self._restore()
        if writes_files(self):
            _atomic.clean_stale(self.path)  # what saves killed in earlier runs left behind

    def on_batch_end(self, iteration, logs=None):
        if self.save_freq != "epoch" and iteration % self.save_freq == 0:
            self._backup()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._backup()

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and writes_files(self):
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            _atomic.clean_stale(self.path)
            try:
                os.rmdir(self.directory)  # only when empty: never another job's files
            except OSError:
                pass

    # --- the work -------------------------------------------------------------------

    def _backup(self):
        save_file(self.network, self.path, True, extra={"backup": self._signature},
                  version=_modelfile.FORMAT_VERSION, history=True, writes=writes_files(self))

    def _restore(self):
        net = self.network
        # Read and check everything into a copy first: a refused backup changes nothing.
        scratch = net.to(net.backend)
        scratch, config = _modelfile.read_into(scratch, self.path, check=self._check)
        lr = self._signature["learning_rate"]
        net.theta, net.optimizer, net.opt_state = (scratch.theta, scratch.optimizer,
                                                   scratch.opt_state)
        if lr is not None and hasattr(net.optimizer, "learning_rate"):
            # The rate the fit started with: a LearningRateScheduler takes its base rate
            # from it and sets each epoch's rate itself, as in the uninterrupted run.
            net.optimizer.learning_rate = lr
        net.iterations, net.epochs_done = scratch.iterations, scratch.epochs_done
        net.rng.bit_generator.state = scratch.rng.bit_generator.state
        net._resume = {"cursor": (scratch._resume or {}).get("cursor"),
                       "history": config.get("history")}
        self.restored = True
        log.info("BackupAndRestore: restored %s (epoch %d, iteration %d).", self.path,
                 net.epochs_done, net.iterations)

    def _check(self, config):
        """Refuse a backup that does not belong to this fit: say what differs, and the fix."""
        fix = (f"If the backup belongs to another job, give this one its own directory; to "
               f"start over, delete {self.path!r}.")
        version = config.get("format_version")
        if version != _modelfile.FORMAT_VERSION:
            raise ModelFileError(
                f"The backup {self.path!r} was written in polymlp file format version "
                f"{version!r} (polymlp {config.get('polymlp_version', '?')}); this polymlp "
                f"writes version {_modelfile.FORMAT_VERSION} and resumes only its own "
                f"backups exactly. {fix}")
        saved = config.get("backup")
        if not isinstance(saved, dict):
            raise ModelFileError(f"{self.path!r} is a model file but not a BackupAndRestore "
                                 f"backup (its config has no 'backup' entry). {fix}")
        if saved.get("version") != BACKUP_VERSION:
            raise ModelFileError(f"The backup {self.path!r} has backup version "
                                 f"{saved.get('version')!r}; this polymlp reads version "
                                 f"{BACKUP_VERSION}. {fix}")
        here = self._signature
        for key, what in _COMPARED:
            if saved.get(key) != here[key]:
                raise ModelFileError(
                    f"The backup {self.path!r} was written by a different training run: "
                    f"{what} differs (backup: {_short(saved.get(key))}; this fit: "
                    f"{_short(here[key])}). Nothing was restored. {fix}")


_COMPARED = (("network", "the network (architecture, seed or dtype)"),
             ("samples", "the number of training rows"),
             ("batch_size", "the batch size"),
             ("shuffle", "shuffle"),
             ("optimizer", "the optimizer"),
             ("start", "the epoch and iteration counters the fit started from"))


def _signature(net, params):
    """What identifies one ``fit`` call: a backup is resumed only by the same one."""
    opt = net.optimizer
    signature = {
        "version": BACKUP_VERSION,
        "network": {"input_size": net.input_size, "dtype": net.dtype_name, "seed": net.seed,
                    "layers": [registry.to_config(layer) for layer in net.layers],
                    "loss": registry.to_config(net.loss_fn)},
        "samples": params.get("samples"),
        "batch_size": params.get("batch_size"),
        "shuffle": params.get("shuffle"),
        # The learning rate is left out: a scheduler changes it as training goes.
        "optimizer": None if opt is None else _without_rate(registry.to_config(opt)),
        "learning_rate": getattr(opt, "learning_rate", None),
        "start": [params.get("initial_epoch", net.epochs_done), net.iterations],
    }
    return json.loads(json.dumps(signature))  # as it reads back from the file (lists...)


def _without_rate(config):
    return {**config, "config": {k: v for k, v in config.get("config", {}).items()
                                 if k != "learning_rate"}}


def _short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
