"""Array interchange: inputs from every installed library reach the network's backend,
through DLPack (no host round trip) where both sit on the same device; outputs stay there."""

import numpy
import pytest

import polymlp as pm
from polymlp import data, testing
from polymlp._array_api import array_backend_name, device_of, same_device

HOST = numpy.arange(12, dtype=numpy.float32).reshape(4, 3) / 7


def _make_torch(a):
    import torch

    return torch.asarray(a)


def _make_jax(a):
    import jax.numpy as jnp

    return jnp.asarray(a)


def _make_strict(a):
    import array_api_strict as xps

    return xps.asarray(a, device=xps.Device("device1"))


def _make_cupy(a):
    import cupy

    return cupy.asarray(a)


# Source arrays: (library name as reported by the hub, maker, test backend it needs).
SOURCES = {
    "numpy": (lambda a: a, "numpy"),
    "torch": (_make_torch, "torch"),
    "jax": (_make_jax, "jax"),
    "array_api_strict": (_make_strict, "array_api_strict"),
    "cupy": (_make_cupy, "cupy"),
}


@pytest.fixture(params=list(SOURCES))
def source(request):
    make, needs = SOURCES[request.param]
    if not testing.available(needs):
        pytest.skip(f"{request.param} is not available here")
    return request.param, make(HOST)


def _target_library(backend):
    return array_backend_name(backend.xp.asarray([0.0], device=backend.device))


def test_to_backend_from_every_library(backend_name, net_kwargs, source, monkeypatch):
    name, x = source
    backend = pm.resolve_backend(**net_kwargs)
    # Host data is copied once; GPU <-> CPU needs the host; array-api-strict's from_dlpack
    # lands on its default device, not device1, so that target copies through the host by
    # design. Every other pair must hand the data over directly.
    same_place = (name == "cupy") == (backend.name == "cupy")
    direct = name == "numpy" or (same_place and backend.name != "array_api_strict")
    if direct and name != "numpy":
        def no_host(*args, **kwargs):
            raise AssertionError("went through the host")
        monkeypatch.setattr(data, "to_numpy", no_host)
    moved = data.to_backend(x, backend)
    monkeypatch.undo()
    assert array_backend_name(moved) == _target_library(backend)
    assert same_device(device_of(moved), backend.device)
    numpy.testing.assert_array_equal(pm.to_numpy(moved), HOST)


def test_network_takes_any_library_and_answers_in_its_own(backend_name, net_kwargs, source):
    name, x = source
    net = pm.Network(3, seed=0, **net_kwargs).stack(pm.Dense(5, "relu"))
    net.output(pm.Dense(2, "softmax"), loss="cross_entropy")
    labels = numpy.array([0, 1, 1, 0])
    net.fit(x, labels, epochs=2, batch_size=2)
    proba = net.predict_proba(x)
    assert array_backend_name(proba) == _target_library(net.backend)
    assert same_device(device_of(proba), net.device)
    ref = pm.Network(3, seed=0).stack(pm.Dense(5, "relu"))
    ref.output(pm.Dense(2, "softmax"), loss="cross_entropy")
    ref.fit(HOST, labels, epochs=2, batch_size=2)
    numpy.testing.assert_allclose(pm.to_numpy(proba), ref.predict_proba(HOST),
                                  atol=testing.atol_for("float32") * 10)


def test_zero_copy_between_cpu_libraries():
    """On the CPU, DLPack hands the same buffer over: proof that nothing was copied."""
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    t = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    j = jnp.arange(12, dtype=jnp.float32).reshape(4, 3)
    to_numpy = data.to_backend(t, pm.resolve_backend("numpy"))
    assert to_numpy.__array_interface__["data"][0] == t.data_ptr()
    to_torch = data.to_backend(j, pm.resolve_backend("torch"))
    assert to_torch.data_ptr() == j.unsafe_buffer_pointer()


def test_same_library_other_device_is_refused():
    xps = pytest.importorskip("array_api_strict")
    backend = pm.resolve_backend("array_api_strict", device="device1")
    x = xps.asarray(HOST)  # on the default CPU_DEVICE
    with pytest.raises(ValueError, match=r"`x` is on device .*CPU_DEVICE.* network lives on"):
        data.to_backend(x, backend)


class _ArrayLike:
    """Only ``__array__`` (as a pandas DataFrame): neither Array API nor DLPack."""

    def __array__(self, dtype=None, copy=None):
        return HOST.astype(dtype) if dtype is not None else HOST


class _DLPackOnly:
    """Only the DLPack protocol, as some array libraries' tensors."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


@pytest.mark.parametrize("wrap", [_ArrayLike, lambda: _DLPackOnly(HOST)])
def test_array_likes_without_a_namespace(wrap):
    net = pm.Network(3, seed=0).output(pm.Dense(1, None), loss="mse")
    moved = data.to_backend(wrap(), net.backend)
    numpy.testing.assert_array_equal(pm.to_numpy(moved), HOST)
    assert net.predict(wrap()).shape == (4, 1)


def test_to_numpy_from_every_library(source):
    name, x = source
    out = pm.to_numpy(x)
    assert isinstance(out, numpy.ndarray)
    numpy.testing.assert_array_equal(out, HOST)
    as64 = pm.to_numpy(x, dtype="float64")
    assert as64.dtype == numpy.float64
    numpy.testing.assert_allclose(as64, HOST)


def test_to_numpy_of_lists_and_tensors_that_need_grad():
    numpy.testing.assert_array_equal(pm.to_numpy([[1, 2], [3, 4]]), [[1, 2], [3, 4]])
    torch = pytest.importorskip("torch")
    t = torch.ones(3, requires_grad=True) * 2
    numpy.testing.assert_array_equal(pm.to_numpy(t), [2.0, 2.0, 2.0])


def test_estimator_takes_arrays_of_other_libraries(source):
    pytest.importorskip("sklearn")
    from polymlp.sklearn import MLPRegressor

    name, x = source
    y = numpy.array([0.1, 0.4, 0.2, 0.9])
    reg = MLPRegressor((4,), epochs=3, random_state=0)
    reg.fit(x, y)
    assert reg.n_features_in_ == 3
    ref = MLPRegressor((4,), epochs=3, random_state=0).fit(HOST, y)
    numpy.testing.assert_allclose(reg.predict(x), ref.predict(HOST), atol=1e-6)
    assert isinstance(reg.predict(x), numpy.ndarray)
