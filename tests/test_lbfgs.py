"""L-BFGS (polymlp.lbfgs): against SciPy's L-BFGS-B, the Wolfe conditions, and in Network.fit."""

import numpy
import pytest

import polymlp as pm
from polymlp import lbfgs

from _helpers import xp_and_device

scipy_optimize = pytest.importorskip("scipy.optimize")


def _rosenbrock_objective(xp, device):
    def objective(theta):
        x, y = theta[0::2], theta[1::2]
        f = xp.sum(100.0 * (y - x * x) ** 2 + (1.0 - x) ** 2)
        gx = -400.0 * x * (y - x * x) - 2.0 * (1.0 - x)
        gy = 200.0 * (y - x * x)
        g = xp.reshape(xp.stack([gx, gy], axis=1), (-1,))
        return f, g
    return objective


def _host(a):
    return pm.to_numpy(a)


def test_rosenbrock_reaches_scipys_minimum(net_kwargs):
    xp, device, backend = xp_and_device(net_kwargs)
    start = numpy.array([-1.2, 1.0, -0.5, 0.8, 1.5, 2.0])
    theta0 = backend.asarray(start.copy())
    opt = pm.LBFGS(max_iter=500, tol=1e-8, ftol=1e-15)
    theta, state, losses = opt.minimize(_rosenbrock_objective(xp, device), theta0,
                                        opt.init(theta0, xp=xp), xp=xp)
    if device is not None:
        assert theta.device == device
    ref = scipy_optimize.minimize(scipy_optimize.rosen, start, jac=scipy_optimize.rosen_der,
                                  method="L-BFGS-B", options={"gtol": 1e-8, "ftol": 1e-15,
                                                              "maxiter": 500})
    numpy.testing.assert_allclose(_host(theta), ref.x, atol=1e-5)
    numpy.testing.assert_allclose(_host(theta), numpy.ones(6), atol=1e-5)
    assert state["status"] == lbfgs.CONVERGED
    assert state["n_iter"] == len(losses) <= 500
    # Monotone: every accepted step satisfies the sufficient-decrease condition.
    assert all(b < a for a, b in zip(losses, losses[1:]))
    # About as many iterations as SciPy's implementation of the same method.
    assert state["n_iter"] <= 2 * ref.nit + 10


def test_every_step_satisfies_the_strong_wolfe_conditions():
    xp = pm.resolve_backend("numpy").xp
    objective = _rosenbrock_objective(xp, None)
    opt = pm.LBFGS(max_iter=60, c1=1e-4, c2=0.9)
    run = lbfgs._Run(opt, objective, xp)
    theta = numpy.array([-1.2, 1.0, 0.3, -0.4])
    f, g = run.evaluate(theta)
    checked = 0
    for _ in range(40):
        d = run.direction(g)
        slope = run.dot(g, d)
        found = run.line_search(theta, f, slope, d, 1.0 if run.pairs else 1e-2)
        if found is None:
            break
        step, f_new, g_new = found
        assert f_new <= f + opt.c1 * step * slope  # sufficient decrease
        assert abs(run.dot(g_new, d)) <= -opt.c2 * slope  # strong curvature
        s, y = step * d, g_new - g
        run.pairs = (run.pairs + [(s, y, 1.0 / run.dot(s, y))])[-opt.memory:]
        theta, f, g = theta + s, f_new, g_new
        checked += 1
    assert checked >= 20


def _logistic_problem(n=120, d=5, seed=0):
    rng = numpy.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_network_fit_finds_scipys_optimum_of_a_convex_problem(net_kwargs):
    # Logistic regression with an L2 penalty: one minimum, which both must find.
    X, y = _logistic_problem()
    alpha = 0.5
    net = pm.Network(5, dtype="float64", seed=0, alpha=alpha, **net_kwargs)
    net.output(pm.Dense(1, "sigmoid"), loss="binary_cross_entropy")
    hist = net.fit(X, y, epochs=1, optimizer=pm.LBFGS(tol=1e-10, ftol=1e-14))
    assert net.opt_state["status"] == lbfgs.CONVERGED
    assert len(hist.loss) == net.opt_state["n_iter"] == net.iterations

    def f(w):
        z = X @ w[:5] + w[5]
        data = numpy.mean(numpy.logaddexp(0, z) - y * z)
        return data + 0.5 * alpha * numpy.sum(w[:5] ** 2) / len(X)

    ref = scipy_optimize.minimize(f, numpy.zeros(6), method="L-BFGS-B",
                                  options={"gtol": 1e-10, "ftol": 1e-14})
    W, b = net.get_weights()
    numpy.testing.assert_allclose(numpy.concatenate([W.ravel(), b]), ref.x, atol=1e-5)
    assert net.loss(X, y) == pytest.approx(ref.fun, rel=1e-8)
    assert hist.loss[-1] == pytest.approx(net.loss(X, y), rel=1e-10)
    assert max(numpy.abs(g).max() for g in net.gradients(X, y)) < 1e-8
    if net_kwargs.get("device") is not None:
        assert net.theta.device == net.device


def test_hidden_layer_network_trains_on_every_backend_alike(net_kwargs):
    X, y = _logistic_problem(n=60)
    nets = []
    for kwargs in ({"backend": "numpy"}, net_kwargs):
        net = pm.Network(5, dtype="float64", seed=3, alpha=1e-3, **kwargs)
        net.stack(pm.Dense(6, "tanh")).output(pm.Dense(2, "softmax"))
        net.fit(X, y, epochs=1, optimizer=pm.LBFGS(max_iter=15))
        nets.append(net)
    for a, b in zip(nets[0].get_weights(), nets[1].get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    assert nets[1].opt_state["n_iter"] == 15


def test_max_fun_bounds_the_evaluations():
    X, y = _logistic_problem()
    net = pm.Network(5, dtype="float64", seed=0).stack(pm.Dense(8, "relu"))
    net.output(pm.Dense(2, "softmax"))
    net.fit(X, y, epochs=1, optimizer=pm.LBFGS(max_fun=7, tol=0.0, ftol=0.0))
    assert net.opt_state["n_fun"] <= 7
    assert net.opt_state["status"] == lbfgs.MAX_FUN
    assert net.opt_state["n_iter"] <= 7


def test_lbfgs_by_name_and_saved_and_not_stepped_per_batch(tmp_path):
    X, y = _logistic_problem()
    net = pm.Network(5, seed=0).output(pm.Dense(2, "softmax"))
    net.fit(X, y, epochs=2, optimizer="lbfgs")
    assert isinstance(net.optimizer, pm.LBFGS)
    again = pm.load(net.save(tmp_path / "l.polymlp"))
    assert again.optimizer.same_config(net.optimizer)
    with pytest.raises(TypeError, match="full-batch"):
        pm.LBFGS().update(None, None, {}, xp=numpy)


@pytest.mark.parametrize("kwargs, match", [({"max_iter": 0}, "max_iter"),
                                           ({"tol": -1.0}, "tol"),
                                           ({"c1": 0.95, "c2": 0.9}, "c1 < c2")])
def test_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pm.LBFGS(**kwargs)
