"""Fault tolerance: temporary files, concurrent writers, failed writes, mid-epoch
checkpoints, and BackupAndRestore (the kill tests are in test_kill_resume.py)."""

import errno
import json
import os
import subprocess
import sys
import zipfile

import numpy
import pytest

import polymlp as pm
from polymlp import _atomic, serialization, testing
from polymlp.callbacks import BackupAndRestore, Callback, CallbackList, ModelCheckpoint

HAMMER = os.path.join(os.path.dirname(__file__), "faults", "hammer.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _data(n=90, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] * x[:, 2] > 0.3).astype(int)
    return x, y


def _net(seed=0, width=12, **kwargs):
    net = pm.Network(5, seed=seed, **kwargs).stack(pm.Dense(width, "relu"))
    return net.output(pm.Dense(3, "softmax"))


def _same(a, b):
    return all(numpy.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _temporaries(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".tmp"))


class Crash(Exception):
    pass


class CrashAt(Callback):
    """Raises at one iteration: the in-process stand-in for a killed job."""

    def __init__(self, iteration):
        self.iteration = iteration

    def on_batch_end(self, iteration, logs=None):
        if iteration == self.iteration:
            raise Crash(iteration)


FIT = dict(epochs=4, batch_size=16, optimizer="adam", validation_freq=4)


def _fit(net, x, y, callbacks=(), **kwargs):
    return net.fit(x, y, validation_data=(x[:30], y[:30]), callbacks=list(callbacks),
                   **{**FIT, **kwargs})


# --- temporary files -----------------------------------------------------------------

def _stale(path, hex_="0123456789ab", data=b"half a file"):
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{hex_}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    return tmp


def test_the_next_save_removes_a_killed_saves_temporary(tmp_path):
    path = str(tmp_path / "m.polymlp")
    stale = [_stale(path, h) for h in ("0123456789ab", "ba9876543210")]
    other = _stale(str(tmp_path / "other.polymlp"))  # another path's: not ours to remove
    _net().save(path)
    assert not any(os.path.exists(s) for s in stale)
    assert os.path.exists(other)
    assert _temporaries(tmp_path) == [os.path.basename(other)]


def test_a_temporary_that_a_live_writer_holds_is_left_alone(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    path = str(tmp_path / "m.polymlp")
    live = _stale(path)
    # Another process writing: it holds the lock on its temporary file.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys; fh = open(sys.argv[1], 'ab'); fcntl.flock(fh, fcntl.LOCK_EX); "
        "print('locked', flush=True); sys.stdin.read()"), live],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        _net().save(path)
        assert os.path.exists(live)  # still being written: never deleted under a writer
    finally:
        holder.communicate("")
    del fcntl
    _net().save(path)  # the writer is gone: now it is stale
    assert not os.path.exists(live)


def test_a_writer_whose_new_temporary_is_removed_before_it_locks_retries(tmp_path, monkeypatch):
    fcntl = pytest.importorskip("fcntl")
    real, calls = fcntl.flock, []

    def cleaner_strikes_first(fd, op):
        calls.append(op)
        if len(calls) == 1:  # a concurrent cleaner saw the new file unlocked and removed it
            for name in _temporaries(tmp_path):
                os.unlink(tmp_path / name)
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", cleaner_strikes_first)
    net = _net()
    net.save(tmp_path / "m.polymlp")
    monkeypatch.undo()
    assert len(calls) == 2  # the first temporary was lost, the second one was written
    assert _same(pm.load(tmp_path / "m.polymlp"), net)
    assert _temporaries(tmp_path) == []


def test_two_writers_and_a_reader_on_one_path(tmp_path):
    path = str(tmp_path / "shared.polymlp")
    count = 60

    def start(*args):
        proc = subprocess.Popen([sys.executable, HAMMER, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        return proc

    procs = [start("write", str(seed), str(count), path) for seed in (1, 2)]
    procs.append(start("read", str(3 * count), path))
    for proc in procs:  # all at once
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    expected = {float(_w0(seed)) for seed in (1, 2)}
    seen = [float(line) for line in outs[2][0].split()]
    assert len(seen) == 3 * count and set(seen) <= expected  # whole files of one writer only
    assert set(seen) == expected  # the writers did interleave
    assert float(pm.load(path).get_weights()[0][0, 0]) in expected
    assert _temporaries(tmp_path) == []


def _w0(seed):
    """The first weight of hammer.py's writer `seed` (built and trained as there)."""
    net = pm.Network(8, seed=seed).stack(pm.Dense(512, "relu")).stack(pm.Dense(256, "relu"))
    net.output(pm.Dense(4, "softmax"))
    net.fit([[0.0] * 8] * 4, [0, 1, 2, 3], epochs=1)
    return net.get_weights()[0][0, 0]


# --- failed writes -------------------------------------------------------------------

def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_disk_full_names_the_path_and_leaves_everything_as_it_was(tmp_path, monkeypatch, where):
    x, y = _data()
    path = str(tmp_path / "m.polymlp")
    old = _net(seed=1)
    old.save(path)
    before = open(path, "rb").read()
    net = _net(seed=2)
    _fit(net, x, y, epochs=1)
    weights, iterations = net.get_weights(), net.iterations
    monkeypatch.setattr(os, where, _enospc)
    with pytest.raises(OSError) as info:
        net.save(path)
    monkeypatch.undo()
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert path in message and "No space left on device" in message and "disk is full" in message
    assert open(path, "rb").read() == before and _same(pm.load(path), old)
    assert _temporaries(tmp_path) == []
    assert net.iterations == iterations
    assert all(numpy.array_equal(a, b) for a, b in zip(net.get_weights(), weights))
    net.save(path)  # the disk has room again: saving works
    assert _same(pm.load(path), net)


def test_permission_lost_names_the_path_and_the_cause(tmp_path, monkeypatch):
    path = str(tmp_path / "m.polymlp")
    real_open = os.open

    def denied(name, flags, *args, **kwargs):
        if str(name).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(PermissionError, match="Permission denied") as info:
        _net().save(path)
    monkeypatch.undo()
    assert path in str(info.value) and "make the directory writable" in str(info.value)
    assert not os.path.exists(path)


def test_a_removed_directory_names_the_path(tmp_path):
    directory = tmp_path / "gone"
    directory.mkdir()
    directory.rmdir()
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        _net().save(directory / "m.polymlp")
    assert str(directory / "m.polymlp") in str(info.value)


def test_a_checkpoint_that_fails_to_write_stops_fit_and_keeps_the_previous_file(
        tmp_path, monkeypatch):
    x, y = _data()
    path = str(tmp_path / "ckpt.polymlp")
    calls = []
    real = os.replace

    def full_on_the_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            _enospc()
        return real(src, dst)

    monkeypatch.setattr(os, "replace", full_on_the_third)
    ckpt = ModelCheckpoint(path, save_freq=2)
    net = _net()
    with pytest.raises(OSError, match="disk is full"):
        _fit(net, x, y, callbacks=[ckpt])
    monkeypatch.undo()
    assert ckpt.saved == [path, path]  # the failed save is not counted
    assert net.iterations == 6  # training stopped at the failed save, its state intact
    assert pm.load(path).iterations == 4
    assert _temporaries(tmp_path) == []


# --- ModelCheckpoint inside epochs -------------------------------------------------

def test_checkpoint_every_n_iterations_names_and_prunes_files(tmp_path):
    x, y = _data()  # 6 batches per epoch
    (tmp_path / "ckpt-e0-i0003.polymlp").write_bytes(b"from an earlier run")
    ckpt = ModelCheckpoint(tmp_path / "ckpt-e{epoch}-i{iteration:04d}.polymlp", save_freq=4,
                           keep_last=2)
    assert ckpt.host_every == 4
    _fit(_net(), x, y, callbacks=[ckpt])
    assert [os.path.basename(p) for p in ckpt.saved] == [
        "ckpt-e1-i0004.polymlp", "ckpt-e2-i0008.polymlp", "ckpt-e2-i0012.polymlp",
        "ckpt-e3-i0016.polymlp", "ckpt-e4-i0020.polymlp", "ckpt-e4-i0024.polymlp"]
    assert sorted(os.listdir(tmp_path)) == ["ckpt-e4-i0020.polymlp", "ckpt-e4-i0024.polymlp"]
    assert pm.load(ckpt.saved[-1]).iterations == 24


def test_checkpoint_arguments_are_checked():
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("m.polymlp", save_freq=0)
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("m.polymlp", save_freq="batch")
    with pytest.raises(ValueError, match="save_freq='epoch'"):
        ModelCheckpoint("m.polymlp", save_best_only=True, save_freq=10)
    with pytest.raises(ValueError, match="keep_last"):
        ModelCheckpoint("m-{epoch}.polymlp", keep_last=0)
    x, y = _data()
    with pytest.raises(ValueError, match="val_loss"):  # epoch logs are not there inside epochs
        _net().fit(x, y, callbacks=[ModelCheckpoint("m-{val_loss}.polymlp", save_freq=3)],
                   validation_data=(x, y))


def test_host_every_tells_a_loop_where_to_stop():
    class EveryBatch(Callback):
        def on_batch_end(self, iteration, logs=None):
            pass

    class EveryTen(EveryBatch):
        host_every = 10

    assert CallbackList([], None).host_every == "epoch"
    assert CallbackList([ModelCheckpoint("m.polymlp")], None).host_every == "epoch"
    assert not CallbackList([ModelCheckpoint("m.polymlp")], None).batch_hooks
    assert CallbackList([ModelCheckpoint("m.polymlp", save_freq=6), EveryTen()],
                        None).host_every == 2
    assert CallbackList([BackupAndRestore("d", save_freq=4), EveryBatch()],
                        None).host_every == 1

    if _has("tensorboardX"):  # TensorBoard needs the host only where it writes batch_loss
        from polymlp.callbacks import TensorBoard

        assert CallbackList([TensorBoard("runs", update_freq=25)], None).host_every == 25
        assert CallbackList([TensorBoard("runs")], None).host_every == "epoch"

    class Bad(Callback):
        host_every = 0

    with pytest.raises(ValueError, match="Bad.host_every must be"):
        CallbackList([Bad()], None)


@pytest.mark.parametrize("record", ["iteration", "epoch"])
def test_a_mid_epoch_checkpoint_resumes_exactly(backend_name, net_kwargs, tmp_path, record):
    """Save at iteration 10 (inside epoch 2), load, fit the 3 remaining epochs: the same run."""
    x, y = _data()
    whole = _net(**net_kwargs)
    h_whole = _fit(whole, x, y, record=record)
    first = _net(**net_kwargs)
    ckpt = ModelCheckpoint(tmp_path / "c-{iteration}.polymlp", save_freq=10)
    with pytest.raises(Crash):
        _fit(first, x, y, callbacks=[ckpt, CrashAt(11)], record=record)
    with zipfile.ZipFile(tmp_path / "c-10.polymlp") as zf:
        config = json.loads(zf.read("config.json"))
    assert config["format_version"] == serialization.FORMAT_VERSION == 2
    assert config["training"]["cursor"]["batch"] == 4  # batches 0-3 of epoch 2 were run
    resumed = pm.load(tmp_path / "c-10.polymlp", **net_kwargs)
    assert (resumed.epochs_done, resumed.iterations) == (1, 10)
    h_rest = _fit(resumed, x, y, epochs=3, record=record)
    assert (resumed.epochs_done, resumed.iterations) == (4, 24)
    if backend_name == "array_api_strict":  # trained on its non-default device, kept there
        assert resumed.theta.device == resumed.device == first.device  # "device1"
        assert str(resumed.device) != str(pm.resolve_backend("array_api_strict").device)
    got, want = resumed.get_weights(), whole.get_weights()
    if backend_name in ("numpy", "numpy_readonly"):
        assert _same(resumed, whole)
        n = len(h_whole) - len(h_rest)
        for key in h_whole.keys():
            assert str(h_rest[key]) == str(h_whole[key][n:]), key  # NaN rows compare too
    else:
        for a, b in zip(got, want):
            numpy.testing.assert_allclose(a, b, atol=10 * testing.atol_for("float32"))
    if record == "iteration":  # the resumed epoch is recorded whole, from its first row
        assert h_rest.iteration == list(range(7, 25))


def test_a_mid_epoch_file_needs_the_same_batches(tmp_path):
    x, y = _data()
    ckpt = ModelCheckpoint(tmp_path / "c.polymlp", save_freq=8)
    with pytest.raises(Crash):
        _fit(_net(), x, y, callbacks=[ckpt, CrashAt(9)])
    resumed = pm.load(tmp_path / "c.polymlp")
    with pytest.raises(ValueError, match="batch_size=32") as info:
        _fit(resumed, x, y, batch_size=32)
    assert "batches of 16" in str(info.value) and "same training data" in str(info.value)
    assert resumed.iterations == 8  # nothing trained
    resaved = pm.load(resumed.save(tmp_path / "again.polymlp"))  # the position is kept
    assert resaved._resume["cursor"]["batch"] == 2


# --- BackupAndRestore ----------------------------------------------------------------

@pytest.mark.parametrize("save_freq", ["epoch", 5])
def test_backup_resumes_the_same_fit_exactly_and_is_deleted(tmp_path, save_freq):
    x, y = _data()
    whole = _net()
    h_whole = _fit(whole, x, y)
    backup_dir = tmp_path / "backup"
    for crash in (9, 17):  # two crashes, inside epochs 2 and 3
        with pytest.raises(Crash):
            _fit(_net(), x, y, callbacks=[BackupAndRestore(backup_dir, save_freq), CrashAt(crash)])
        assert os.path.exists(backup_dir / "backup.polymlp")
    backup = BackupAndRestore(backup_dir, save_freq)
    again = _net()
    h_again = _fit(again, x, y, callbacks=[backup])
    assert backup.restored
    assert _same(again, whole)
    assert again.iterations == whole.iterations == 24
    assert str(h_again.columns) == str(h_whole.columns)  # whole History: no gap, no duplicate
    assert h_again.epoch_ends == h_whole.epoch_ends == [6, 12, 18, 24]
    assert not backup_dir.exists()  # deleted when training completed


def test_backup_kept_with_delete_checkpoint_false(tmp_path):
    x, y = _data()
    _fit(_net(), x, y, epochs=1, callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    assert pm.load(tmp_path / "backup.polymlp").epochs_done == 1


def _crashed_backup(tmp_path, **fit):
    x, y = _data()
    with pytest.raises(Crash):
        _fit(_net(), x, y, callbacks=[BackupAndRestore(tmp_path, save_freq=3), CrashAt(8)],
             **fit)
    return tmp_path / "backup.polymlp"


def _rewrite_config(path, change):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("case, net, fit, match", [
    ("architecture", lambda: _net(width=13), {}, "the network"),
    ("seed", lambda: _net(seed=7), {}, "the network"),
    ("dtype", lambda: _net(dtype="float64"), {}, "the network"),
    ("rows", _net, {"rows": 80}, "the number of training rows"),
    ("batch size", _net, {"batch_size": 15}, "the batch size"),
    ("optimizer", _net, {"optimizer": "momentum"}, "the optimizer"),
    ("shuffle", _net, {"shuffle": False}, "shuffle differs"),
])
def test_backup_of_another_run_is_refused_and_nothing_changes(tmp_path, case, net, fit, match):
    path = _crashed_backup(tmp_path)
    before = path.read_bytes()
    x, y = _data()
    rows = fit.pop("rows", len(x))
    target = net()
    weights = target.get_weights()
    with pytest.raises(pm.ModelFileError, match=match) as info:
        _fit(target, x[:rows], y[:rows], callbacks=[BackupAndRestore(tmp_path, save_freq=3)],
             **fit)
    assert "different training run" in str(info.value) and str(path) in str(info.value)
    assert "delete" in str(info.value)
    assert target.iterations == 0 and target._resume is None
    assert all(numpy.array_equal(a, b) for a, b in zip(target.get_weights(), weights))
    assert path.read_bytes() == before


@pytest.mark.parametrize("version", [1, 3])
def test_backup_from_another_format_version_is_refused(tmp_path, version):
    path = _crashed_backup(tmp_path)
    _rewrite_config(path, lambda c: c.update(format_version=version))
    x, y = _data()
    target = _net()
    with pytest.raises(pm.ModelFileError, match=f"format version {version}"):
        _fit(target, x, y, callbacks=[BackupAndRestore(tmp_path, save_freq=3)])
    assert target.iterations == 0


def test_a_model_file_is_not_taken_for_a_backup(tmp_path):
    x, y = _data()
    net = _net()
    _fit(net, x, y, epochs=1)
    net._cursor = None
    pm.serialization.save(net, tmp_path / "backup.polymlp")
    _rewrite_config(tmp_path / "backup.polymlp", lambda c: c.update(format_version=2))
    with pytest.raises(pm.ModelFileError, match="not a BackupAndRestore backup"):
        _fit(_net(), x, y, callbacks=[BackupAndRestore(tmp_path)])


def test_backup_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError, match="directory"):
        BackupAndRestore(3)
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(tmp_path, save_freq=-1)
    (tmp_path / "file").write_text("")
    x, y = _data()
    with pytest.raises(NotADirectoryError, match="is a file"):
        _fit(_net(), x, y, callbacks=[BackupAndRestore(tmp_path / "file")])


def test_stale_temporaries_are_cleaned(tmp_path):
    _stale(str(tmp_path / "backup.polymlp"))
    _stale(str(tmp_path / "ck-7.polymlp"), "aaaaaaaaaaaa")
    x, y = _data()
    _fit(_net(), x, y, epochs=1, callbacks=[
        BackupAndRestore(tmp_path), ModelCheckpoint(tmp_path / "ck-{iteration}.polymlp")])
    assert _temporaries(tmp_path) == []
    assert _atomic.clean_stale(str(tmp_path / "backup.polymlp")) == 0


def test_backup_resumes_on_every_backend(backend_name, net_kwargs, tmp_path):
    x, y = _data()
    whole = _net(**net_kwargs)
    h_whole = _fit(whole, x, y)
    with pytest.raises(Crash):
        _fit(_net(**net_kwargs), x, y, callbacks=[BackupAndRestore(tmp_path, 5), CrashAt(13)])
    again = _net(**net_kwargs)
    h_again = _fit(again, x, y, callbacks=[BackupAndRestore(tmp_path, 5)])
    assert again.device == whole.device and again.theta.device == whole.theta.device
    assert h_again.iteration == h_whole.iteration
    atol = 10 * testing.atol_for("float32")
    for a, b in zip(again.get_weights(), whole.get_weights()):
        numpy.testing.assert_allclose(a, b, atol=atol)
    numpy.testing.assert_allclose(h_again.loss, h_whole.loss, atol=atol)
