"""The model file format: writing it, and reading and verifying its parts.

A model file holds ``config.json`` (format version, polymlp version, the
architecture as registered names with their configs, where each name came
from, and SHA-256 checksums), ``weights.npz`` and, when the optimizer is
included, ``optimizer.npz`` plus the training counters, the host RNG state
and, when saved inside an epoch, the position in that epoch, so that
training resumes exactly where it stopped.

This module knows the file, not the :class:`~polymlp.Network` class: it
reads a file into an existing network (:func:`restore_into`); building a new
network from a file is :func:`polymlp.serialization.load`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import logging
import math
import os
import platform
import zipfile

# Files are a host format by definition: weights cross to NumPy at this edge.
import numpy

from . import _atomic, _kinds, _resume, registry
from ._array_api import to_numpy
from ._install import plugin_hint
from .errors import ModelFileError

FORMAT = "polymlp.model"
# 2: a file saved inside an epoch holds the position there (config["training"]["cursor"]).
# Files without one are still written as version 1, which older polymlp reads.
FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
OPTIMIZER_FILE = "optimizer.npz"

_MAX_CONFIG_BYTES = 64 * 2**20  # a config larger than this is not one polymlp wrote
_NPY_OVERHEAD = 4096  # bytes per array for the .npy header and the zip entry, generously

_SINGULAR = _kinds.SINGULAR

log = logging.getLogger("polymlp")


# --- saving -------------------------------------------------------------------------

def save(network, path, include_optimizer=True):
    """Save `network` to one file at `path` (atomically).

    Parameters
    ----------
    network : Network
        A built network (``output()`` called).
    path : str or os.PathLike
        Destination; its directory must exist. Any existing file there is
        replaced only once the new one is completely written.
    include_optimizer : bool, default True
        Also store the optimizer (config and state), the iteration and epoch
        counters and the RNG state, so that ``fit`` on the loaded network
        continues exactly as the original would have.

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> import os, tempfile, polymlp as pm
    >>> net = pm.Network(2, seed=0).output(pm.Dense(2, "softmax"))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.polymlp")
    >>> _ = net.save(path)
    >>> pm.load(path).get_weights()[0].shape
    (2, 2)
    """
    return _save(network, path, include_optimizer)


def _save(network, path, include_optimizer, cursor=None, extra=None, version=None):
    """:func:`save`, with :func:`_members`'s private arguments (used by callbacks)."""
    path = _check_path(path)
    if not isinstance(include_optimizer, bool):
        raise TypeError(f"`include_optimizer` must be True or False; got {include_optimizer!r}.")
    network._require_built("save")
    # Everything serialised before any write.
    members = _members(network, include_optimizer, cursor, extra, version)
    _atomic_write(path, members)
    log.debug("saved network %r to %s", network.name, path)
    return path


def export(network, path):
    """Write the weights only, as a NumPy ``.npz`` (for other tools), atomically.

    Keys are ``layers.<i>.<parameter>`` (e.g. ``layers.0.W``, ``layers.0.b``) in
    layer order, with ``W`` of shape ``(inputs, outputs)``; read them with
    ``numpy.load(path)``. Returns the path written.
    """
    path = _check_path(path)
    network._require_built("export")
    weights = _named_weights(network)
    _check_finite_weights(network, weights)
    _atomic_write(path, [(None, _npz_bytes(weights))])
    return path


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path (str or os.PathLike); got {path!r} of "
                        f"type {type(path).__name__}.")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path


def _named_weights(network):
    return network.layout.named_host(to_numpy(network.theta))


def _check_finite_weights(network, weights):
    bad = [k for k, w in weights.items() if not numpy.isfinite(w).all()]
    if bad:
        raise ValueError(
            f"Network {network.name!r} has NaN or infinite weights ({', '.join(bad)}); "
            f"refusing to write a file that could not be loaded. Restore finite weights "
            f"(set_weights, or retrain with a smaller learning rate) before saving.")


def _npz_bytes(arrays):
    buf = io.BytesIO()
    numpy.savez(buf, **arrays)
    return buf.getvalue()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _members(network, include_optimizer, cursor=None, extra=None, version=None):
    """``[(name, bytes), ...]`` of the zip: computed fully before anything is written.

    `cursor` is the position inside the current epoch (:func:`polymlp._resume.capture`),
    by default the running ``fit``'s, or the one a loaded file left pending.
    `extra` adds top-level config entries (a backup's); `version` forces the
    format version (by default the lowest that can hold the contents).
    """
    if cursor is None and include_optimizer:
        cursor = _resume.capture(getattr(network, "_cursor", None), network.xp)
        if cursor is None:
            cursor = (getattr(network, "_resume", None) or {}).get("cursor")
    weights = _named_weights(network)
    _check_finite_weights(network, weights)
    weights_bytes = _npz_bytes(weights)
    config = {
        "format": FORMAT,
        "format_version": version or (FORMAT_VERSION if cursor is not None else 1),
        "polymlp_version": _polymlp_version(),
        "written_with": {"python": platform.python_version(), "numpy": numpy.__version__},
        "network": {
            "input_size": network.input_size,
            "name": str(network.name),
            "dtype": network.dtype_name,
            "seed": network.seed,
            "alpha": network.alpha,
            "backend": network.backend.name,
            "device": None if network.device is None else str(network.device),
        },
        "layers": [registry.to_config(layer) for layer in network.layers],
        "loss": registry.to_config(network.loss_fn),
        "provenance": _provenance(network, include_optimizer),
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": _sha256(weights_bytes),
            "dtype": network.dtype_name,
            "shapes": {k: list(w.shape) for k, w in weights.items()},
        },
        "optimizer": None,
        "training": None,
    }
    config.update(extra or {})
    members = [(WEIGHTS_FILE, weights_bytes)]
    if include_optimizer:
        config["training"] = {
            "iterations": int(network.iterations),
            "epochs_done": int(network.epochs_done),
            "rng": _jsonable_rng_state(network.rng.bit_generator.state),
        }
        if cursor is not None:
            config["training"]["cursor"] = {**cursor, "rng": _jsonable_rng_state(cursor["rng"])}
        if network.optimizer is not None:
            # Hyperparameters kept in the state (the learning rate) are in the config.
            kept = network.optimizer.state_hyperparameters
            scalars, arrays = _split_state({k: v for k, v in network.opt_state.items()
                                            if k not in kept})
            opt_bytes = _npz_bytes(arrays)
            config["optimizer"] = {
                **registry.to_config(network.optimizer),
                "file": OPTIMIZER_FILE,
                "sha256": _sha256(opt_bytes),
                "scalars": scalars,
                "shapes": {k: list(a.shape) for k, a in arrays.items()},
            }
            members.append((OPTIMIZER_FILE, opt_bytes))
    try:
        text = json.dumps(config, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"Network {network.name!r} cannot be saved: a layer, activation, loss or optimizer "
            f"returns a get_config() that is not plain JSON ({exc}). get_config() must return "
            f"numbers, strings, booleans, None, lists and dicts only (nested objects as "
            f"polymlp.registry.to_config(obj)). Nothing was written.") from exc
    return [(CONFIG_FILE, text.encode("utf-8"))] + members


def _polymlp_version():
    from . import __version__

    return __version__


def _kind_of(obj):
    return None if isinstance(obj, type) else _kinds.kind_of(obj)


def _components(obj, seen):
    """`obj` and every registered object it holds (activations, initializers...), once each."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    kind = _kind_of(obj)
    if kind is not None:
        yield kind, obj
    for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
        if _kind_of(value) is not None:
            yield from _components(value, seen)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if _kind_of(item) is not None:
                    yield from _components(item, seen)


def _provenance(network, include_optimizer):
    """Where each registered name came from: polymlp, a plugin distribution, or ``register``."""
    roots = list(network.layers) + [network.loss_fn]
    if include_optimizer and network.optimizer is not None:
        roots.append(network.optimizer)
    seen, rows, keys = set(), [], set()
    for root in roots:
        for kind, obj in _components(root, seen):
            cls = type(obj)
            key = (kind, cls.name)
            if key in keys:
                continue
            keys.add(key)
            source, version = registry.provenance(obj)
            if _registered_at_runtime(kind, cls):
                source, version = "registered", ""
            elif source is None:  # a class from a script, neither registered nor installed
                source, version = "unknown", ""
            rows.append({"kind": kind, "name": cls.name, "source": source, "version": version,
                         "class": f"{cls.__module__}.{cls.__qualname__}"})
    return rows


def _registered_at_runtime(kind, cls):
    return any(e.source == "registered" and e.obj is cls for e in registry.entries(kind))


def _split_state(state, prefix=""):
    """Optimizer state as JSON scalars and host arrays (nested dicts flattened with dots)."""
    scalars, arrays = {}, {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            s, a = _split_state(value, prefix=f"{name}.")
            scalars.update(s)
            arrays.update(a)
        elif isinstance(value, (bool, int, float)) or value is None:
            scalars[name] = value
        elif isinstance(value, numpy.generic) or getattr(value, "ndim", None) == 0:
            scalars[name] = to_numpy(value).item()  # a step counter: a JSON number
        else:
            arrays[name] = numpy.asarray(to_numpy(value))
    return scalars, arrays


def _jsonable_rng_state(state):
    def convert(value):
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, numpy.ndarray):
            return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
        if isinstance(value, numpy.generic):
            return value.item()
        return value

    return convert(state)


def _restore_rng_state(state):
    def convert(value):
        if isinstance(value, dict):
            if set(value) == {"__ndarray__", "dtype"}:
                return numpy.asarray(value["__ndarray__"], dtype=numpy.dtype(value["dtype"]))
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(state)


def _atomic_write(path, members):
    """Write `members` (a zip, or raw bytes for ``[(None, data)]``) to `path` atomically."""
    if len(members) == 1 and members[0][0] is None:
        data = members[0][1]
    else:
        # Built in memory first: the file is then one os.write loop, fsync and rename.
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, payload in members:
                # Weights barely compress: store them, deflate the JSON only.
                method = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
                zf.writestr(name, payload, compress_type=method)
        data = buf.getbuffer()
    _atomic.write(path, data)


# --- reading ------------------------------------------------------------------------

def read_into(net, path, check=None, build=None):
    """Read the file at `path` into `net`, a built network of the same architecture.

    Weights, and when the file has them the optimizer state, counters, RNG
    state and position inside the epoch. ``check(config)`` may refuse the file
    (raise) after its config is read and before anything else is. With `net`
    None, ``build(config) -> network`` makes the network after the checks
    (that is how :func:`polymlp.load` builds a new one). A network passed in is
    left partly changed when this raises: pass a copy to keep the original
    intact. Returns ``(network, config)``.
    """
    path = _check_path(path)
    with _open_zip(path) as zf:
        config = _read_config(zf, path)
        _check_format(config, path)
        if check is not None:
            check(config)
        _check_components(config, path)
        if net is None:
            net = build(config)
        specs = [spec for layer in net.layers for spec in layer.parameter_specs()]
        weights = _read_npz(zf, path, config["weights"], WEIGHTS_FILE, "weights",
                            _size_limit(specs))
        _set_weights(net, weights, config, path)
        _restore_training(net, zf, config, path)
    return net, config


def _open_zip(path):
    if not os.path.exists(path):
        raise ModelFileError(f"No model file at {path!r}. Check the path (the current "
                             f"directory is {os.getcwd()!r}).")
    if os.path.isdir(path):
        raise ModelFileError(f"{path!r} is a directory, not a model file.")
    with open(path, "rb") as fh:
        head = fh.read(4)
    size = os.path.getsize(path)
    try:
        return zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile:
        pass
    except Exception as exc:  # noqa: BLE001 - zipfile's errors on damaged data vary widely
        raise ModelFileError(f"{path!r} could not be read as a model file: {exc}.") from exc
    if size == 0:
        raise ModelFileError(f"{path!r} is empty (0 bytes): the save that wrote it was "
                             f"interrupted, or the copy is incomplete. Save or copy it again.")
    if head == b"PK\x03\x04":
        raise ModelFileError(
            f"{path!r} is truncated: it starts like a polymlp model file but its end (the "
            f"zip directory) is missing ({size} bytes). The copy or download is incomplete; "
            f"copy it again from the original.")
    if head[:1] == b"\x80":
        raise ModelFileError(
            f"{path!r} looks like a Python pickle. polymlp never loads pickles (a crafted "
            f"pickle can run arbitrary code); save models with Network.save().")
    raise ModelFileError(f"{path!r} is not a polymlp model file (not a zip archive). Model "
                         f"files are written by Network.save().")


def _read_member(zf, name, path, limit=None):
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(
            f"{path!r} has no {name!r}: it is not a polymlp model file, or it was damaged. "
            f"Save the network again with Network.save().") from None
    if limit is not None and info.file_size > limit:
        raise ModelFileError(
            f"{name!r} in {path!r} declares {info.file_size} bytes, more than the {limit} "
            f"this architecture needs: the file is corrupted or crafted. Refusing to read it.")
    try:
        return zf.read(name)
    except Exception as exc:  # noqa: BLE001 - zipfile's errors on damaged data vary widely
        raise ModelFileError(
            f"{name!r} in {path!r} is corrupted ({exc}); restore the file from a good "
            f"copy.") from exc


def _read_config(zf, path):
    raw = _read_member(zf, CONFIG_FILE, path, limit=_MAX_CONFIG_BYTES)
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{CONFIG_FILE!r} in {path!r} is not valid JSON ({exc}): the "
                             f"file is corrupted. Restore it from a good copy.") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not a polymlp model file (its {CONFIG_FILE} does "
                             f"not declare format {FORMAT!r}).")
    return config


def _check_format(config, path):
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path!r} has an invalid format_version {version!r}: the file "
                             f"is corrupted.")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by polymlp {config.get('polymlp_version', '?')} in file "
            f"format version {version}; this polymlp ({_polymlp_version()}) reads format "
            f"versions up to {FORMAT_VERSION}. Upgrade polymlp: pip install -U polymlp.")
    for key, kind in (("network", dict), ("layers", list), ("loss", dict), ("weights", dict)):
        if not isinstance(config.get(key), kind) or not config.get(key):
            raise ModelFileError(f"{path!r}: {CONFIG_FILE} lacks a valid {key!r} entry; the "
                                 f"file is corrupted or was not written by polymlp.")


def _check_components(config, path):
    """Every registered name the file needs must resolve here; say which plugin is missing."""
    rows = config.get("provenance")
    if not isinstance(rows, list):
        raise ModelFileError(f"{path!r}: {CONFIG_FILE} lacks its 'provenance' list; the "
                             f"file is corrupted.")
    for row in rows:
        try:
            kind, name = row["kind"], row["name"]
            source, version = row.get("source", "polymlp"), row.get("version", "")
            what = _SINGULAR[kind]
        except (KeyError, TypeError):
            raise ModelFileError(f"{path!r}: malformed provenance entry {row!r}; the file "
                                 f"is corrupted.") from None
        try:
            cls = registry.load(kind, name)
        except (ValueError, TypeError) as exc:
            raise ModelFileError(_missing_message(what, name, source, version, row)) from exc
        except Exception as exc:  # a broken or ambiguous plugin: PluginError and its causes
            raise ModelFileError(f"{what} {name!r} needed by {path!r} cannot be used here: "
                                 f"{exc}") from exc
        if source not in ("polymlp", "registered", "unknown"):
            here, here_version = registry.provenance(cls)
            if here_version and version and here_version != version:
                log.warning("%s %r was saved with %s %s; loading it with %s %s", what, name,
                            source, version, here, here_version)


def _missing_message(what, name, source, version, row):
    if source == "unknown":
        return (f"{what} {name!r} came from a class defined outside any installed package "
                f"({row.get('class', '?')}) when the file was saved: register it with "
                f"polymlp.register before loading.")
    if source == "registered":
        return (f"{what} {name!r} was registered at run time with polymlp.register (class "
                f"{row.get('class', '?')}) when the file was saved, and is not registered "
                f"in this process: import the module that registers it before loading.")
    if source == "polymlp":
        return (f"{what} {name!r} is built into polymlp {version}, which wrote the file, but "
                f"not into this polymlp {_polymlp_version()}: pip install -U polymlp.")
    try:
        installed = importlib.metadata.version(source)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if registry.autoload_disabled():  # installed plugins are not looked up at all
        return (f"{what} {name!r} comes from the plugin package {source} {version}, and "
                f"plugin autoload is off ({registry.DISABLE_ENV} is set), so installed "
                f"plugins are not looked up. Unset {registry.DISABLE_ENV} (or set it to 0) "
                f"to load it, or import the plugin's class and register it with "
                f"polymlp.register before loading.")
    if installed is None:
        return (f"{what} {name!r} comes from {source} {version}, which is not installed: "
                f"{plugin_hint(source)}")
    return (f"{what} {name!r} came from {source} {version}; the installed {source} "
            f"{installed} does not provide it: {plugin_hint(source, version)}")


def _size_limit(arrays):
    """Bytes an ``.npz`` of these (template) arrays may take at most: stops zip bombs."""
    return sum(8 * math.prod(tuple(a.shape)) + _NPY_OVERHEAD for a in arrays) + _NPY_OVERHEAD


def _read_npz(zf, path, entry, default_file, what, limit):
    """The arrays of one ``.npz`` member, checksum verified, never unpickled."""
    try:
        member = entry.get("file", default_file)
        expected_sha = entry["sha256"]
        shapes = dict(entry["shapes"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: the {what} entry of {CONFIG_FILE} is malformed "
                             f"({exc!r}); the file is corrupted.") from None
    if member not in (WEIGHTS_FILE, OPTIMIZER_FILE):
        raise ModelFileError(f"{path!r}: {CONFIG_FILE} points the {what} at {member!r}, "
                             f"which polymlp never writes; the file was edited.")
    data = _read_member(zf, member, path, limit=limit)
    if _sha256(data) != expected_sha:
        raise ModelFileError(
            f"The {what} in {path!r} fail their SHA-256 check: {member} was modified after the "
            f"file was saved (tampered with, or corrupted in a way the zip did not catch). "
            f"Do not use this file; restore it from a good copy.")
    try:
        with numpy.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelFileError(
                f"The {what} in {path!r} contain pickled Python objects. polymlp never "
                f"unpickles (a crafted pickle can run code), so this file is refused. Model "
                f"files written by polymlp hold plain numeric arrays only.") from exc
        raise ModelFileError(f"The {what} in {path!r} cannot be read ({exc}); the file is "
                             f"corrupted.") from exc
    except Exception as exc:  # noqa: BLE001 - numpy's errors on damaged .npy data vary
        raise ModelFileError(f"The {what} in {path!r} cannot be read ({exc}); the file is "
                             f"corrupted.") from exc
    for key, arr in arrays.items():
        if not isinstance(arr, numpy.ndarray) or arr.dtype.kind not in "biuf":
            raise ModelFileError(f"{what.capitalize()} {key!r} in {path!r} is not a numeric "
                                 f"array; the file is corrupted or crafted.")
    missing = [k for k in shapes if k not in arrays]
    extra = [k for k in arrays if k not in shapes]
    if missing or extra:
        raise ModelFileError(f"The {what} in {path!r} do not match {CONFIG_FILE}: missing "
                             f"{missing}, unexpected {extra}. The file was edited or damaged.")
    # Copies: arrays read from a buffer can be read-only, and the network owns its arrays.
    return {k: numpy.array(a) for k, a in arrays.items()}


def _set_weights(net, weights, config, path):
    expected = {k: tuple(shape) for k, shape in
                ((f"layers.{i}.{spec.name}", spec.shape)
                 for i, layer in enumerate(net.layers) for spec in layer.parameter_specs())}
    names = list(expected)
    if set(weights) != set(names):
        raise ModelFileError(
            f"The weights in {path!r} do not fit the architecture in {CONFIG_FILE}: the file "
            f"has {sorted(weights)}, the layers need {names}. The file was edited or damaged.")
    for key in names:
        w = weights[key]
        if tuple(w.shape) != expected[key]:
            raise ModelFileError(
                f"Weight {key!r} has shape {tuple(w.shape)} in {path!r} but the architecture "
                f"in its {CONFIG_FILE} needs {expected[key]}: config and weights do not match "
                f"(the file was edited or assembled from two models).")
        if w.dtype.kind != "f":
            raise ModelFileError(f"Weight {key!r} in {path!r} has dtype {w.dtype}, not a "
                                 f"float; the file was edited or crafted.")
        if not numpy.isfinite(w).all():
            raise ModelFileError(
                f"Weight {key!r} in {path!r} holds NaN or infinite values: the network was "
                f"saved after training diverged, or the file was edited. Retrain (with a "
                f"smaller learning rate) or use an earlier checkpoint.")
    from .data import flat_host

    net.theta = net.backend.asarray(flat_host([weights[k] for k in names], net.dtype_name))


def _restore_training(net, zf, config, path):
    training = config.get("training")
    if training is None:
        return
    try:
        iterations, epochs_done = training["iterations"], training["epochs_done"]
        rng_state = _restore_rng_state(training["rng"])
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in (iterations, epochs_done)):
            raise ValueError(f"counters {iterations!r}, {epochs_done!r}")
        net.rng.bit_generator.state = rng_state
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: the training state in {CONFIG_FILE} is invalid "
                             f"({exc!r}); the file is corrupted.") from None
    cursor = _read_cursor(training.get("cursor"), path, net)
    net.iterations, net.epochs_done = iterations, epochs_done
    net._resume = None if cursor is None else {"cursor": cursor, "history": None}
    entry = config.get("optimizer")
    if entry is None:
        return
    try:
        opt = registry.get_optimizer({"name": entry["name"], "config": entry.get("config", {})})
        scalars = dict(entry.get("scalars", {}))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path!r}: the optimizer in {CONFIG_FILE} is invalid ({exc}); "
                             f"the file is corrupted or was edited.") from exc
    fresh = opt.init(net.theta, xp=net.xp)
    templates = [v for v in _flat_values(fresh) if hasattr(v, "shape")]
    arrays = _read_npz(zf, path, entry, OPTIMIZER_FILE, "optimizer state",
                       _size_limit(templates))
    net.optimizer = opt
    net.opt_state = _rebuild_state(fresh, scalars, arrays, net, path)


def _read_cursor(cursor, path, net):
    """The position inside an epoch saved in the file (checked), or None."""
    if cursor is None:
        return None
    try:
        cursor = dict(cursor)
        ints = [cursor[k] for k in ("batch", "samples", "batch_size")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
            raise ValueError(f"batch, samples, batch_size = {ints!r}")
        if cursor["batch"] * cursor["batch_size"] > cursor["samples"] + cursor["batch_size"]:
            raise ValueError(f"batch {cursor['batch']} is past the end of the epoch")
        if not isinstance(cursor["shuffle"], bool) or cursor["record"] not in (
                "iteration", "epoch", None):
            raise ValueError(f"shuffle {cursor['shuffle']!r}, record {cursor['record']!r}")
        pending = cursor["pending"]
        for key in _resume.PENDING:
            if not isinstance(pending[key], list) or not all(
                    v is None or isinstance(v, (int, float)) for v in pending[key]):
                raise ValueError(f"pending {key!r}")
        cursor["rng"] = _restore_rng_state(cursor["rng"])
        type(net.rng.bit_generator)().state = cursor["rng"]  # refused unless well-formed
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path!r}: the position inside the epoch in {CONFIG_FILE} is "
                             f"invalid ({exc!r}); the file is corrupted.") from None
    return cursor


def _flat_values(state):
    for value in state.values():
        if isinstance(value, dict):
            yield from _flat_values(value)
        else:
            yield value


def _rebuild_state(fresh, scalars, arrays, net, path, prefix=""):
    """The saved state, shaped like ``opt.init``'s and moved onto the network's backend."""
    out = {}
    for key, template in fresh.items():
        name = f"{prefix}{key}"
        if isinstance(template, dict):
            out[key] = _rebuild_state(template, scalars, arrays, net, path, prefix=f"{name}.")
        elif not prefix and key in net.optimizer.state_hyperparameters:
            out[key] = template  # from the optimizer's config, saved with it
        elif name in scalars:
            out[key] = scalars[name]
            if hasattr(template, "shape"):  # a 0-d array in the state, a number in the file
                out[key] = net.backend.asarray(scalars[name], dtype=template.dtype)
        elif name in arrays:
            arr = arrays[name]
            shape = tuple(getattr(template, "shape", arr.shape))
            if tuple(arr.shape) != shape:
                raise ModelFileError(
                    f"Optimizer state {name!r} has shape {tuple(arr.shape)} in {path!r} but "
                    f"the network needs {shape}: config and state do not match.")
            if arr.dtype.kind == "f":
                if not numpy.isfinite(arr).all():
                    raise ModelFileError(f"Optimizer state {name!r} in {path!r} holds NaN or "
                                         f"infinite values; use an earlier checkpoint, or "
                                         f"load with the weights only and a fresh optimizer.")
                out[key] = net.backend.asarray(arr.astype(net.dtype_name))
            else:
                out[key] = net.backend.asarray(arr)
        else:
            raise ModelFileError(f"{path!r} lacks optimizer state {name!r} that "
                                 f"{type(net.optimizer).__name__} needs; the file is damaged.")
    return out
