"""polymlp-extras against PyTorch's implementations (skipped without torch).

Values and gradients in float64: activations and losses against
``torch.nn.functional`` with ``torch.autograd``, layer norm against
``torch.nn.functional.layer_norm``, RMSprop and AdamW against ``torch.optim``
over 50 steps; Lion, which torch lacks, against a direct transcription of
Algorithm 2 of Chen et al. (2023).
"""

import numpy as np
import pytest

from polymlp_extras import (GELU, AdamW, Dropout, Hinge, Huber, LayerNorm, Lion, Mish, RMSprop,
                            SiLU, Softplus, Swish)

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {"rtol": 1e-12, "atol": 1e-13}


def _z():
    rng = np.random.default_rng(0)
    # Both signs, small and large, including the softplus threshold region and the tails.
    return np.concatenate([rng.standard_normal(200) * 3, np.linspace(-30, 30, 121)])


@pytest.mark.parametrize("ours, theirs", [
    (Swish(), F.silu), (SiLU(), F.silu),
    (Swish(beta=1.7), lambda t: t * torch.sigmoid(1.7 * t)),
    (GELU(), F.gelu), (GELU(approximate="tanh"), lambda t: F.gelu(t, approximate="tanh")),
    (Softplus(), F.softplus), (Softplus(beta=2.0, threshold=5.0),
                               lambda t: F.softplus(t, beta=2.0, threshold=5.0)),
    (Mish(), F.mish),
], ids=["swish", "silu", "swish-beta", "gelu", "gelu-tanh", "softplus", "softplus-beta", "mish"])
def test_activation_matches_torch(ours, theirs):
    z = _z()
    t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    out = theirs(t)
    out.sum().backward()
    np.testing.assert_allclose(ours.value(z, xp=np), out.detach().numpy(), **TOL)
    np.testing.assert_allclose(ours.derivative(z, xp=np), t.grad.numpy(), **TOL)


def _scores(k=4, n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k)) * 2, rng.integers(0, k, size=n)


@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_matches_torch(delta):
    rng = np.random.default_rng(1)
    y_hat, y = rng.standard_normal((16, 3)) * 2, rng.standard_normal((16, 3))
    t = torch.tensor(y_hat, requires_grad=True)
    loss = F.huber_loss(t, torch.tensor(y), delta=delta)
    loss.backward()
    ours = Huber(delta=delta)
    np.testing.assert_allclose(ours.value(y_hat, y, xp=np), loss.item(), **TOL)
    np.testing.assert_allclose(ours.gradient(y_hat, y, xp=np), t.grad.numpy(), **TOL)


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_multiclass_hinge_matches_torch_multi_margin_loss(margin):
    scores, labels = _scores()
    one_hot = np.eye(4)[labels]
    t = torch.tensor(scores, requires_grad=True)
    loss = F.multi_margin_loss(t, torch.tensor(labels), margin=margin)
    loss.backward()
    ours = Hinge(margin=margin)
    np.testing.assert_allclose(ours.value(scores, one_hot, xp=np), loss.item(), **TOL)
    np.testing.assert_allclose(ours.gradient(scores, one_hot, xp=np), t.grad.numpy(), **TOL)


def test_binary_hinge_matches_torch_formula():
    rng = np.random.default_rng(2)
    s, y = rng.standard_normal((20, 1)) * 2, rng.integers(0, 2, size=(20, 1)).astype(float)
    t = torch.tensor(s, requires_grad=True)
    loss = torch.clamp(1.0 - torch.tensor(2 * y - 1) * t, min=0).mean()
    loss.backward()
    np.testing.assert_allclose(Hinge().value(s, y, xp=np), loss.item(), **TOL)
    np.testing.assert_allclose(Hinge().gradient(s, y, xp=np), t.grad.numpy(), **TOL)


@pytest.mark.parametrize("epsilon", [1e-5, 0.1])
def test_layer_norm_matches_torch(epsilon):
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((8, 6)) * 3 + 1, rng.standard_normal((8, 6))
    gain, bias = rng.standard_normal(6), rng.standard_normal(6)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gain, bias))
    out = F.layer_norm(tx, (6,), tg, tb, eps=epsilon)
    out.backward(torch.tensor(g))
    layer = LayerNorm(epsilon=epsilon)
    layer.build(6)
    y, cache = layer.forward((gain, bias), x, xp=np)
    gx, (ggain, gbias) = layer.backward((gain, bias), cache, g, xp=np)
    np.testing.assert_allclose(y, out.detach().numpy(), **TOL)
    for ours, theirs in ((gx, tx), (ggain, tg), (gbias, tb)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), **TOL)


def test_dropout_has_torchs_semantics():
    # The masks come from different generators, so compare what each output can be:
    # every element is 0 or x / (1 - p) in training, and x itself at inference.
    x = np.random.default_rng(4).uniform(1, 2, size=(64, 32))
    p = 0.25
    layer = Dropout(rate=p)
    ours, _ = layer.forward((), x, xp=np, training=True, rng=np.random.default_rng(0))
    theirs = F.dropout(torch.tensor(x), p=p, training=True).numpy()
    for out in (ours, theirs):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-15)
        assert 0.15 < 1 - kept.mean() < 0.35
    np.testing.assert_array_equal(layer.forward((), x, xp=np, training=False)[0],
                                  F.dropout(torch.tensor(x), p=p, training=False).numpy())


def _quadratic(seed=5, n=20):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n), rng.standard_normal(n), rng.uniform(0.5, 2.0, n)


def _run_ours(opt, steps=50):
    p0, c, a = _quadratic()
    p, state = p0, opt.init(p0, xp=np)
    for _ in range(steps):
        p, state = opt.update(p, a * (p - c), state, xp=np)
    return p


def _run_torch(make, steps=50):
    p0, c, a = _quadratic()
    p = torch.tensor(p0, requires_grad=True)
    opt = make([p])
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (torch.tensor(a) * (p - torch.tensor(c)) ** 2).sum()).backward()
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize("kwargs", [
    {}, {"alpha": 0.9, "epsilon": 1e-6}, {"centered": True}, {"momentum": 0.8},
    {"centered": True, "momentum": 0.5, "weight_decay": 0.05},
], ids=["default", "alpha-eps", "centered", "momentum", "all"])
def test_rmsprop_matches_torch(kwargs):
    ours = RMSprop(learning_rate=0.01, **kwargs)
    theirs = _run_torch(lambda ps: torch.optim.RMSprop(
        ps, lr=0.01, alpha=ours.alpha, eps=ours.epsilon, momentum=ours.momentum,
        centered=ours.centered, weight_decay=ours.weight_decay))
    np.testing.assert_allclose(_run_ours(ours), theirs, **TOL)


@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.0}, {"weight_decay": 0.3, "beta1": 0.5}])
def test_adamw_matches_torch(kwargs):
    ours = AdamW(learning_rate=0.01, **kwargs)
    theirs = _run_torch(lambda ps: torch.optim.AdamW(
        ps, lr=0.01, betas=(ours.beta1, ours.beta2), eps=ours.epsilon,
        weight_decay=ours.weight_decay))
    np.testing.assert_allclose(_run_ours(ours), theirs, **TOL)


def _lion_paper(p, c, a, lr, beta1, beta2, wd, steps):
    """Algorithm 2 of Chen et al. (2023), line by line, in plain Python floats."""
    theta, m = [float(v) for v in p], [0.0] * len(p)
    a, c = [float(v) for v in a], [float(v) for v in c]
    for _ in range(steps):
        for i in range(len(theta)):
            g = a[i] * (theta[i] - c[i])
            c_t = beta1 * m[i] + (1 - beta1) * g
            update = 1.0 if c_t > 0 else -1.0 if c_t < 0 else 0.0  # sign
            theta[i] = theta[i] - lr * (update + wd * theta[i])
            m[i] = beta2 * m[i] + (1 - beta2) * g
    return np.array(theta)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_lion_matches_the_paper(wd):
    p0, c, a = _quadratic()
    ours = Lion(learning_rate=0.003, beta1=0.9, beta2=0.99, weight_decay=wd)
    np.testing.assert_allclose(_run_ours(ours),
                               _lion_paper(p0, c, a, 0.003, 0.9, 0.99, wd, 50), **TOL)
