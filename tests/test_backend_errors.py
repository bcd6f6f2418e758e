"""Backends that import but cannot train: a clear BackendError, and only usable devices listed."""

import types

import numpy
import pytest

import polymlp as pm
from polymlp import _array_api


class CUDARuntimeError(RuntimeError):
    """Stands in for cupy_backends.cuda.api.runtime.CUDARuntimeError."""


DRIVER = ("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA "
          "runtime version")


def _fake_cupy():
    """A module named cupy that imports but fails as CuPy does without a usable driver."""
    cupy = types.ModuleType("cupy")

    def asarray(*args, **kwargs):
        raise CUDARuntimeError(DRIVER)

    cupy.asarray = asarray
    cupy.ndarray = type("ndarray", (), {})  # what array_api_compat looks for
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=lambda: (_ for _ in ()).throw(CUDARuntimeError(DRIVER))))
    return cupy


def test_cupy_without_a_driver_is_a_backend_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "cupy", _fake_cupy())
    with pytest.raises(pm.BackendError) as info:
        pm.resolve_backend("cupy")
    message = str(info.value)
    assert "CuPy is installed but no CUDA device or driver is usable here" in message
    assert DRIVER in message and "CUDARuntimeError" in message  # the driver's own words
    assert "backend='numpy'" in message and "polymlp backends" in message  # the fix
    with pytest.raises(pm.BackendError, match="CuPy is installed"):
        pm.Network(4, backend="cupy")
    row = {r["name"]: r for r in pm.describe_backends()}["cupy"]
    assert row["usable"] is False and "cudaErrorInsufficientDriver" in row["why"]


class _Info:
    def __init__(self, fail):
        self.fail = fail

    def default_device(self):
        raise self.fail

    def devices(self):
        raise self.fail


def test_a_namespace_whose_device_query_raises(monkeypatch):
    fake = types.ModuleType("fakegpu")
    fake.asarray = numpy.asarray
    fake.__array_namespace_info__ = lambda: _Info(CUDARuntimeError(DRIVER))
    with pytest.raises(pm.BackendError) as info:
        pm.resolve_backend(fake)
    message = str(info.value)
    assert "'fakegpu' is installed but cannot compute here" in message and DRIVER in message
    assert "backend='numpy'" in message
    # The same for a known library whose device query fails: CuPy's own words.
    monkeypatch.setattr(_array_api, "_namespace_for", lambda name: fake)
    with pytest.raises(pm.BackendError, match="CuPy is installed but no CUDA device"):
        pm.resolve_backend("cupy")


def test_a_default_device_that_cannot_compute(monkeypatch):
    fake = types.ModuleType("nodata")
    fake.__array_namespace_info__ = numpy.__array_namespace_info__
    fake.asarray = lambda *a, **k: (_ for _ in ()).throw(NotImplementedError("no data here"))
    with pytest.raises(pm.BackendError, match=r"cannot compute here \(NotImplementedError: "
                                              r"no data here\)"):
        pm.resolve_backend(fake)


@pytest.mark.backend("torch")
def test_torch_meta_device_is_not_listed_and_refused():
    pytest.importorskip("torch")
    row = {r["name"]: r for r in pm.describe_backends()}["torch"]
    assert row["usable"] and "cpu" in row["devices"] and "meta" not in row["devices"]
    with pytest.raises(pm.BackendError) as info:
        pm.Network(4, backend="torch", device="meta")
    message = str(info.value)
    assert "`device='meta'` of backend 'torch' cannot train" in message
    assert "Devices that can: cpu" in message
    assert pm.Network(4, backend="torch", device="cpu").device.type == "cpu"
