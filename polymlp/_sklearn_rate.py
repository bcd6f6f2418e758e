"""scikit-learn's SGD learning-rate schedules, kept in the optimizer state.

``learning_rate="invscaling"`` sets the rate to ``learning_rate_init / (t +
1) ** power_t`` after each epoch (``t`` samples seen); ``"adaptive"`` divides
it by 5 when training stalls.  The rate is a 0-d array in the optimizer state
(``rate_scale``, the ratio to the initial rate), not an attribute baked into
a compiled step, so changing it never recompiles on JAX.  Scaling the
gradient that enters momentum SGD by that ratio gives scikit-learn's own rule
exactly: its velocity ``momentum * v - rate_t * g`` accumulates each
gradient with the rate of its epoch.
"""

from __future__ import annotations

from .optimizers import Optimizer


class ScheduledRate(Optimizer):
    """Momentum SGD (`inner`) whose rate follows scikit-learn's `schedule`."""

    name = "sklearn_scheduled_rate"

    def __init__(self, inner, schedule="constant", power_t=0.5):
        self.inner = inner
        self.schedule = schedule
        self.power_t = float(power_t)
        self.learning_rate_init = float(inner.learning_rate)
        self._rate = self.learning_rate_init

    def get_config(self):
        return {"inner": self.inner.get_config(), "schedule": self.schedule,
                "power_t": self.power_t}

    @property
    def learning_rate(self):
        """The current rate (what callbacks and scikit-learn's ``_optimizer`` show)."""
        return self._rate

    def init(self, params, /, *, xp):
        self._rate = self.learning_rate_init
        one = xp.ones((), dtype=params.dtype, device=getattr(params, "device", None))
        return {**self.inner.init(params, xp=xp), "rate_scale": one}

    def set_rate(self, network, rate):
        """Set the rate for the next steps of `network` (state and host copy)."""
        self._rate = float(rate)
        xp, theta = network.xp, network.theta
        scale = xp.asarray(self._rate / self.learning_rate_init, dtype=theta.dtype,
                           device=getattr(theta, "device", None))
        network.opt_state = {**network.opt_state, "rate_scale": scale}

    def iteration_ends(self, network, time_step):
        """scikit-learn's ``SGDOptimizer.iteration_ends``: the invscaling update."""
        if self.schedule == "invscaling":
            self.set_rate(network, self.learning_rate_init / (time_step + 1) ** self.power_t)

    def _split(self, state):
        inner = {k: v for k, v in state.items() if k != "rate_scale"}
        return inner, state["rate_scale"]

    def update(self, params, grads, state, /, *, xp):
        inner, scale = self._split(state)
        new, inner = self.inner.update(params, grads * scale, inner, xp=xp)
        return new, {**inner, "rate_scale": scale}

    def update_inplace(self, params, grads, state, /, *, xp, work):
        inner, scale = self._split(state)
        grads *= scale  # the step's own gradient buffer (see polymlp._engine.InPlaceStep)
        inner = self.inner.update_inplace(params, grads, inner, xp=xp, work=work)
        return {**inner, "rate_scale": scale}
