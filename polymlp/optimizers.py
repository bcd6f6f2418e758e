"""Optimizers as pure functions of (parameters, gradients, state).

Each optimizer works on the network's flat parameter vector: ``init`` makes
the state, ``update`` returns new parameters and a new state and never
writes into its inputs, so the same code runs on immutable JAX arrays and
can be compiled as part of a whole training step.  The step counter ``t`` is
a Python int in eager mode (cheap scalar math); under ``jax.jit`` it becomes
a traced array and the same expressions still hold.

An optimizer may also offer ``update_inplace``, the same rule written into
the parameter and state arrays (used only where the backend's arrays are
writable, see :mod:`polymlp._fastpath`); it must give the same numbers as
``update``, and the tests check that it does.
"""


from . import _validate
from ._config import Configurable


class Optimizer(Configurable):
    """Base class of optimizers (the plugin protocol; see CONTRIBUTING.md).

    Subclasses set ``name`` and implement :meth:`update`, a pure function
    ``(params, grads, state) -> (new_params, new_state)`` on the flat
    parameter vector, and :meth:`init` when they keep more state than the
    step counter ``t``.  The state's keys never change between steps.
    """

    def init(self, params, /, *, xp):
        """Initial state for the flat parameter vector `params` (a dict)."""
        return {"t": 0}

    def update(self, params, grads, state, /, *, xp):
        """Return ``(new_params, new_state)`` after one step along `grads`."""
        raise NotImplementedError

    #: Optional: ``update_inplace(params, grads, state, /, *, xp, work) -> new_state``
    #: performs :meth:`update` by writing into `params` and the state's arrays
    #: (`work` is a scratch array like `params`). ``None`` means not offered.
    update_inplace = None


class GradientDescent(Optimizer):
    """Plain gradient descent: ``p <- p - learning_rate * g``."""

    name = "gd"

    def __init__(self, learning_rate=0.01):
        self.learning_rate = _validate.positive_float("learning_rate", learning_rate)

    def update(self, params, grads, state, /, *, xp):
        return params - self.learning_rate * grads, {"t": state["t"] + 1}

    def update_inplace(self, params, grads, state, /, *, xp, work):
        xp.multiply(grads, self.learning_rate, out=work)
        params -= work
        return {"t": state["t"] + 1}


class Momentum(Optimizer):
    """Gradient descent with momentum, as PyTorch's SGD (no dampening).

    ``v <- momentum * v + g``; the step is ``learning_rate * v``, or
    ``learning_rate * (g + momentum * v)`` with Nesterov momentum.
    """

    name = "momentum"

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False):
        self.learning_rate = _validate.positive_float("learning_rate", learning_rate)
        self.momentum = _validate.unit_interval("momentum", momentum)
        if not isinstance(nesterov, bool):
            raise TypeError(f"`nesterov` must be True or False; got {nesterov!r}.")
        self.nesterov = nesterov

    def init(self, params, /, *, xp):
        return {"t": 0, "velocity": xp.zeros_like(params)}

    def update(self, params, grads, state, /, *, xp):
        v = self.momentum * state["velocity"] + grads
        step = grads + self.momentum * v if self.nesterov else v
        return params - self.learning_rate * step, {"t": state["t"] + 1, "velocity": v}

    def update_inplace(self, params, grads, state, /, *, xp, work):
        v = state["velocity"]
        v *= self.momentum
        v += grads
        if self.nesterov:
            xp.multiply(v, self.momentum, out=work)
            work += grads
            work *= self.learning_rate
        else:
            xp.multiply(v, self.learning_rate, out=work)
        params -= work
        return {"t": state["t"] + 1, "velocity": v}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``.

    Defaults are the seed's: learning rate 0.002, betas 0.9 and 0.999,
    epsilon 1e-8 added after the square root.
    """

    name = "adam"

    def __init__(self, learning_rate=0.002, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.learning_rate = _validate.positive_float("learning_rate", learning_rate)
        self.beta1 = _validate.unit_interval("beta1", beta1)
        self.beta2 = _validate.unit_interval("beta2", beta2)
        self.epsilon = _validate.positive_float("epsilon", epsilon)

    def init(self, params, /, *, xp):
        return {"t": 0, "m": xp.zeros_like(params), "v": xp.zeros_like(params)}

    def update(self, params, grads, state, /, *, xp):
        t = state["t"] + 1
        b1, b2 = self.beta1, self.beta2
        m = b1 * state["m"] + (1.0 - b1) * grads
        v = b2 * state["v"] + (1.0 - b2) * (grads * grads)
        bc1 = 1.0 - b1 ** t
        bc2_sqrt = (1.0 - b2 ** t) ** 0.5
        denom = xp.sqrt(v) / bc2_sqrt + self.epsilon
        new = params - (self.learning_rate / bc1) * (m / denom)
        return new, {"t": t, "m": m, "v": v}

    def update_inplace(self, params, grads, state, /, *, xp, work):
        # The operations of `update`, one pass each, in the same order (same rounding).
        t = state["t"] + 1
        b1, b2 = self.beta1, self.beta2
        m, v = state["m"], state["v"]
        m *= b1
        xp.multiply(grads, 1.0 - b1, out=work)
        m += work
        v *= b2
        xp.multiply(grads, grads, out=work)
        work *= 1.0 - b2
        v += work
        xp.sqrt(v, out=work)
        work /= (1.0 - b2 ** t) ** 0.5
        work += self.epsilon
        xp.divide(m, work, out=work)
        work *= self.learning_rate / (1.0 - b1 ** t)
        params -= work
        return {"t": t, "m": m, "v": v}


BUILTINS = {cls.name: cls for cls in (GradientDescent, Momentum, Adam)}
