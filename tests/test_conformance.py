"""The conformance kit (polymlp.testing.check_*): built-ins pass it, and broken objects fail it.

Each negative test feeds the kit an object with one specific defect and
checks that the kit names it; the backend-specific ones (read-only NumPy,
array-api-strict's devices, torch, JAX) run in that backend's session.
"""

import numpy
import pytest

import polymlp as pm
from polymlp import activations, initializers, layers, losses, optimizers
from polymlp.testing import (ConformanceError, check_activation, check_initializer,
                             check_layer, check_loss, check_optimizer)


def _ids(classes):
    return [c.name for c in classes]


ACTIVATIONS = list(activations.BUILTINS.values())
LOSSES = list(losses.BUILTINS.values())
OPTIMIZERS = list(optimizers.BUILTINS.values())
INITIALIZERS = list(initializers.BUILTINS.values())


@pytest.mark.parametrize("cls", ACTIVATIONS, ids=_ids(ACTIVATIONS))
def test_builtin_activations_pass(cls, backend_name, net_kwargs):
    assert check_activation(cls, backends=[backend_name])


@pytest.mark.parametrize("cls", LOSSES, ids=_ids(LOSSES))
def test_builtin_losses_pass(cls, backend_name, net_kwargs):
    shapes = [(6, 3), (6, 1)] if cls is losses.BinaryCrossEntropy else [(6, 3)]
    assert check_loss(cls, backends=[backend_name], shapes=shapes)


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=_ids(OPTIMIZERS))
def test_builtin_optimizers_pass(cls, backend_name, net_kwargs):
    assert check_optimizer(cls, config={"learning_rate": 0.05}, backends=[backend_name])


@pytest.mark.parametrize("cls", INITIALIZERS, ids=_ids(INITIALIZERS))
def test_builtin_initializers_pass(cls, backend_name, net_kwargs):
    assert check_initializer(cls, backends=[backend_name])


def test_dense_passes(backend_name, net_kwargs):
    ran = check_layer(pm.Dense, config={"units": 3, "activation": "tanh"}, backends=[backend_name])
    assert ran and all(label.startswith(backend_name) for label in ran)
    if backend_name == "array_api_strict":  # also its device without float64
        assert "array_api_strict:no_float64 float32" in ran


# --- the kit fails where it should (on NumPy unless the defect is backend-specific) ---------

NP = ["numpy"]


class WrongDerivative(activations.ElementwiseActivation):
    name = "wrong_derivative"

    def value(self, z, /, *, xp):
        return z * z

    def derivative(self, z, /, *, xp):
        return z  # should be 2 z


class WritesInPlace(activations.ElementwiseActivation):
    name = "writes_in_place"

    def value(self, z, /, *, xp):
        return z * 1.0

    def derivative(self, z, /, *, xp):
        return xp.ones_like(z)

    def backward(self, z, a, grad, /, *, xp):
        grad *= 1.0  # in place: breaks on JAX and on read-only arrays
        z[...] = 0.0
        return grad


class Upcasts(activations.ElementwiseActivation):
    name = "upcasts"

    def value(self, z, /, *, xp):
        return z * xp.asarray(2.0, dtype=xp.float64)

    def derivative(self, z, /, *, xp):
        return xp.full_like(z, 2.0)


class NaiveSoftplus(activations.ElementwiseActivation):
    name = "naive_softplus"

    def value(self, z, /, *, xp):
        return xp.log(1.0 + xp.exp(z))  # overflows for large z

    def derivative(self, z, /, *, xp):
        return 1.0 / (1.0 + xp.exp(-z))


class BadConfig(activations.ElementwiseActivation):
    name = "bad_config"

    def __init__(self, scales=(1.0, 2.0)):
        self.scales = scales  # a tuple comes back from JSON as a list

    def value(self, z, /, *, xp):
        return z

    def derivative(self, z, /, *, xp):
        return xp.ones_like(z)


@pytest.mark.parametrize("obj, match", [
    (WrongDerivative, "backward vs finite differences|grad . derivative"),
    (WritesInPlace, "modified in place"),
    (Upcasts, "dtype float64; expected float32"),
    (NaiveSoftplus, "forward is not finite"),
    (BadConfig, "JSON round trip"),
], ids=["wrong-derivative", "in-place", "upcast", "overflow", "config"])
def test_activation_defects_are_caught(obj, match):
    with pytest.raises(ConformanceError, match=match):
        check_activation(obj, backends=NP)


def test_unbounded_activation_may_skip_the_range_check():
    assert check_activation(NaiveSoftplus, backends=NP, finite_range=None)


class WritesSameValues(activations.ElementwiseActivation):
    name = "writes_same_values"

    def value(self, z, /, *, xp):
        return z * 1.0

    def derivative(self, z, /, *, xp):
        return xp.ones_like(z)

    def backward(self, z, a, grad, /, *, xp):
        grad *= 1.0  # writes without changing a value: invisible to a before/after comparison
        return grad


@pytest.mark.backend("numpy")
def test_read_only_inputs_catch_writes_that_change_nothing():
    assert check_activation(WritesSameValues, backends=NP)
    with pytest.raises(ConformanceError, match="numpy_readonly.*read-only"):
        check_activation(WritesSameValues, backends=["numpy_readonly"])


class HostEscape(activations.ElementwiseActivation):
    name = "host_escape"

    def value(self, z, /, *, xp):
        return numpy.tanh(numpy.asarray(z))  # leaves the backend

    def derivative(self, z, /, *, xp):
        return 1.0 - xp.tanh(z) ** 2


class ForgetsDevice(activations.ElementwiseActivation):
    name = "forgets_device"

    def value(self, z, /, *, xp):
        return z + xp.zeros(z.shape, dtype=z.dtype)  # created on the default device

    def derivative(self, z, /, *, xp):
        return xp.ones_like(z)


@pytest.mark.backend("array_api_strict")
@pytest.mark.parametrize("obj, match", [(HostEscape, "raised|numpy array"),
                                        (ForgetsDevice, "device")], ids=["host", "device"])
def test_array_api_strict_catches_library_and_device_escapes(obj, match):
    pytest.importorskip("array_api_strict")
    with pytest.raises(ConformanceError, match=f"array_api_strict.*({match})"):
        check_activation(obj, backends=["array_api_strict"])


class PythonControlFlow(activations.ElementwiseActivation):
    name = "python_control_flow"

    def value(self, z, /, *, xp):
        return z if bool(xp.all(z > -10.0)) else -z  # a host sync: no jax.jit

    def derivative(self, z, /, *, xp):
        return xp.ones_like(z)


@pytest.mark.backend("jax")
def test_jax_jit_catches_host_syncs():
    pytest.importorskip("jax")
    with pytest.raises(ConformanceError, match="jax.*under jax.jit"):
        check_activation(PythonControlFlow, backends=["jax"])


class WrongGradient(losses.Loss):
    name = "wrong_gradient"

    def value(self, y_hat, y, /, *, xp):
        d = y_hat - y
        return xp.mean(d * d)

    def gradient(self, y_hat, y, /, *, xp):
        return (y_hat - y) / y.shape[0]  # missing 2 / k


class WrongFusion(losses.MeanSquaredError):
    name = "wrong_fusion"

    def output_delta(self, z, y_hat, y, activation, /, *, xp):
        return self.gradient(y_hat, y, xp=xp)  # forgets the activation's derivative


class NotScalar(losses.MeanSquaredError):
    name = "not_scalar"

    def value(self, y_hat, y, /, *, xp):
        return xp.mean((y_hat - y) ** 2, axis=0)


@pytest.mark.parametrize("obj, match", [
    (WrongGradient, "gradient vs finite differences"),
    (WrongFusion, "output_delta with tanh vs finite differences"),
    (NotScalar, r"shape \(3,\); expected \(\)"),
], ids=["gradient", "fusion", "not-scalar"])
def test_loss_defects_are_caught(obj, match):
    with pytest.raises(ConformanceError, match=match):
        check_loss(obj, backends=NP)


class Ascends(optimizers.Optimizer):
    name = "ascends"

    def update(self, params, grads, state, /, *, xp):
        return params + 0.01 * grads, {"t": state["t"] + 1}


class ChangesKeys(optimizers.Optimizer):
    name = "changes_keys"

    def update(self, params, grads, state, /, *, xp):
        return params - 0.01 * grads, {"t": state["t"] + 1, "extra": 1}


class MutatesState(optimizers.Momentum):
    name = "mutates_state"

    def update(self, params, grads, state, /, *, xp):
        v = state["velocity"]
        v *= self.momentum
        v += grads
        return params - self.learning_rate * v, {**state, "t": state["t"] + 1, "velocity": v}


@pytest.mark.parametrize("obj, match", [
    (Ascends, "did not decrease"), (ChangesKeys, "changed the state's keys"),
    (MutatesState, r"state\['velocity'\] was modified in place"),
], ids=["ascends", "keys", "in-place"])
def test_optimizer_defects_are_caught(obj, match):
    with pytest.raises(ConformanceError, match=match):
        check_optimizer(obj, backends=NP)


class GlobalRandomDropout(layers.Layer):
    name = "global_random_dropout"

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        if not training:
            return x, None
        mask = xp.asarray(numpy.random.random(tuple(x.shape)) > 0.5, dtype=x.dtype)
        return x * mask, mask

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        return (grad if cache is None else grad * cache), ()


class WrongLayerGradient(layers.Layer):
    name = "wrong_layer_gradient"

    def parameter_specs(self):
        return [layers.ParamSpec("s", (self.input_size,), initializers.Constant(1.0))]

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        return x * params[0], x

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        return grad * params[0], (xp.sum(grad, axis=0),)  # should weigh by the input


@pytest.mark.parametrize("obj, match", [
    (GlobalRandomDropout, "same rng seed"),
    (WrongLayerGradient, "gradient of s .training=False. vs finite differences"),
], ids=["global-rng", "param-gradient"])
def test_layer_defects_are_caught(obj, match):
    with pytest.raises(ConformanceError, match=match):
        check_layer(obj, backends=NP)


class GlobalRandomInit(initializers.Initializer):
    name = "global_random_init"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        return numpy.random.standard_normal(shape)


class WrongShapeInit(initializers.Initializer):
    name = "wrong_shape_init"

    def __call__(self, shape, *, rng, fan_in, fan_out):
        return rng.standard_normal((fan_in,))


@pytest.mark.parametrize("obj, match", [(GlobalRandomInit, "global random state"),
                                        (WrongShapeInit, r"returned shape")],
                         ids=["global-rng", "shape"])
def test_initializer_defects_are_caught(obj, match):
    with pytest.raises(ConformanceError, match=match):
        check_initializer(obj, backends=NP)


def test_protocol_violations_fail_before_any_math():
    class NoDerivative(activations.ElementwiseActivation):
        def value(self, z, /, *, xp):
            return z

    with pytest.raises(pm.PluginError, match="does not implement derivative"):
        check_activation(NoDerivative, backends=NP)


def test_nothing_to_check_skips(monkeypatch):
    monkeypatch.setattr("polymlp.testing.available", lambda name: False)
    monkeypatch.setattr("polymlp._conformance.available", lambda name: False)
    with pytest.raises(pytest.skip.Exception, match="no backend to check"):
        check_activation(activations.Tanh, backends=["cupy"])
