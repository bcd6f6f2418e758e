"""L-BFGS: a full-batch quasi-Newton optimizer written with the Array API.

The search direction comes from the two-loop recursion over the last
`memory` pairs ``(s, y)`` (steps and gradient changes), scaled by
``s.y / y.y``; the step length from a line search that satisfies the strong
Wolfe conditions (Nocedal & Wright, algorithms 3.5 and 3.6, with cubic
interpolation).  Vectors stay on the network's backend and device; only the
scalars of the line search come to the host (one sync per function
evaluation), so the same code runs on NumPy, PyTorch, JAX, CuPy and
array-api-strict.  The stopping rules are SciPy's L-BFGS-B ones: the largest
gradient component at most `tol`, a relative decrease of the loss at most
`ftol`, `max_iter` iterations or `max_fun` evaluations of the objective.

It is not stepped per batch: an optimizer whose class has ``full_batch =
True`` is handed the whole objective by ``Network.fit``, which calls
:meth:`LBFGS.minimize`.
"""

from __future__ import annotations

import math
import numbers

from . import _kinds
from .optimizers import Optimizer

# Status codes kept in the optimizer state (plain ints, so the state saves as any other).
CONVERGED, MAX_ITER, MAX_FUN, LINE_SEARCH_FAILED = 0, 1, 2, 3
_MESSAGES = {CONVERGED: "converged", MAX_ITER: "reached max_iter",
             MAX_FUN: "reached max_fun evaluations of the objective",
             LINE_SEARCH_FAILED: "the line search found no step satisfying the Wolfe conditions"}


def _count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _number(name, value, lo, hi, hint):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not lo <= value < hi:
        raise ValueError(f"`{name}` must be a number in [{lo}, {hi}); got {value!r}. {hint}")
    return float(value)


class LBFGS(Optimizer):
    """Limited-memory BFGS over the whole training set (``fit(optimizer=pm.LBFGS())``).

    ``Network.fit`` runs one minimization per epoch (each restarts the
    memory) and stops after the first that converges; the history records the
    loss after every L-BFGS iteration (``record="iteration"``).

    Parameters
    ----------
    max_iter : int, default 200
        Iterations per minimization (line searches, as SciPy's ``maxiter``).
    max_fun : int, default 15000
        Evaluations of the loss and gradient per minimization.
    tol : float, default 1e-5
        Converged when ``max(abs(gradient)) <= tol`` (SciPy's ``gtol``).
    ftol : float, default 2.22e-9
        Converged when ``(f_old - f_new) / max(|f_old|, |f_new|, 1) <= ftol``.
    memory : int, default 10
        Number of ``(s, y)`` pairs kept (SciPy's ``maxcor``).
    c1, c2 : float, default 1e-4 and 0.9
        Sufficient-decrease and curvature constants of the strong Wolfe conditions.
    max_linesearch : int, default 20
        Objective evaluations allowed per line search.
    """

    name = "lbfgs"
    full_batch = True

    def __init__(self, max_iter=200, max_fun=15000, tol=1e-5, ftol=2.220446049250313e-09,
                 memory=10, c1=1e-4, c2=0.9, max_linesearch=20):
        self.max_iter = _count("max_iter", max_iter)
        self.max_fun = _count("max_fun", max_fun)
        self.tol = _number("tol", tol, 0.0, math.inf, "It is the gradient tolerance, e.g. 1e-5.")
        self.ftol = _number("ftol", ftol, 0.0, 1.0, "It is a relative tolerance, e.g. 2.2e-9.")
        self.memory = _count("memory", memory)
        self.c1 = _number("c1", c1, 0.0, 1.0, "Typical: 1e-4.")
        self.c2 = _number("c2", c2, 0.0, 1.0, "Typical: 0.9.")
        if not 0.0 < self.c1 < self.c2:
            raise ValueError(f"The Wolfe constants need 0 < c1 < c2 < 1; got c1={c1!r}, "
                             f"c2={c2!r}. Typical: c1=1e-4, c2=0.9.")
        self.max_linesearch = _count("max_linesearch", max_linesearch)

    def init(self, params, /, *, xp):
        # t: iterations so far (all minimizations); n_fun: evaluations in the last one;
        # status: why the last one stopped (see the module's constants).
        return {"t": 0, "n_iter": 0, "n_fun": 0, "status": MAX_ITER}

    def update(self, params, grads, state, /, *, xp):
        raise TypeError("LBFGS is a full-batch optimizer: it is not stepped per batch. Pass it "
                        "to Network.fit(optimizer=pm.LBFGS(...)), which calls its minimize().")

    @staticmethod
    def message(state):
        """Why the last minimization stopped, in words."""
        return _MESSAGES[int(state["status"])]

    def minimize(self, objective, theta, state, /, *, xp):
        """Minimize ``objective(theta) -> (loss 0-d array, flat gradient)`` from `theta`.

        Returns ``(theta, state, losses)``: the final parameters, the state
        (``n_iter``, ``n_fun`` and ``status`` of this run; ``t`` counts all
        iterations) and the loss after each iteration as Python floats.
        """
        run = _Run(self, objective, xp)
        theta, status = run.solve(theta)
        state = {"t": int(state.get("t", 0)) + run.n_iter, "n_iter": run.n_iter,
                 "n_fun": run.n_fun, "status": status}
        return theta, state, run.losses


class _Run:
    """One minimization: the objective, the memory and the counters."""

    def __init__(self, opt, objective, xp):
        self.opt, self.objective, self.xp = opt, objective, xp
        self.n_fun = self.n_iter = 0
        self.losses = []
        self.pairs = []  # [(s, y, 1 / s.y)]

    def evaluate(self, theta):
        loss, grad = self.objective(theta)
        self.n_fun += 1
        f = float(loss)
        return (f if math.isfinite(f) else math.inf), grad

    def dot(self, a, b):
        return float(self.xp.sum(a * b))

    def direction(self, g):
        """``-H g`` by the two-loop recursion (steepest descent with an empty memory)."""
        q, alphas = g, []
        for s, y, rho in reversed(self.pairs):
            a = rho * self.dot(s, q)
            alphas.append(a)
            q = q - a * y
        if self.pairs:
            s, y, _ = self.pairs[-1]
            q = q * (self.dot(s, y) / self.dot(y, y))
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            b = rho * self.dot(y, q)
            q = q + (a - b) * s
        return -q

    def solve(self, theta):
        opt, xp = self.opt, self.xp
        f, g = self.evaluate(theta)
        if not math.isfinite(f):
            return theta, LINE_SEARCH_FAILED
        if float(xp.max(xp.abs(g))) <= opt.tol:
            return theta, CONVERGED
        while True:
            if self.n_iter >= opt.max_iter:
                return theta, MAX_ITER
            d = self.direction(g)
            slope = self.dot(g, d)
            if not slope < 0:  # not a descent direction (lost curvature): restart
                self.pairs, d = [], -g
                slope = self.dot(g, d)
            # As L-BFGS-B: a unit step with curvature pairs, else one of length 1.
            first = 1.0 if self.pairs else 1.0 / math.sqrt(-slope)
            found = self.line_search(theta, f, slope, d, first)
            if found is None and self.pairs:  # retry once along the steepest descent
                self.pairs, d = [], -g
                slope = self.dot(g, d)
                found = self.line_search(theta, f, slope, d, 1.0 / math.sqrt(-slope))
            if found is None:
                return theta, (MAX_FUN if self.n_fun >= opt.max_fun else LINE_SEARCH_FAILED)
            step, f_new, g_new = found
            s = step * d
            theta_new = theta + s
            y = g_new - g
            sy = self.dot(s, y)
            if sy > 2.220446049250313e-16 * self.dot(y, y):  # keep only curvature pairs
                self.pairs = (self.pairs + [(s, y, 1.0 / sy)])[-opt.memory:]
            self.n_iter += 1
            self.losses.append(f_new)
            decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
            theta, f, g = theta_new, f_new, g_new
            if float(xp.max(xp.abs(g))) <= opt.tol or decrease <= opt.ftol:
                return theta, CONVERGED
            if self.n_fun >= opt.max_fun:
                return theta, MAX_FUN

    # --- the strong Wolfe line search ---------------------------------------------------

    def line_search(self, theta, f0, slope0, d, step):
        """``(step, f, g)`` meeting the strong Wolfe conditions along `d`, or None.

        Brackets an acceptable step by extrapolation, then zooms in on it (Nocedal &
        Wright, algorithms 3.5 and 3.6).
        """
        opt = self.opt
        c1, c2 = opt.c1, opt.c2
        budget = min(opt.max_linesearch, opt.max_fun - self.n_fun)

        def phi(a):
            f, g = self.evaluate(theta + a * d)
            return f, g, (self.dot(g, d) if math.isfinite(f) else math.nan)

        prev = (0.0, f0, None, slope0)
        for i in range(budget):
            f, g, dphi = phi(step)
            point = (step, f, g, dphi)
            if f > f0 + c1 * step * slope0 or (i > 0 and f >= prev[1]):
                return self.zoom(prev, point, f0, slope0, phi, budget - i - 1)
            if abs(dphi) <= -c2 * slope0:
                return step, f, g
            if dphi >= 0:
                return self.zoom(point, prev, f0, slope0, phi, budget - i - 1)
            prev, step = point, step * 4.0  # extrapolate (Moré-Thuente's factor)
        return None

    def zoom(self, lo, hi, f0, slope0, phi, budget):
        """Shrink the bracket ``[lo, hi]`` (``lo`` has the lower loss) to a Wolfe step."""
        c1, c2 = self.opt.c1, self.opt.c2
        for _ in range(budget):
            step = _interpolate(lo, hi)
            f, g, dphi = phi(step)
            if f > f0 + c1 * step * slope0 or f >= lo[1]:
                hi = (step, f, g, dphi)
                continue
            if abs(dphi) <= -c2 * slope0:
                return step, f, g
            if dphi * (hi[0] - lo[0]) >= 0:
                hi = lo
            lo = (step, f, g, dphi)
        return None


def _interpolate(lo, hi):
    """The minimizer of the cubic through both ends, kept inside the bracket (else bisection)."""
    a, fa, _, da = lo
    b, fb, _, db = hi
    width = b - a
    mid = a + 0.5 * width
    if not (math.isfinite(fb) and math.isfinite(db) and da is not None):
        return mid
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    radicand = d1 * d1 - da * db
    if radicand < 0:
        return mid
    d2 = math.copysign(math.sqrt(radicand), b - a)
    denom = db - da + 2.0 * d2
    if denom == 0:
        return mid
    step = b - (b - a) * (db + d2 - d1) / denom
    lo_end, hi_end = min(a, b), max(a, b)
    margin = 0.1 * (hi_end - lo_end)
    if not lo_end + margin <= step <= hi_end - margin:
        return mid
    return step


BUILTINS = {LBFGS.name: LBFGS}
_kinds.add_builtins("optimizers", BUILTINS)
