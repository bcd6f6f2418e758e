"""Bad input: every case gets a clear error before any work is done, and no state changes.

One parametrized case per item of the list in the robustness issue; each
runs on every selected backend. An error must be of the documented type
(``TypeError`` for the wrong kind of object, ``ValueError`` for a wrong
value, ``NotBuiltError`` for a call out of order), and its message must name
the parameter and what was received; the network must be unchanged after it.
"""

import re

import numpy
import pytest

import polymlp as pm
from polymlp import testing

N = 24


def _data():
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((N, 4))
    y = numpy.arange(N) % 3
    return x, y


def _net(net_kwargs, **kwargs):
    net = pm.Network(4, name="bad-input", seed=0, **net_kwargs, **kwargs)
    net.stack(pm.Dense(5, activation="relu"))
    return net.output(pm.Dense(3, activation="softmax"), loss="cross_entropy")


def _fingerprint(net):
    """Everything a failed call must leave as it was."""
    state = None
    if net.opt_state is not None:
        state = {k: (pm.to_numpy(v).tolist() if hasattr(v, "shape") else v)
                 for k, v in net.opt_state.items()}
    weights = [w.tolist() for w in net.get_weights()] if net.built else None
    return (weights, net.iterations, net.epochs_done, repr(net.rng.bit_generator.state),
            id(net.optimizer), repr(net.optimizer), state, len(net.layers), repr(net.loss_fn))


def _on_backend(arr, net):
    return net.backend.asarray(numpy.asarray(arr))


def _strict_other_device(net, x):
    import array_api_strict

    return array_api_strict.asarray(x, device=array_api_strict.Device("CPU_DEVICE"))


def _torch_meta(shape):
    torch = pytest.importorskip("torch")
    return torch.empty(shape, device="meta")


def _other_device_array(net, x):
    """An array of the network's own library on another of its devices."""
    if net.backend.name == "array_api_strict":
        return _strict_other_device(net, x)
    if net.backend.name == "torch":
        return _torch_meta(x.shape)
    pytest.skip(f"backend {net.backend.name}: no second device on this machine")


def _wrong_width_one_hot(y):
    return numpy.eye(4)[y]


def _fit(net, x, y, **kw):
    kw = {"epochs": 1, "batch_size": 8, **kw}
    return net.fit(x, y, **kw)


# (id, call(net, x, y, net_kwargs), exception type, regexes the message must match)
CASES = [
    # --- x ---
    ("x_not_2d", lambda n, x, y, k: _fit(n, x[0], y), ValueError,
     [r"`x` must be 2-D", r"shape \(4,\)", r"reshape"]),
    ("x_3d", lambda n, x, y, k: _fit(n, x[None], y), ValueError,
     [r"`x` must be 2-D", r"shape \(1, 24, 4\)"]),
    ("x_wrong_features", lambda n, x, y, k: _fit(n, x[:, :3], y), ValueError,
     [r"`x` has 3 features", r"expects 4", r"input_size"]),
    ("x_empty", lambda n, x, y, k: _fit(n, x[:0], y[:0]), ValueError,
     [r"`x` is empty", r"\(0, 4\)"]),
    ("x_y_different_lengths", lambda n, x, y, k: _fit(n, x, y[:-1]), ValueError,
     [r"`y` has 23 rows but x has 24"]),
    ("x_nan", lambda n, x, y, k: _fit(n, numpy.where(x > 1.5, numpy.nan, x), y), ValueError,
     [r"`x` contains NaN or infinite"]),
    ("x_inf_backend_array", lambda n, x, y, k: _fit(n, _on_backend(x * numpy.inf, n), y),
     ValueError, [r"`x` contains NaN or infinite"]),
    ("y_nan", lambda n, x, y, k: _fit(n, x, numpy.where(y == 2, numpy.nan, y)), ValueError,
     [r"`y` contains NaN or infinite"]),
    ("x_strings", lambda n, x, y, k: _fit(n, x.astype(str), y), TypeError,
     [r"`x` must be an array of real numbers", r"strings", r"dtype=float"]),
    ("x_objects", lambda n, x, y, k: _fit(n, numpy.array([[1.0, None, 2.0, 3.0]] * N), y),
     TypeError, [r"`x`", r"Python objects"]),
    ("x_none", lambda n, x, y, k: _fit(n, None, y), TypeError, [r"`x`", r"None"]),
    ("x_ragged", lambda n, x, y, k: _fit(n, [[1.0, 2.0, 3.0, 4.0], [1.0]], y[:2]), ValueError,
     [r"`x` could not be turned into a rectangular", r"same length"]),
    ("x_complex", lambda n, x, y, k: _fit(n, x + 1j, y), TypeError,
     [r"`x` must be an array of real numbers", r"complex"]),
    ("predict_x_wrong_features", lambda n, x, y, k: n.predict(x[:, :2]), ValueError,
     [r"`x` has 2 features", r"expects 4"]),
    ("validation_x_wrong_features",
     lambda n, x, y, k: _fit(n, x, y, validation_data=(x[:, :3], y)), ValueError,
     [r"`validation_data\[0\]` has 3 features"]),
    # --- y ---
    ("y_strings", lambda n, x, y, k: _fit(n, x, numpy.array(["a", "b", "c"] * 8)), TypeError,
     [r"`y` must be an array of real numbers", r"strings"]),
    ("labels_out_of_range", lambda n, x, y, k: _fit(n, x, y + 1), ValueError,
     [r"`y` must be in \[0, 2\]", r"from 1 to 3", r"Encode the classes"]),
    ("labels_negative", lambda n, x, y, k: _fit(n, x, y - 1), ValueError,
     [r"`y` must be in \[0, 2\]", r"from -1 to 1"]),
    ("labels_non_integral", lambda n, x, y, k: _fit(n, x, y + 0.5), ValueError,
     [r"`y` must be integers", r"0\.5", r"loss='mse'"]),
    ("one_hot_wrong_width", lambda n, x, y, k: _fit(n, x, _wrong_width_one_hot(y)), ValueError,
     [r"`y` has 4 columns", r"\(24, 4\)", r"3 units", r"one-hot rows of width 3"]),
    ("labels_as_column", lambda n, x, y, k: _fit(n, x, y[:, None]), ValueError,
     [r"`y` has 1 columns", r"ravel"]),
    ("regression_targets_for_classifier",
     lambda n, x, y, k: _fit(n, x, 10 * numpy.random.default_rng(0).standard_normal((N, 3))),
     ValueError, [r"`y` holds values from", r"classification loss", r"loss='mse'"]),
    ("targets_1d_for_multi_output_regressor",
     lambda n, x, y, k: _fit(pm.Network(4, **k).output(pm.Dense(2), loss="mse"), x, x[:, 0]),
     ValueError, [r"`y` is 1-D but the output layer has 2 units", r"\(n, 2\)"]),
    # --- fit arguments ---
    ("epochs_zero", lambda n, x, y, k: _fit(n, x, y, epochs=0), ValueError,
     [r"`epochs` must be a positive integer", r"got 0"]),
    ("epochs_float", lambda n, x, y, k: _fit(n, x, y, epochs=2.5), TypeError,
     [r"`epochs` must be a positive integer", r"2\.5", r"float"]),
    ("batch_size_negative", lambda n, x, y, k: _fit(n, x, y, batch_size=-8), ValueError,
     [r"`batch_size` must be a positive integer", r"-8"]),
    ("batch_size_string", lambda n, x, y, k: _fit(n, x, y, batch_size="32"), TypeError,
     [r"`batch_size` must be a positive integer", r"'32'", r"str"]),
    ("record_unknown", lambda n, x, y, k: _fit(n, x, y, record="batch"), ValueError,
     [r"`record` must be one of", r"'batch'"]),
    ("verbose_out_of_range", lambda n, x, y, k: _fit(n, x, y, verbose=3), ValueError,
     [r"`verbose` must be 0", r"got 3"]),
    ("on_divergence_unknown", lambda n, x, y, k: _fit(n, x, y, on_divergence="ignore"),
     ValueError, [r"`on_divergence` must be one of \['raise', 'warn'\]", r"'ignore'"]),
    ("validation_data_not_a_pair", lambda n, x, y, k: _fit(n, x, y, validation_data=x),
     TypeError, [r"`validation_data` must be a tuple"]),
    ("callbacks_not_callbacks", lambda n, x, y, k: _fit(n, x, y, callbacks=[print]), TypeError,
     [r"`callbacks\[0\]` must be a polymlp.callbacks.Callback", r"builtin_function"]),
    ("callback_class_not_instance",
     lambda n, x, y, k: _fit(n, x, y, callbacks=[pm.callbacks.EarlyStopping]), TypeError,
     [r"`callbacks\[0\]` is the class EarlyStopping", r"EarlyStopping\(...\)"]),
    ("early_stopping_on_unlogged_key",
     lambda n, x, y, k: _fit(n, x, y, callbacks=[pm.callbacks.EarlyStopping("val_loss")]),
     ValueError, [r"monitors 'val_loss'", r"validation_data="]),
    # --- optimizers ---
    ("learning_rate_negative", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Adam(-0.01)),
     ValueError, [r"`learning_rate` must be a positive, finite number", r"-0\.01"]),
    ("learning_rate_zero", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.GradientDescent(0)),
     ValueError, [r"`learning_rate`", r"got 0"]),
    ("learning_rate_nan", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Momentum(float("nan"))),
     ValueError, [r"`learning_rate`", r"nan"]),
    ("learning_rate_inf", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Adam(float("inf"))),
     ValueError, [r"`learning_rate`", r"inf"]),
    ("learning_rate_string", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Adam("0.1")),
     TypeError, [r"`learning_rate` must be a positive number", r"'0\.1'", r"str"]),
    ("beta1_one", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Adam(beta1=1.0)), ValueError,
     [r"`beta1` must be in \[0, 1\)", r"1\.0"]),
    ("beta2_negative", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Adam(beta2=-0.1)),
     ValueError, [r"`beta2` must be in \[0, 1\)", r"-0\.1"]),
    ("momentum_above_one", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Momentum(momentum=1.5)),
     ValueError, [r"`momentum` must be in \[0, 1\)", r"1\.5"]),
    # --- names and kinds ---
    ("unknown_activation", lambda n, x, y, k: pm.Dense(4, activation="rleu"), ValueError,
     [r"Unknown activation 'rleu'", r"Did you mean 'relu'"]),
    ("unknown_loss", lambda n, x, y, k: pm.Network(4, **k).output(pm.Dense(2), loss="mse_"),
     ValueError, [r"Unknown losse? 'mse_'", r"Did you mean 'mse'"]),
    ("unknown_optimizer", lambda n, x, y, k: _fit(n, x, y, optimizer="adma"), ValueError,
     [r"Unknown optimizer 'adma'", r"Did you mean 'adam'"]),
    ("unknown_layer", lambda n, x, y, k: pm.Network(4, **k).stack("densee"), ValueError,
     [r"Unknown layer type 'densee'", r"Did you mean 'dense'"]),
    ("activation_wrong_kind", lambda n, x, y, k: pm.Dense(4, activation=42), TypeError,
     [r"Expected an activation name", r"42", r"int"]),
    ("loss_wrong_kind",
     lambda n, x, y, k: pm.Network(4, **k).output(pm.Dense(2), loss=pm.Adam()), TypeError,
     [r"Expected a losse? name", r"Adam"]),
    ("optimizer_wrong_kind", lambda n, x, y, k: _fit(n, x, y, optimizer=pm.Dense(3)), TypeError,
     [r"Expected an optimizer name", r"Dense"]),
    ("layer_wrong_kind", lambda n, x, y, k: pm.Network(4, **k).stack(pm.Adam()), TypeError,
     [r"Expected a layer type name", r"Adam"]),
    ("units_zero", lambda n, x, y, k: pm.Dense(0), ValueError, [r"`units`", r"got 0"]),
    ("leaky_relu_slope_string",
     lambda n, x, y, k: pm.activations.LeakyReLU("steep"), TypeError,
     [r"`negative_slope` must be a real number", r"'steep'"]),
    # --- building order ---
    ("stack_after_output", lambda n, x, y, k: n.stack(pm.Dense(2)), pm.NotBuiltError,
     [r"already has its output layer", r"stack\(\) must come before output\(\)"]),
    ("output_twice", lambda n, x, y, k: n.output(pm.Dense(2)), pm.NotBuiltError,
     [r"already has an output layer"]),
    ("fit_before_output",
     lambda n, x, y, k: pm.Network(4, **k).stack(pm.Dense(3)).fit(x, y, epochs=1),
     pm.NotBuiltError, [r"Call output\(layer, loss=...\)", r"before fit\(\)"]),
    ("predict_before_output", lambda n, x, y, k: pm.Network(4, **k).predict(x),
     pm.NotBuiltError, [r"before predict\(\)"]),
    ("same_layer_instance_twice",
     lambda n, x, y, k: (lambda d: pm.Network(4, **k).stack(d).stack(d))(pm.Dense(4)),
     ValueError, [r"already layer 0", r"create a new one"]),
    # --- set_weights ---
    ("set_weights_wrong_count", lambda n, x, y, k: n.set_weights(n.get_weights()[:-1]),
     ValueError, [r"`weights` has 3 arrays but the network has 4", r"get_weights"]),
    ("set_weights_wrong_shape",
     lambda n, x, y, k: n.set_weights([w.T for w in n.get_weights()]), ValueError,
     [r"`weights\[0\]` has shape \(5, 4\); expected \(4, 5\)"]),
    ("set_weights_not_a_list", lambda n, x, y, k: n.set_weights({"W": 1}), TypeError,
     [r"`weights` must be a list", r"dict"]),
    ("set_weights_strings",
     lambda n, x, y, k: n.set_weights([w.astype(str) for w in n.get_weights()]), TypeError,
     [r"`weights\[0\]` must be an array of real numbers", r"strings"]),
    ("set_weights_nan",
     lambda n, x, y, k: n.set_weights([w * numpy.nan for w in n.get_weights()]), ValueError,
     [r"`weights` contain NaN or infinite"]),
    # --- backends, devices, dtypes ---
    ("x_on_another_device", lambda n, x, y, k: _fit(n, _other_device_array(n, x), y),
     ValueError, [r"`x` is on device", r"Move it first|device="]),
    ("x_accelerator_array_of_another_library",
     lambda n, x, y, k: _fit(n, _torch_meta(x.shape), y) if n.backend.name != "torch"
     else pytest.skip("the network is on torch: see x_on_another_device"), ValueError,
     [r"`x` is a torch array on device", r"x\.cpu\(\)", r"backend='torch'"]),
    ("backend_unknown", lambda n, x, y, k: pm.Network(4, backend="nmupy"), pm.BackendError,
     [r"Unknown `backend='nmupy'`", r"Did you mean 'numpy'"]),
    ("backend_not_installed",
     lambda n, x, y, k: pm.Network(4, backend="cupy") if not testing.available("cupy")
     else pytest.skip("cupy usable here"), pm.BackendError,
     [r"backend='cupy'|cupy", r"pip install"]),
    ("backend_wrong_kind", lambda n, x, y, k: pm.Network(4, backend=42), TypeError,
     [r"`backend` must be a backend name or an Array API namespace", r"42"]),
    ("device_unavailable", lambda n, x, y, k: pm.Network(4, backend="numpy", device="gpu:7"),
     pm.BackendError, [r"`device='gpu:7'` is not a device of backend 'numpy'", r"Available"]),
    ("float64_unsupported",
     lambda n, x, y, k: pm.Network(4, backend="array_api_strict", device="no_float64",
                                   dtype="float64"), pm.BackendError,
     [r"`dtype='float64'` is not available", r"no_float64", r"float32"]),
    ("dtype_unknown", lambda n, x, y, k: pm.Network(4, dtype="float16", **k), ValueError,
     [r"`dtype` must be 'float32' or 'float64'", r"float16"]),
    ("dtype_wrong_kind", lambda n, x, y, k: pm.Network(4, dtype=42, **k), TypeError,
     [r"`dtype` must be 'float32' or 'float64'", r"42"]),
    ("input_size_zero", lambda n, x, y, k: pm.Network(0, **k), ValueError,
     [r"`input_size` must be a positive integer", r"got 0"]),
    ("seed_negative", lambda n, x, y, k: pm.Network(4, seed=-1, **k), ValueError,
     [r"`seed` must be a non-negative int", r"-1"]),
    ("seed_float", lambda n, x, y, k: pm.Network(4, seed=1.5, **k), TypeError,
     [r"`seed` must be a non-negative int", r"1\.5"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(backend_name, net_kwargs, case):
    name, call, exc_type, patterns = case
    if name == "float64_unsupported":
        pytest.importorskip("array_api_strict")
    x, y = _data()
    net = _net(net_kwargs)
    net.fit(x, y, epochs=1, batch_size=N, optimizer=pm.Adam(0.01), record=None)
    before = _fingerprint(net)
    with pytest.raises(exc_type) as info:
        call(net, x, y, net_kwargs)
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    assert _fingerprint(net) == before, "a failed call changed the network"


def test_host_arrays_of_other_libraries_are_converted(backend_name, net_kwargs):
    """Arrays in host memory (NumPy, lists, CPU tensors) are accepted by every backend."""
    x, y = _data()
    net = _net(net_kwargs)
    expected = pm.to_numpy(net.predict_proba(x))
    inputs = [x.tolist(), x.astype("float32")]
    torch = pytest.importorskip("torch") if testing.available("torch") else None
    if torch is not None:
        inputs.append(torch.asarray(x))
    for inp in inputs:
        numpy.testing.assert_allclose(pm.to_numpy(net.predict_proba(inp)), expected,
                                      atol=testing.atol_for("float32"))


def test_numpy_and_library_dtypes_are_accepted_as_dtype(backend_name, net_kwargs):
    net = pm.Network(4, dtype=numpy.float32, **net_kwargs)
    assert net.dtype_name == "float32"
