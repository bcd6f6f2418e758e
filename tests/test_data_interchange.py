"""Array interchange: inputs from every installed library reach the network's backend,
through DLPack (no host round trip) where both sit on the same device; outputs stay there.

Each test takes `backend_name` and checks the pairs it forms with every other installed
library, in both directions, so that a session with one backend (plus NumPy) checks all
that it can, and a machine with every library checks every pair.
"""

import numpy
import pytest

import polymlp as pm
from polymlp import data, testing
from polymlp._array_api import array_backend_name, device_of, same_device

HOST = numpy.arange(12, dtype=numpy.float32).reshape(4, 3) / 7
OTHERS = ("numpy", "array_api_strict", "torch", "jax", "cupy")


def _backend(name):
    return pm.resolve_backend(**testing.network_kwargs(name))


def _library(backend):
    return array_backend_name(backend.xp.asarray([0.0], device=backend.device))


@pytest.fixture(params=[("from", o) for o in OTHERS] + [("to", o) for o in OTHERS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, backend_name, net_kwargs):
    """``(source backend, target backend)``: `other` into this backend, or the reverse."""
    direction, other = request.param
    if not testing.available(other):
        pytest.skip(f"{other} is not available here")
    this = pm.resolve_backend(**net_kwargs)
    return (_backend(other), this) if direction == "from" else (this, _backend(other))


def _address(x):
    """Address of an array's first element (NumPy, PyTorch and JAX only)."""
    if isinstance(x, numpy.ndarray):
        return x.__array_interface__["data"][0]
    if hasattr(x, "data_ptr"):
        return x.data_ptr()
    return x.unsafe_buffer_pointer()


def test_to_backend(pair, monkeypatch):
    source, target = pair
    x = source.asarray(HOST)
    src, tgt = _library(source), _library(target)
    # Host data is copied once; GPU <-> CPU needs the host; array-api-strict's from_dlpack
    # lands on its default device, not device1, so that target copies through the host by
    # design. Every other pair must hand the data over directly.
    same_place = (src == "cupy") == (tgt == "cupy")
    if src != "numpy" and same_place and tgt != "array_api_strict":
        def no_host(*args, **kwargs):
            raise AssertionError(f"{src} -> {tgt} went through the host")
        monkeypatch.setattr(data, "to_numpy", no_host)
    moved = data.to_backend(x, target)
    monkeypatch.undo()
    assert array_backend_name(moved) == tgt
    assert same_device(device_of(moved), target.device)
    numpy.testing.assert_array_equal(pm.to_numpy(moved), HOST)
    if src in ("torch", "jax") and tgt in ("numpy", "torch") and src != tgt:
        # On the CPU, NumPy and PyTorch import DLPack without copying: the very same
        # buffer. (JAX may copy a CPU buffer to align it, still without the host path.)
        assert _address(moved) == _address(x)


def test_network_answers_on_its_own_backend(pair):
    source, target = pair
    x = source.asarray(HOST)
    labels = numpy.array([0, 1, 1, 0])
    nets = []
    for kwargs in ({"backend": target}, {}):
        net = pm.Network(3, seed=0, **kwargs).stack(pm.Dense(5, "relu"))
        nets.append(net.output(pm.Dense(2, "softmax"), loss="cross_entropy"))
    net, ref = nets
    net.fit(x, labels, epochs=2, batch_size=2)
    ref.fit(HOST, labels, epochs=2, batch_size=2)
    proba = net.predict_proba(x)
    assert array_backend_name(proba) == _library(target)
    assert same_device(device_of(proba), net.device)
    numpy.testing.assert_allclose(pm.to_numpy(proba), ref.predict_proba(HOST),
                                  atol=testing.atol_for("float32") * 10)


def test_to_numpy(backend_name, net_kwargs):
    backend = pm.resolve_backend(**net_kwargs)
    x = backend.asarray(HOST)
    out = pm.to_numpy(x)
    assert isinstance(out, numpy.ndarray)
    numpy.testing.assert_array_equal(out, HOST)
    as64 = pm.to_numpy(x, dtype="float64")
    assert as64.dtype == numpy.float64
    numpy.testing.assert_allclose(as64, HOST)
    numpy.testing.assert_array_equal(pm.to_numpy([[1, 2], [3, 4]]), [[1, 2], [3, 4]])
    if backend_name == "torch":  # tensors in an autograd graph convert too
        assert pm.to_numpy(x.requires_grad_() * 2).tolist() == (HOST * 2).tolist()


def test_same_library_other_device_is_refused(backend_name, net_kwargs):
    if backend_name != "array_api_strict":
        pytest.skip("array-api-strict is the CPU library with several devices")
    import array_api_strict as xps

    backend = pm.resolve_backend(**net_kwargs)  # on device1
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


@pytest.mark.parametrize("wrap", [_ArrayLike, lambda: _DLPackOnly(HOST)],
                         ids=["array-like", "dlpack-only"])
def test_array_likes_without_a_namespace(wrap):
    net = pm.Network(3, seed=0).output(pm.Dense(1, None), loss="mse")
    moved = data.to_backend(wrap(), net.backend)
    numpy.testing.assert_array_equal(pm.to_numpy(moved), HOST)
    assert net.predict(wrap()).shape == (4, 1)


def test_estimator_takes_arrays_of_any_library(backend_name, net_kwargs):
    pytest.importorskip("sklearn")
    from polymlp.sklearn import MLPRegressor

    x = pm.resolve_backend(**net_kwargs).asarray(HOST)
    y = numpy.array([0.1, 0.4, 0.2, 0.9])
    params = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.warns(Warning):  # scikit-learn's ConvergenceWarning after 3 iterations
        reg = MLPRegressor(**params).fit(x, y)  # a NumPy network
    assert reg.n_features_in_ == 3
    with pytest.warns(Warning):
        ref = MLPRegressor(**params).fit(HOST, y)
    assert isinstance(reg.predict(x), numpy.ndarray)
    numpy.testing.assert_allclose(reg.predict(x), ref.predict(HOST), atol=1e-6)
