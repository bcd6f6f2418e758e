"""Small helpers shared by the tests."""

import numpy

import polymlp as pm


def xp_and_device(net_kwargs):
    backend = pm.resolve_backend(net_kwargs["backend"], net_kwargs.get("device"))
    return backend.xp, backend.device, backend


def central_difference(f, x, eps=1e-6):
    """Gradient of scalar function `f` at host float64 array `x` by central differences."""
    grad = numpy.zeros_like(x)
    flat = x.reshape(-1)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f(x)
        flat[i] = old - eps
        down = f(x)
        flat[i] = old
        g[i] = (up - down) / (2 * eps)
    return grad
