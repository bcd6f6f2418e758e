"""Optimizers as pure functions of (parameters, gradients, state).

Each optimizer works on the network's flat parameter vector: ``init`` makes
the state, ``update`` returns new parameters and a new state and never
writes into its inputs, so the same code runs on immutable JAX arrays and
can be compiled as part of a whole training step.

Everything that changes during training lives in the state, as 0-d arrays
from ``init`` on: the step counter ``t`` (integer) and the learning rate
``learning_rate`` (in the parameters' dtype).  A schedule changes the
state, not the code, so a compiled step never needs recompiling; the
``learning_rate`` attribute stays the value callbacks read and set, and
:meth:`Optimizer.sync_state` copies it into the state when it changed.

An optimizer may also offer ``update_inplace``, the same rule written into
the parameter and state arrays (used only where the backend's arrays are
writable, see :mod:`polymlp._kernels`); it must give the same numbers as
``update``, and the tests check that it does.
"""

import math
import numbers


from . import _kinds, _validate
from ._array_api import to_numpy
from ._config import Configurable


class Optimizer(Configurable):
    """Base class of optimizers (the plugin protocol; see CONTRIBUTING.md).

    Subclasses set ``name`` and implement :meth:`update`, a pure function
    ``(params, grads, state) -> (new_params, new_state)`` on the flat
    parameter vector, and :meth:`init` when they keep more state than the
    step counter ``t``.  The state's keys never change between steps.
    """

    #: Hyperparameters kept in the state as 0-d arrays (so that changing them
    #: recompiles nothing); each is also an attribute of the same name.
    state_hyperparameters = ()

    def init(self, params, /, *, xp):
        """Initial state for the flat parameter vector `params` (a dict)."""
        return {"t": self.step_counter(params, xp=xp), **self.hyperparameter_state(params, xp=xp)}

    @staticmethod
    def step_counter(params, /, *, xp):
        """A step counter at 0: a 0-d array of the default integer dtype, on `params`' device."""
        info = xp.__array_namespace_info__()
        dtype = info.default_dtypes(device=params.device)["integral"]
        return xp.zeros((), dtype=dtype, device=params.device)

    def hyperparameter_state(self, params, /, *, xp):
        """``{name: 0-d array}`` of :attr:`state_hyperparameters`, in `params`' dtype."""
        return {key: xp.asarray(float(getattr(self, key)), dtype=params.dtype,
                                device=params.device)
                for key in self.state_hyperparameters}

    def moved_state(self, state, params, /, *, xp):
        """A copy of `state` on `params`' backend, in the dtypes :meth:`init` gives there."""
        fresh = self.init(params, xp=xp)
        return {k: xp.asarray(to_numpy(v), dtype=getattr(fresh.get(k), "dtype", None),
                              device=params.device) for k, v in state.items()}

    def sync_state(self, state, /, *, xp):
        """`state` with each of :attr:`state_hyperparameters` set to the attribute's value.

        Reads the state's current values (one small transfer) and returns
        `state` itself when nothing changed.
        """
        changed = {}
        for key in self.state_hyperparameters:
            value, current = float(getattr(self, key)), state.get(key)
            if current is not None and float(current) != value:
                like = xp.asarray(current)
                changed[key] = xp.asarray(value, dtype=like.dtype, device=like.device)
        return {**state, **changed} if changed else state

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

    state_hyperparameters = ("learning_rate",)

    def update(self, params, grads, state, /, *, xp):
        lr = state["learning_rate"]
        return params - lr * grads, {**state, "t": state["t"] + 1}

    def update_inplace(self, params, grads, state, /, *, xp, work):
        xp.multiply(grads, _scalar(state["learning_rate"], xp, params.dtype), out=work)
        params -= work
        return {**state, "t": state["t"] + 1}


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

    state_hyperparameters = ("learning_rate",)

    def init(self, params, /, *, xp):
        return {**super().init(params, xp=xp), "velocity": xp.zeros_like(params)}

    def update(self, params, grads, state, /, *, xp):
        v = self.momentum * state["velocity"] + grads
        step = grads + self.momentum * v if self.nesterov else v
        return (params - state["learning_rate"] * step,
                {**state, "t": state["t"] + 1, "velocity": v})

    def update_inplace(self, params, grads, state, /, *, xp, work):
        v, lr = state["velocity"], _scalar(state["learning_rate"], xp, params.dtype)
        v *= self.momentum
        v += grads
        if self.nesterov:
            xp.multiply(v, self.momentum, out=work)
            work += grads
            work *= lr
        else:
            xp.multiply(v, lr, out=work)
        params -= work
        return {**state, "t": state["t"] + 1, "velocity": v}


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

    state_hyperparameters = ("learning_rate",)

    def init(self, params, /, *, xp):
        return {**super().init(params, xp=xp), "m": xp.zeros_like(params),
                "v": xp.zeros_like(params)}

    def update(self, params, grads, state, /, *, xp):
        t = state["t"] + 1
        tf = xp.astype(t, params.dtype)  # bias corrections in the parameters' dtype
        b1, b2 = self.beta1, self.beta2
        m = b1 * state["m"] + (1.0 - b1) * grads
        v = b2 * state["v"] + (1.0 - b2) * (grads * grads)
        # 1 - b**t as -expm1(t log b): no cancellation when b**t is close to 1 (in
        # float32, 1 - 0.999**1 would lose 4 digits).
        bc1 = -xp.expm1(tf * math.log(b1))
        bc2_sqrt = xp.sqrt(-xp.expm1(tf * math.log(b2)))
        denom = xp.sqrt(v) / bc2_sqrt + self.epsilon
        new = params - (state["learning_rate"] / bc1) * (m / denom)
        return new, {**state, "t": t, "m": m, "v": v}

    def update_inplace(self, params, grads, state, /, *, xp, work):
        # The operations of `update`, one pass each, in the same order (same rounding);
        # host scalars (NumPy's) do their scalar math in Python, which is much cheaper,
        # 0-d arrays on a device stay there (reading them would wait for the device).
        t, lr = state["t"] + 1, state["learning_rate"]
        b1, b2 = self.beta1, self.beta2
        if isinstance(t, numbers.Number):
            tf, lr = float(t), float(lr)
            bc1 = -math.expm1(tf * math.log(b1))
            bc2_sqrt = math.sqrt(-math.expm1(tf * math.log(b2)))
        else:
            tf = xp.astype(t, params.dtype)
            bc1 = -xp.expm1(tf * math.log(b1))
            bc2_sqrt = xp.sqrt(-xp.expm1(tf * math.log(b2)))
        m, v = state["m"], state["v"]
        m *= b1
        xp.multiply(grads, 1.0 - b1, out=work)
        m += work
        v *= b2
        xp.multiply(grads, grads, out=work)
        work *= 1.0 - b2
        v += work
        xp.sqrt(v, out=work)
        work /= bc2_sqrt
        work += self.epsilon
        xp.divide(m, work, out=work)
        work *= lr / bc1
        params -= work
        return {"t": t, "learning_rate": state["learning_rate"], "m": m, "v": v}


def _scalar(value, xp, dtype):
    """A host number (a NumPy scalar) as a Python float; a 0-d array on a device
    cast to `dtype` instead (converting it to a float would wait for the device)."""
    return float(value) if isinstance(value, numbers.Number) else xp.astype(value, dtype)


BUILTINS = {cls.name: cls for cls in (GradientDescent, Momentum, Adam)}
_kinds.declare("optimizers", Optimizer, BUILTINS)
