"""Saving and loading: round trips on every backend, exact resume, atomicity, bad files."""

import hashlib
import io
import json
import logging
import os
import pickle
import sys
import textwrap
import zipfile

import numpy
import pytest

import polymlp as pm
from polymlp import registry, serialization, testing


def _data(n=48, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, y


def _net(dtype="float32", **kwargs):
    net = pm.Network(4, name="small", seed=0, dtype=dtype, **kwargs)
    net.stack(pm.Dense(8, activation="relu")).stack(pm.Dense(6, activation="tanh"))
    return net.output(pm.Dense(3, activation="softmax"), loss="cross_entropy")


def _weights_equal(a, b):
    return all(numpy.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def _state_host(net):
    return {k: (pm.to_numpy(v) if hasattr(v, "shape") else v) for k, v in net.opt_state.items()}


# --- round trips ---------------------------------------------------------------------

def test_round_trip_same_backend(backend_name, net_kwargs, tmp_path):
    x, y = _data()
    net = _net(**net_kwargs)
    net.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01))
    path = net.save(tmp_path / "model.polymlp")
    loaded = pm.load(path, **net_kwargs)
    assert loaded.backend.name == net.backend.name
    assert str(loaded.device) == str(net.device)
    assert _weights_equal(net, loaded)
    numpy.testing.assert_array_equal(pm.to_numpy(loaded.predict_proba(x)),
                                     pm.to_numpy(net.predict_proba(x)))
    assert (loaded.iterations, loaded.epochs_done) == (net.iterations, net.epochs_done)
    assert loaded.optimizer.same_config(net.optimizer)
    for key, value in _state_host(net).items():
        numpy.testing.assert_array_equal(_state_host(loaded)[key], value)
    assert [registry.to_config(layer) for layer in loaded.layers] == \
        [registry.to_config(layer) for layer in net.layers]
    summary = loaded.summary(print_fn=None).splitlines()
    assert summary[1:] == net.summary(print_fn=None).splitlines()[1:]


def test_load_without_backend_uses_the_saved_one(backend_name, net_kwargs, tmp_path, caplog):
    net = _net(**net_kwargs)
    path = net.save(tmp_path / "m.polymlp")
    with caplog.at_level(logging.WARNING, logger="polymlp"):
        loaded = pm.load(path)
    # numpy_readonly resolves by name only where a plugin registers it (polymlp-extras does,
    # under polymlp.backends); elsewhere the file falls back to NumPy with a warning.
    if backend_name == "numpy_readonly" and registry.load_backend("numpy_readonly") is None:
        assert loaded.backend.name == "numpy"
        assert "not usable here" in caplog.text
    else:
        assert loaded.backend.name == net.backend.name
        assert str(loaded.device) == str(net.device)
        assert not caplog.records
    assert _weights_equal(net, loaded)


def test_cross_backend_round_trip(backend_name, net_kwargs, tmp_path):
    """Save on this backend and load on NumPy, and the other way: same predictions."""
    x, y = _data()
    atol = testing.atol_for("float32")
    here = _net(**net_kwargs)
    here.fit(x, y, epochs=1, batch_size=16)
    on_numpy = pm.load(here.save(tmp_path / "here.polymlp"), backend="numpy")
    numpy.testing.assert_allclose(pm.to_numpy(on_numpy.predict_proba(x)),
                                  pm.to_numpy(here.predict_proba(x)), atol=atol)

    origin = _net()
    origin.fit(x, y, epochs=1, batch_size=16)
    there = pm.load(origin.save(tmp_path / "numpy.polymlp"), **net_kwargs)
    assert there.backend.name == here.backend.name
    numpy.testing.assert_allclose(pm.to_numpy(there.predict_proba(x)),
                                  pm.to_numpy(origin.predict_proba(x)), atol=atol)
    # Training continues on the new backend from the saved optimizer state.
    there.fit(x, y, epochs=1, batch_size=16)
    origin.fit(x, y, epochs=1, batch_size=16)
    numpy.testing.assert_allclose(pm.to_numpy(there.predict_proba(x)),
                                  pm.to_numpy(origin.predict_proba(x)), atol=10 * atol)


@pytest.mark.parametrize("optimizer", [pm.Adam(0.01), pm.Momentum(0.05, nesterov=True),
                                       pm.GradientDescent(0.1)], ids=["adam", "momentum", "gd"])
def test_exact_resume(backend_name, net_kwargs, tmp_path, optimizer):
    """10 epochs in one go equal 5 epochs, save, load, 5 more: bitwise."""
    x, y = _data(64)
    whole = _net(**net_kwargs)
    h_whole = whole.fit(x, y, epochs=10, batch_size=16, optimizer=optimizer)

    first = _net(**net_kwargs)
    first.fit(x, y, epochs=5, batch_size=16, optimizer=optimizer)
    resumed = pm.load(first.save(tmp_path / "half.polymlp"), **net_kwargs)
    del first
    h_rest = resumed.fit(x, y, epochs=5, batch_size=16)  # optimizer=None: continue

    assert (resumed.iterations, resumed.epochs_done) == (whole.iterations, whole.epochs_done)
    assert _weights_equal(whole, resumed)
    assert h_rest.iteration == h_whole.iteration[20:]
    assert h_rest.loss == h_whole.loss[20:]


def test_exact_resume_with_the_same_optimizer_passed_again(tmp_path):
    x, y = _data(64)
    whole = _net()
    whole.fit(x, y, epochs=4, batch_size=16, optimizer=pm.Adam(0.01))
    half = _net()
    half.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01))
    resumed = pm.load(half.save(tmp_path / "m.polymlp"))
    resumed.fit(x, y, epochs=2, batch_size=16, optimizer=pm.Adam(0.01))  # equal: state kept
    assert _weights_equal(whole, resumed)


def test_without_optimizer_only_the_model_is_stored(tmp_path):
    x, y = _data()
    net = _net()
    net.fit(x, y, epochs=2, batch_size=16)
    path = net.save(tmp_path / "m.polymlp", include_optimizer=False)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "weights.npz"]
        config = json.loads(zf.read("config.json"))
    assert config["optimizer"] is None and config["training"] is None
    loaded = pm.load(path)
    assert loaded.optimizer is None and loaded.iterations == 0
    assert _weights_equal(net, loaded)


def test_dtype_can_be_changed_on_load(tmp_path):
    x, _ = _data()
    net = _net(dtype="float64")
    path = net.save(tmp_path / "m.polymlp")
    as32 = pm.load(path, dtype="float32")
    assert as32.dtype_name == "float32"
    numpy.testing.assert_allclose(pm.to_numpy(as32.predict_proba(x)),
                                  pm.to_numpy(net.predict_proba(x)), atol=1e-5)
    assert pm.load(path).dtype_name == "float64"


@pytest.mark.backend("array_api_strict")  # main's conftest runs it in the strict session
def test_float64_file_on_a_device_without_float64(tmp_path):
    pytest.importorskip("array_api_strict")
    path = _net(dtype="float64").save(tmp_path / "m.polymlp")
    with pytest.raises(pm.BackendError, match=r"dtype='float32'"):
        pm.load(path, backend="array_api_strict", device="no_float64")
    net = pm.load(path, backend="array_api_strict", device="no_float64", dtype="float32")
    assert net.dtype_name == "float32"


def test_model_saved_on_an_unavailable_backend_loads_on_numpy(tmp_path, caplog):
    """A model written on a GPU machine (CuPy) loads where there is no GPU."""
    if testing.available("cupy"):
        pytest.skip("cupy is usable here")
    path = _net().save(tmp_path / "m.polymlp")
    _rewrite(path, config=lambda c: c["network"].update(backend="cupy", device="cuda:0"))
    with caplog.at_level(logging.WARNING, logger="polymlp"):
        net = pm.load(path)
    assert net.backend.name == "numpy"
    assert "'cupy'" in caplog.text and "NumPy" in caplog.text


def test_export_writes_plain_weights(tmp_path):
    net = _net()
    path = net.export(tmp_path / "weights.npz")
    with numpy.load(path, allow_pickle=False) as npz:
        assert npz.files == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b",
                             "layers.2.W", "layers.2.b"]
        for key, w in zip(npz.files, net.get_weights()):
            numpy.testing.assert_array_equal(npz[key], w)


def test_config_records_versions_and_provenance(tmp_path):
    net = _net()
    net.fit(*_data(), epochs=1, batch_size=16)
    with zipfile.ZipFile(net.save(tmp_path / "m.polymlp")) as zf:
        config = json.loads(zf.read("config.json"))
    # Saved between epochs: version 1, which every polymlp reads (2 adds a position in an epoch).
    assert config["format_version"] == 1 <= serialization.FORMAT_VERSION
    assert config["polymlp_version"] == pm.__version__
    kinds = {(row["kind"], row["name"]) for row in config["provenance"]}
    assert {("layers", "dense"), ("activations", "relu"), ("activations", "softmax"),
            ("losses", "cross_entropy"), ("optimizers", "adam"),
            ("initializers", "he_uniform")} <= kinds
    assert {row["source"] for row in config["provenance"]} == {"polymlp"}
    assert config["optimizer"]["scalars"] == {"t": net.opt_state["t"]}
    assert config["training"]["rng"] == net.rng.bit_generator.state


# --- atomic saving --------------------------------------------------------------------

def _old_file(tmp_path):
    old = _net()
    path = old.save(tmp_path / "m.polymlp")
    with open(path, "rb") as fh:
        return old, path, fh.read()


def _assert_intact(path, old, old_bytes):
    with open(path, "rb") as fh:
        assert fh.read() == old_bytes
    assert _weights_equal(pm.load(path), old)
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no temp file left


def _trained():
    new = _net()
    new.fit(*_data(), epochs=1, batch_size=16)
    return new


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    old, path, old_bytes = _old_file(tmp_path)
    new = _trained()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        new.save(path)
    monkeypatch.undo()
    _assert_intact(path, old, old_bytes)


def test_interrupted_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    old, path, old_bytes = _old_file(tmp_path)
    new = _trained()
    real = zipfile.ZipFile.writestr
    calls = []

    def interrupted(self, name, data, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:  # after config.json, half-way through the members
            raise KeyboardInterrupt
        return real(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        new.save(path)
    monkeypatch.undo()
    _assert_intact(path, old, old_bytes)


def test_unserialisable_object_leaves_the_old_file_intact(tmp_path):
    old, path, old_bytes = _old_file(tmp_path)

    @pm.register("layers", "opaque_dense_test")
    class OpaqueDense(pm.Dense):
        def get_config(self):
            return {**super().get_config(), "handle": object()}

    try:
        net = pm.Network(4).stack(OpaqueDense(3)).output(pm.Dense(3, "softmax"))
        with pytest.raises(TypeError, match="not plain JSON.*Nothing was written"):
            net.save(path)
    finally:
        registry.unregister("layers", "opaque_dense_test")
    _assert_intact(path, old, old_bytes)


def test_save_refuses_non_finite_weights(tmp_path):
    net = _net()
    net.theta = net.xp.full_like(net.theta, float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        net.save(tmp_path / "m.polymlp")
    assert os.listdir(tmp_path) == []


def test_save_errors_name_the_problem(tmp_path):
    with pytest.raises(TypeError, match="`path`"):
        _net().save(42)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _net().save(tmp_path / "missing" / "m.polymlp")
    with pytest.raises(pm.NotBuiltError, match="before save"):
        pm.Network(3).save(tmp_path / "m.polymlp")


# --- bad files ------------------------------------------------------------------------

def _rewrite(path, config=None, members=None, fix_checksums=True):
    """Rewrite a model file: edit its config and members, recomputing checksums if asked."""
    with zipfile.ZipFile(path) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    cfg = json.loads(contents["config.json"])
    if config is not None:
        config(cfg)
    for name, data in (members or {}).items():
        contents[name] = data
    if fix_checksums:
        cfg["weights"]["sha256"] = hashlib.sha256(contents["weights.npz"]).hexdigest()
        if cfg.get("optimizer"):
            cfg["optimizer"]["sha256"] = hashlib.sha256(contents["optimizer.npz"]).hexdigest()
    contents["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data)


def _npz(**arrays):
    buf = io.BytesIO()
    numpy.savez(buf, **arrays)
    return buf.getvalue()


def _saved(tmp_path):
    net = _net()
    net.fit(*_data(), epochs=1, batch_size=16)
    return net.save(tmp_path / "m.polymlp")


def _weights_of(path):
    with zipfile.ZipFile(path) as zf, numpy.load(io.BytesIO(zf.read("weights.npz"))) as npz:
        return {k: npz[k] for k in npz.files}


def _load_error(path):
    with pytest.raises(pm.ModelFileError) as info:
        pm.load(path)
    return str(info.value)


def test_missing_file(tmp_path):
    assert "No model file at" in _load_error(tmp_path / "nope.polymlp")


def test_empty_file(tmp_path):
    path = tmp_path / "m.polymlp"
    path.write_bytes(b"")
    assert "is empty (0 bytes)" in _load_error(path)


def test_truncated_file(tmp_path):
    path = _saved(tmp_path)
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    assert "is truncated" in _load_error(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "m.polymlp"
    path.write_text("hello")
    assert "not a polymlp model file (not a zip archive)" in _load_error(path)


def test_zip_that_is_not_a_model(tmp_path):
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hi")
    assert "has no 'config.json'" in _load_error(path)


def test_corrupted_bytes_fail_the_crc_check(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("weights.npz")
    # Flip a byte inside the stored weights (past the local header and the .npy header).
    at = info.header_offset + 30 + len(info.filename) + 400
    data[at] ^= 0xFF
    open(path, "wb").write(bytes(data))
    assert "is corrupted" in _load_error(path) and "CRC" in _load_error(path)


def test_corrupted_zip_directory(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(open(path, "rb").read())
    entry = data.rfind(b"PK\x01\x02")  # the last central-directory record
    data[entry + 10] = 99  # an unknown compression method
    open(path, "wb").write(bytes(data))
    assert "is corrupted" in _load_error(path)


def test_corrupted_config_json(tmp_path):
    path = _saved(tmp_path)
    with zipfile.ZipFile(path) as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    contents["config.json"] = contents["config.json"][:-20]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    assert "is not valid JSON" in _load_error(path)


def test_tampered_weights_fail_the_checksum(tmp_path):
    path = _saved(tmp_path)
    weights = _weights_of(path)
    weights["layers.0.W"] = weights["layers.0.W"] + 1.0
    _rewrite(path, members={"weights.npz": _npz(**weights)}, fix_checksums=False)
    message = _load_error(path)
    assert "fail their SHA-256 check" in message and "tampered" in message


def test_non_finite_weight(tmp_path):
    path = _saved(tmp_path)
    weights = _weights_of(path)
    weights["layers.1.b"][2] = numpy.inf
    _rewrite(path, members={"weights.npz": _npz(**weights)})
    assert "'layers.1.b'" in _load_error(path) and "NaN or infinite" in _load_error(path)


def test_shape_that_does_not_match_the_config(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, config=lambda c: c["layers"][0]["config"].update(units=9))
    message = _load_error(path)
    assert "'layers.0.W' has shape (4, 8)" in message and "needs (4, 9)" in message


def test_file_from_a_newer_format_version(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, config=lambda c: c.update(format_version=99, polymlp_version="9.0"))
    message = _load_error(path)
    assert "format version 99" in message and "pip install -U polymlp" in message


def test_component_from_a_plugin_that_is_not_installed(tmp_path):
    path = _saved(tmp_path)

    def use_plugin_layer(c):
        # A plugin that is installed nowhere (polymlp-extras may be installed here).
        c["layers"][1]["name"] = "fancy_norm"
        c["provenance"].append({"kind": "layers", "name": "fancy_norm",
                                "source": "polymlp-fancy-norms", "version": "0.3.0"})

    _rewrite(path, config=use_plugin_layer)
    # The hint depends on where polymlp runs from (tests/test_install_hints.py covers both).
    from polymlp._install import plugin_hint

    assert _load_error(path) == ("layer 'fancy_norm' comes from polymlp-fancy-norms 0.3.0, "
                                 f"which is not installed: {plugin_hint('polymlp-fancy-norms')}")


def test_component_registered_at_run_time_and_missing(tmp_path):
    @pm.register("activations", "cube_persist_test")
    class Cube(pm.ElementwiseActivation):
        def value(self, z, /, *, xp):
            return z * z * z

        def derivative(self, z, /, *, xp):
            return 3 * z * z

    try:
        net = pm.Network(4, seed=0).stack(pm.Dense(5, "cube_persist_test"))
        path = net.output(pm.Dense(3, "softmax")).save(tmp_path / "m.polymlp")
        assert _weights_equal(pm.load(path), net)
    finally:
        registry.unregister("activations", "cube_persist_test")
    message = _load_error(path)
    assert "activation 'cube_persist_test' was registered at run time" in message
    assert "Cube" in message


def test_pickled_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = _saved(tmp_path)
    weights = _weights_of(path)
    payload = numpy.empty(1, dtype=object)
    payload[0] = _Evil(str(marker))
    weights["layers.0.b"] = payload
    _rewrite(path, members={"weights.npz": _npz(**weights)})
    assert "pickled Python objects" in _load_error(path)
    assert not marker.exists()


def test_pickle_in_place_of_the_weights_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = _saved(tmp_path)
    _rewrite(path, members={"weights.npz": pickle.dumps(_Evil(str(marker)))})
    assert "pickled Python objects" in _load_error(path)
    assert not marker.exists()


def test_a_pickle_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Evil(str(marker))))
    assert "looks like a Python pickle" in _load_error(path)
    assert not marker.exists()


def test_oversized_member_is_refused_before_reading(tmp_path):
    path = _saved(tmp_path)
    weights = _weights_of(path)
    weights["layers.0.W"] = numpy.zeros((2000, 2000))
    _rewrite(path, members={"weights.npz": _npz(**weights)})
    assert "more than the" in _load_error(path)


class _Evil:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- plugins: provenance recorded, clear error once uninstalled ------------------------

def test_plugin_distribution_is_recorded_and_required(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "polymlp_fakeext").mkdir(parents=True)
    (site / "polymlp_fakeext" / "__init__.py").write_text(textwrap.dedent("""
        import polymlp


        class ScaledDense(polymlp.Dense):
            name = "scaled_dense"
    """))
    info = site / "polymlp_fakeext-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: polymlp-fakeext\n"
                                   "Version: 0.3.0\n")
    (info / "entry_points.txt").write_text("[polymlp.layers]\n"
                                           "scaled_dense = polymlp_fakeext:ScaledDense\n")
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    try:
        net = pm.Network(4, seed=0).stack(pm.Dense(5, "relu"))
        net.output(registry.load("layers", "scaled_dense")(3, "softmax"))
        path = net.save(tmp_path / "m.polymlp")
        with zipfile.ZipFile(path) as zf:
            rows = json.loads(zf.read("config.json"))["provenance"]
        assert {"kind": "layers", "name": "scaled_dense", "source": "polymlp-fakeext",
                "version": "0.3.0", "class": "polymlp_fakeext.ScaledDense"} in rows
        assert _weights_equal(pm.load(path), net)
    finally:
        monkeypatch.undo()
        sys.modules.pop("polymlp_fakeext", None)
        registry.refresh()
    assert _load_error(path) == ("layer 'scaled_dense' comes from polymlp-fakeext 0.3.0, "
                                 "which is not installed: pip install polymlp-fakeext")
