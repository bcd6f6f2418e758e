"""A layer written the way a third-party plugin would write it (CONTRIBUTING.md, "Writing a plugin").

The benchmark uses it to measure what a plugin layer costs on a compiling
backend against a net of built-in ``Dense`` layers only.  It is deliberately
plain: xp-only math in ``forward``/``backward``, no kernel, no capability
declared, nothing polymlp knows about it beyond the layer protocol.
"""

import polymlp as pm


class PerFeatureAffine(pm.Layer):
    """``y = x * scale + shift`` per feature, ``scale`` starting at ones and ``shift`` at zeros."""

    name = "bench_per_feature_affine"

    def parameter_specs(self):
        ones = pm.registry.get_initializer({"name": "constant", "config": {"value": 1.0}})
        zeros = pm.registry.get_initializer("zeros")
        return [pm.ParamSpec("scale", (self.input_size,), ones),
                pm.ParamSpec("shift", (self.input_size,), zeros)]

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        scale, shift = params
        return x * scale + shift, x

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        scale, _ = params
        x = cache
        grads = (xp.sum(grad * x, axis=0), xp.sum(grad, axis=0))
        return (grad * scale if need_input_grad else None), grads
