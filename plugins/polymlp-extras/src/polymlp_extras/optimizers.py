"""Optimizers: RMSprop, AdamW and Lion, as pure functions of (params, grads, state).

Each works on the network's flat parameter vector and returns new arrays
(never writing into its inputs), so it runs on JAX and under ``jax.jit``.
RMSprop and AdamW follow ``torch.optim``; Lion follows Chen et al. (2023),
"Symbolic Discovery of Optimization Algorithms", Algorithm 2.
"""

from polymlp import Optimizer, checks


class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``.

    ``v = alpha v + (1 - alpha) g**2``; step ``lr * g / (sqrt(v) + eps)``.
    ``centered`` divides by the running standard deviation instead; with
    ``momentum`` the scaled gradient feeds a momentum buffer; ``weight_decay``
    adds ``weight_decay * p`` to the gradient (L2).
    """

    name = "rmsprop"

    def __init__(self, learning_rate=0.01, alpha=0.99, epsilon=1e-8, momentum=0.0,
                 centered=False, weight_decay=0.0):
        self.learning_rate = checks.positive_float("learning_rate", learning_rate)
        self.alpha = checks.unit_interval("alpha", alpha)
        self.epsilon = checks.positive_float("epsilon", epsilon)
        self.momentum = checks.unit_interval("momentum", momentum)
        self.centered = checks.boolean("centered", centered)
        self.weight_decay = checks.non_negative_float("weight_decay", weight_decay)

    def init(self, params, /, *, xp):
        state = {"t": self.step_counter(params, xp=xp), "square_avg": xp.zeros_like(params)}
        if self.centered:
            state["grad_avg"] = xp.zeros_like(params)
        if self.momentum > 0:
            state["momentum_buffer"] = xp.zeros_like(params)
        return state

    def update(self, params, grads, state, /, *, xp):
        g = grads + self.weight_decay * params if self.weight_decay else grads
        a = self.alpha
        new = {"t": state["t"] + 1, "square_avg": a * state["square_avg"] + (1.0 - a) * (g * g)}
        if self.centered:
            new["grad_avg"] = a * state["grad_avg"] + (1.0 - a) * g
            avg = xp.sqrt(new["square_avg"] - new["grad_avg"] * new["grad_avg"]) + self.epsilon
        else:
            avg = xp.sqrt(new["square_avg"]) + self.epsilon
        if self.momentum > 0:
            new["momentum_buffer"] = self.momentum * state["momentum_buffer"] + g / avg
            return params - self.learning_rate * new["momentum_buffer"], new
        return params - self.learning_rate * (g / avg), new


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    ``p <- p * (1 - lr * weight_decay)``, then the bias-corrected Adam step
    (epsilon added after the square root).
    """

    name = "adamw"

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 weight_decay=0.01):
        self.learning_rate = checks.positive_float("learning_rate", learning_rate)
        self.beta1 = checks.unit_interval("beta1", beta1)
        self.beta2 = checks.unit_interval("beta2", beta2)
        self.epsilon = checks.positive_float("epsilon", epsilon)
        self.weight_decay = checks.non_negative_float("weight_decay", weight_decay)

    def init(self, params, /, *, xp):
        return {"t": self.step_counter(params, xp=xp), "m": xp.zeros_like(params),
                "v": xp.zeros_like(params)}

    def update(self, params, grads, state, /, *, xp):
        t = state["t"] + 1
        b1, b2, lr = self.beta1, self.beta2, self.learning_rate
        params = params * (1.0 - lr * self.weight_decay)
        m = b1 * state["m"] + (1.0 - b1) * grads
        v = b2 * state["v"] + (1.0 - b2) * (grads * grads)
        # t is a 0-d integer array: the bias corrections are computed in the params' dtype.
        tf = xp.astype(t, params.dtype)
        denom = xp.sqrt(v) / (1.0 - b2 ** tf) ** 0.5 + self.epsilon
        return params - (lr / (1.0 - b1 ** tf)) * (m / denom), {"t": t, "m": m, "v": v}


class Lion(Optimizer):
    """Lion, "evolved sign momentum" (Chen et al. 2023, Algorithm 2).

    ``c = beta1 m + (1 - beta1) g``; ``p <- p - lr (sign(c) + weight_decay p)``;
    ``m <- beta2 m + (1 - beta2) g``.  Every coordinate moves by ``lr``, so
    use a learning rate 3-10x smaller than Adam's.
    """

    name = "lion"

    def __init__(self, learning_rate=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0):
        self.learning_rate = checks.positive_float("learning_rate", learning_rate)
        self.beta1 = checks.unit_interval("beta1", beta1)
        self.beta2 = checks.unit_interval("beta2", beta2)
        self.weight_decay = checks.non_negative_float("weight_decay", weight_decay)

    def init(self, params, /, *, xp):
        return {"t": self.step_counter(params, xp=xp), "m": xp.zeros_like(params)}

    def update(self, params, grads, state, /, *, xp):
        m = state["m"]
        direction = xp.sign(self.beta1 * m + (1.0 - self.beta1) * grads)
        new = params - self.learning_rate * (direction + self.weight_decay * params)
        return new, {"t": state["t"] + 1, "m": self.beta2 * m + (1.0 - self.beta2) * grads}
