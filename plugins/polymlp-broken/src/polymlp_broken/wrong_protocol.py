"""Importable objects that break their kind's protocol."""

import polymlp as pm


class NoDerivative(pm.ElementwiseActivation):
    """Has a value but no derivative."""

    def value(self, z, /, *, xp):
        return z * z


def not_a_class(z):
    """A function where an Activation class is expected."""
    return z


class ShadowReLU(pm.ElementwiseActivation):
    """A valid activation under a built-in's name: the built-in wins."""

    def value(self, z, /, *, xp):
        return z

    def derivative(self, z, /, *, xp):
        return xp.ones_like(z)


class NotALoss:
    """Looks like a loss but is not a polymlp.Loss."""

    def value(self, y_hat, y, /, *, xp):
        return xp.mean(y_hat - y)

    def gradient(self, y_hat, y, /, *, xp):
        return xp.ones_like(y_hat)


class NoXpLayer(pm.Layer):
    """Written against a wrong signature: no xp, training or rng keywords."""

    def forward(self, params, x):
        return x, None

    def backward(self, params, cache, grad):
        return grad, ()
