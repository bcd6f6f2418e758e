"""Cross-backend agreement, the torch oracle, and the backend hub."""

import subprocess
import sys

import numpy
import pytest

import polymlp as pm
from polymlp import testing


def _train(net_kwargs, dtype, data, epochs=2, seed=4):
    x, y, xv, yv = data
    net = pm.Network(14, dtype=dtype, seed=seed, **net_kwargs)
    net.stack(pm.Dense(16, "relu")).stack(pm.Dense(8, "tanh"))
    net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
    hist = net.fit(x, y, epochs=epochs, batch_size=32, optimizer=pm.Adam(),
                   validation_data=(xv, yv), record="epoch")
    return net, hist


@pytest.fixture(scope="module")
def small(hypercube):
    x, y, xv, yv = hypercube
    return x[:640], y[:640], xv[:300], yv[:300]


def test_float64_weights_match_numpy(net_kwargs, small):
    ref, _ = _train({"backend": "numpy"}, "float64", small)
    net, _ = _train(net_kwargs, "float64", small)
    for a, b in zip(net.get_weights(), ref.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_float32_outcomes_match_numpy(net_kwargs, small):
    ref, ref_hist = _train({"backend": "numpy"}, "float32", small)
    net, hist = _train(net_kwargs, "float32", small)
    xv, yv = small[2], small[3]
    # Trajectories may part at a ReLU tie in float32; the outcome must agree.
    assert hist.loss[-1] == pytest.approx(ref_hist.loss[-1], rel=1e-3)
    assert abs(hist.val_accuracy[-1] - ref_hist.val_accuracy[-1]) <= 0.01
    agree = numpy.mean(pm.to_numpy(net.predict(xv)) == pm.to_numpy(ref.predict(xv)))
    assert agree >= 0.99
    for a, b in zip(net.get_weights(), ref.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-3)
        assert a.dtype == numpy.float32


@pytest.mark.backend("array_api_strict")
def test_every_array_stays_on_a_non_default_device(small):
    """array-api-strict on device2: any array created without device= would fail."""
    x, y, xv, yv = small
    net, _ = _train({"backend": "array_api_strict", "device": "device2"}, "float32", small)
    dev = net.device
    assert "device2" in str(dev)
    assert net.theta.device == dev
    assert all(v.device == dev for v in net.opt_state.values() if hasattr(v, "device"))
    assert net.predict(xv).device == dev and net.predict_proba(xv).device == dev
    net.fit(x, y, epochs=1, batch_size=64, optimizer="momentum", record="iteration")
    assert net.opt_state["velocity"].device == dev


@pytest.mark.backend("array_api_strict")
def test_no_float64_device_trains_float32_and_refuses_float64(small):
    x, y, xv, yv = small
    # float64 host input is cast on the host, before it reaches the device.
    as64 = (x.astype("float64"), y, xv.astype("float64"), yv)
    net, hist = _train({"backend": "array_api_strict", "device": "no_float64"}, "float32", as64)
    assert hist.val_accuracy[-1] > 0.3
    with pytest.raises(pm.BackendError, match="float64.*no_float64|no_float64.*float64"):
        pm.Network(14, backend="array_api_strict", device="no_float64", dtype="float64")


@pytest.mark.backend("jax")
def test_jax_float64_needs_x64_or_says_how():
    pytest.importorskip("jax")
    code = ("import jax; jax.config.update('jax_enable_x64', False)\n"
            "import polymlp as pm\n"
            "try:\n    pm.Network(3, backend='jax', dtype='float64')\n"
            "except pm.BackendError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "ERR" in out and "jax_enable_x64" in out


def _torch_model(net, torch):
    ws = net.get_weights()
    layers = []
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    for i, layer in enumerate(net.layers):
        lin = torch.nn.Linear(*ws[2 * i].shape, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(ws[2 * i].T.copy()))
            lin.bias.copy_(torch.from_numpy(ws[2 * i + 1]))
        layers.append(lin)
        if layer is not net.layers[-1]:
            layers.append(acts[layer.activation.name]())
    return torch.nn.Sequential(*layers)


@pytest.mark.backend("torch")
def test_gradients_and_adam_match_torch(small):
    torch = pytest.importorskip("torch")
    x, y = small[0][:256], small[1][:256]
    net = pm.Network(14, dtype="float64", seed=2)
    net.stack(pm.Dense(16, "relu")).stack(pm.Dense(8, "sigmoid"))
    net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
    model = _torch_model(net, torch)
    xt, yt = torch.from_numpy(x.astype("float64")), torch.from_numpy(y)
    loss = torch.nn.functional.cross_entropy(model(xt), yt)
    loss.backward()
    expected = [g for lin in model if isinstance(lin, torch.nn.Linear)
                for g in (lin.weight.grad.numpy().T, lin.bias.grad.numpy())]
    for g, e in zip(net.gradients(x, y), expected):
        numpy.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    assert net.loss(x, y) == pytest.approx(loss.item(), rel=1e-12)

    # 50 Adam steps, full batch, no shuffling: same weights as torch.optim.Adam.
    opt = torch.optim.Adam(model.parameters(), lr=0.002, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(50):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    net.fit(x, y, epochs=50, batch_size=256, shuffle=False, optimizer=pm.Adam(), record=None)
    expected = [p for lin in model if isinstance(lin, torch.nn.Linear)
                for p in (lin.weight.detach().numpy().T, lin.bias.detach().numpy())]
    for w, e in zip(net.get_weights(), expected):
        numpy.testing.assert_allclose(w, e, rtol=1e-9, atol=1e-11)


@pytest.mark.backend("torch")
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_torch_sgd(nesterov, rng):
    torch = pytest.importorskip("torch")
    opt = pm.Momentum(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
    p0 = rng.standard_normal(6)
    p = torch.tensor(p0.copy(), requires_grad=True)
    ref = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov)
    params, state = p0.copy(), opt.init(p0, xp=numpy)
    for _ in range(5):
        grad = 2 * params + 1  # gradient of sum(p^2 + p)
        params, state = opt.update(params, grad, state, xp=numpy)
        ref.zero_grad()
        (p * p + p).sum().backward()
        ref.step()
    numpy.testing.assert_allclose(params, p.detach().numpy(), rtol=1e-12)


def test_import_is_light():
    code = ("import sys, polymlp\n"
            "heavy = [m for m in ('torch', 'jax', 'cupy', 'sklearn', 'matplotlib', "
            "'array_api_strict', 'tqdm') if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_describe_backends_reports_each_known_backend():
    rows = {r["name"]: r for r in pm.describe_backends()}
    assert set(rows) >= {"numpy", "array_api_strict", "torch", "jax", "cupy"}
    assert rows["numpy"]["usable"] and rows["numpy"]["devices"] == ["cpu"]
    for name, row in rows.items():
        if not row["usable"]:
            assert row["why"], name
    if not testing.available("cupy"):
        assert not rows["cupy"]["usable"]
        assert "pip install" in rows["cupy"]["why"] or "CUDA" in rows["cupy"]["why"]


def test_unknown_backend_and_device_errors():
    with pytest.raises(pm.BackendError, match="Unknown `backend='nopy'`"):
        pm.Network(3, backend="nopy")
    with pytest.raises(pm.BackendError, match="not a device"):
        pm.Network(3, backend="numpy", device="gpu7")
    with pytest.raises(TypeError, match="backend"):
        pm.Network(3, backend=42)


def test_to_numpy_on_every_backend(net_kwargs):
    backend = pm.resolve_backend(net_kwargs["backend"], net_kwargs.get("device"))
    arr = backend.asarray(numpy.arange(6.0).reshape(2, 3))
    out = pm.to_numpy(arr)
    assert isinstance(out, numpy.ndarray)
    numpy.testing.assert_array_equal(out, numpy.arange(6.0).reshape(2, 3))
