"""ONNX export, checked by onnx.checker and by onnxruntime against polymlp itself.

Every case exports a network, runs the model in onnxruntime on batches of 1,
7 and 1000 rows and compares with ``predict_proba`` / ``predict`` (float32 or
float64 tolerance): each built-in activation, each loss/output pairing, the
three seed nets, float64 models and polymlp-extras' plugins. Also the
skl2onnx converters (a scaler + MLPClassifier pipeline), ``net.export``, the
CLI and the error for an unmapped plugin.
"""

import os
import subprocess
import sys

import numpy
import pytest

import polymlp as pm
from polymlp import testing

pytestmark = pytest.mark.skipif(
    "numpy" not in testing.selected_backends(),
    reason="ONNX export is backend-independent: tested in the numpy session")

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
po = pytest.importorskip("polymlp.onnx")

BATCHES = (1, 7, 1000)
ACTIVATIONS = sorted(pm.activations.BUILTINS)


def _inputs(n_features, seed=0, scale=2.0):
    rng = numpy.random.default_rng(seed)
    return rng.standard_normal((max(BATCHES), n_features)) * scale


def _check(net, x=None):
    x = _inputs(net.input_size) if x is None else x
    return po.check_export(net, *(x[:b] for b in BATCHES))


def _hidden_net(activation, dtype):
    net = pm.Network(14, seed=1, dtype=dtype, name=f"hidden-{activation}")
    net.stack(pm.Dense(16, activation=activation)).stack(pm.Dense(12, activation=activation))
    return net.output(pm.Dense(4, activation="softmax"), loss="cross_entropy")


PAIRINGS = {
    "softmax+cross_entropy": ("softmax", "cross_entropy", 4),
    "sigmoid+binary_cross_entropy (one unit)": ("sigmoid", "binary_cross_entropy", 1),
    "sigmoid+binary_cross_entropy (multilabel)": ("sigmoid", "binary_cross_entropy", 3),
    "identity+mse": ("identity", "mse", 3),
    "identity+mae": ("identity", "mae", 1),
}


def _pairing_net(case, dtype="float32"):
    activation, loss, units = PAIRINGS[case]
    net = pm.Network(14, seed=2, dtype=dtype, name=case)
    net.stack(pm.Dense(20, activation="tanh"))
    return net.output(pm.Dense(units, activation=activation), loss=loss)


def _seed_net(hidden, name, dtype="float32"):
    from polymlp.cli import build_seed_net

    x, y, _, _ = pm.datasets.hypercube()
    net = build_seed_net(hidden, name=name, dtype=dtype, seed=0)
    # Trained a little, so that the weights are those of a real model.
    net.fit(x[:2048], y[:2048], epochs=1, batch_size=32, record=None)
    return net


def _seed_nets():
    from polymlp.cli import SEED_NETS

    return [(name, hidden) for name, hidden, _ in SEED_NETS]


def _extras_cases():
    try:
        import polymlp_extras as ex
    except ImportError:
        return []
    return [("swish", lambda: pm.Dense(16, ex.Swish())),
            ("swish beta=1.5", lambda: pm.Dense(16, ex.Swish(beta=1.5))),
            ("silu", lambda: pm.Dense(16, ex.SiLU())),
            ("gelu", lambda: pm.Dense(16, ex.GELU())),
            ("gelu tanh", lambda: pm.Dense(16, ex.GELU(approximate="tanh"))),
            ("softplus", lambda: pm.Dense(16, ex.Softplus())),
            ("softplus beta=2 threshold=3", lambda: pm.Dense(16, ex.Softplus(2.0, 3.0))),
            ("mish", lambda: pm.Dense(16, ex.Mish())),
            ("dropout", lambda: ex.Dropout(0.3)),
            ("layer_norm", lambda: ex.LayerNorm())]


def _extras_net(make, dtype):
    net = pm.Network(14, seed=3, dtype=dtype, name="extras")
    net.stack(pm.Dense(16, activation="tanh")).stack(make())
    return net.output(pm.Dense(4, activation="softmax"), loss="cross_entropy")


def _all_cases():
    """(label, network factory) of every export case, for the largest-difference report."""
    cases = []
    for dtype in ("float32", "float64"):
        cases += [(f"{a} {dtype}", lambda a=a, d=dtype: _hidden_net(a, d)) for a in ACTIVATIONS]
        cases += [(f"{p} {dtype}", lambda p=p, d=dtype: _pairing_net(p, d)) for p in PAIRINGS]
        cases += [(f"{n} {dtype}", lambda h=h, n=n, d=dtype: _seed_net(h, n, d))
                  for n, h in _seed_nets()]
        cases += [(f"extras {n} {dtype}", lambda m=m, d=dtype: _extras_net(m, d))
                  for n, m in _extras_cases()]
    return cases


# --- every case, through onnxruntime -----------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_builtin_activation(activation, dtype):
    _check(_hidden_net(activation, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(PAIRINGS))
def test_each_loss_and_output_pairing(case, dtype):
    net = _pairing_net(case, dtype)
    _check(net)
    model = po.to_onnx(net)
    outputs = [o.name for o in model.graph.output]
    assert outputs == (["probabilities", "label"] if net.classification else ["predictions"])


@pytest.mark.parametrize("name,hidden", _seed_nets())
def test_seed_nets(name, hidden, hypercube):
    net = _seed_net(hidden, name)
    x_test = hypercube[2]
    _check(net, x_test[:1000])
    ops = [n.op_type for n in po.to_onnx(net).graph.node]
    assert ops.count("Gemm") == len(hidden) + 1 and ops.count("Relu") == len(hidden)
    assert ops.count("Softmax") == 1


def test_float64_model_keeps_float64(hypercube):
    net = _seed_net((100, 40), "14-100-40-4", dtype="float64")
    model = po.to_onnx(net)
    elem = model.graph.input[0].type.tensor_type.elem_type
    assert elem == onnx.TensorProto.DOUBLE
    assert all(init.data_type == onnx.TensorProto.DOUBLE for init in model.graph.initializer)
    # Tighter than float32 could ever be: the same arithmetic in float64.
    assert _check(net, hypercube[2][:1000]) < 1e-12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", [n for n, _ in _extras_cases()] or ["(polymlp-extras missing)"])
def test_each_extras_plugin(name, dtype):
    cases = dict(_extras_cases())
    if not cases:
        pytest.skip("polymlp-extras is not importable (its own tests cover it when installed)")
    net = _extras_net(cases[name], dtype)
    # Larger weights reach the tails (softplus threshold, erf's large branch).
    net.set_weights([w * 3 for w in net.get_weights()])
    _check(net)


def test_largest_difference_across_all_cases(capsys):
    """The closing note's number: max |onnxruntime - polymlp| over every case above."""
    rows = [(label, _check(make())) for label, make in _all_cases()]
    worst32 = max((d, label) for label, d in rows if "float32" in label)
    worst64 = max((d, label) for label, d in rows if "float64" in label)
    with capsys.disabled():
        print(f"\nONNX export, {len(rows)} cases, batches {BATCHES}: largest |onnxruntime - "
              f"polymlp| float32 {worst32[0]:.3g} ({worst32[1]}), float64 {worst64[0]:.3g} "
              f"({worst64[1]})")
    assert worst32[0] < 1e-4 and worst64[0] < 1e-9


# --- the model itself ----------------------------------------------------------------------

def test_model_has_dynamic_batch_named_io_and_metadata():
    net = _hidden_net("relu", "float32")
    model = po.to_onnx(net)
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "input" and dims[0].dim_param == "batch" and dims[1].dim_value == 14
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [
        onnx.TensorProto.FLOAT, onnx.TensorProto.INT64]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["name"] == "hidden-relu" and meta["polymlp_version"] == pm.__version__
    assert meta["summary"] == net.summary(print_fn=None) and meta["task"] == "classification"
    assert model.producer_name == "polymlp"
    assert model.opset_import[0].version == po.DEFAULT_OPSET
    onnx.checker.check_model(model, full_check=True)


def test_labels_can_be_left_out_and_opset_is_checked():
    net = _hidden_net("tanh", "float32")
    assert [o.name for o in po.to_onnx(net, labels=False).graph.output] == ["probabilities"]
    assert po.to_onnx(net, opset=13).opset_import[0].version == 13
    with pytest.raises(ValueError, match="`opset` must be an int from 13"):
        po.to_onnx(net, opset=7)


def test_leaky_relu_is_leakyrelu_with_slope_in_float32():
    net = _hidden_net("leaky_relu", "float32")
    (node,) = [n for n in po.to_onnx(net).graph.node if n.op_type == "LeakyRelu"][:1]
    assert onnx.helper.get_attribute_value(node.attribute[0]) == pytest.approx(0.01)


def test_unbuilt_network_is_a_clear_error():
    net = pm.Network(3).stack(pm.Dense(4, "relu"))
    with pytest.raises(pm.NotBuiltError, match="before exporting it to ONNX"):
        po.to_onnx(net)


# --- plugins without a mapping ----------------------------------------------------------------

class _Cube(pm.ElementwiseActivation):
    name = "cube_for_onnx_test"

    def value(self, z, /, *, xp):
        return z * z * z

    def derivative(self, z, /, *, xp):
        return 3.0 * z * z


class _Scale(pm.Layer):
    name = "scale_for_onnx_test"

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        return 2.0 * x, None

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        return 2.0 * grad, ()


class _ReLUPlus(pm.activations.ReLU):
    """Inherits ReLU's mapping but computes something else: must map itself."""

    name = "relu_plus_for_onnx_test"

    def value(self, z, /, *, xp):
        return xp.maximum(z, 0.0) + 1.0


def test_unmapped_activation_names_it_and_the_method():
    net = pm.Network(3).stack(pm.Dense(4, activation=_Cube()))
    net.output(pm.Dense(2, "softmax"), loss="cross_entropy")
    with pytest.raises(po.OnnxMappingError) as info:
        po.to_onnx(net)
    message = str(info.value)
    assert "activation 'cube_for_onnx_test'" in message and "_Cube" in message
    assert "to_onnx(self, builder, input_name)" in message and "layer 0" in message
    assert "CONTRIBUTING.md" in message
    assert isinstance(info.value, NotImplementedError) and isinstance(info.value, pm.PolymlpError)


def test_unmapped_layer_names_it_and_the_method(tmp_path):
    net = pm.Network(3).stack(_Scale()).output(pm.Dense(2, "softmax"), loss="cross_entropy")
    with pytest.raises(po.OnnxMappingError,
                       match=r"layer 'scale_for_onnx_test' .*_Scale.* Implement "
                             r"`to_onnx\(self, builder, input_name, params\)`"):
        net.export(tmp_path / "scale.onnx")
    assert not (tmp_path / "scale.onnx").exists()


def test_inherited_mapping_of_overridden_math_is_refused():
    net = pm.Network(3).stack(pm.Dense(4, activation=_ReLUPlus()))
    net.output(pm.Dense(2, "softmax"), loss="cross_entropy")
    with pytest.raises(po.OnnxMappingError, match="_ReLUPlus overrides `value` but inherits "
                                                  "`to_onnx` from ReLU"):
        po.to_onnx(net)


def test_a_plugin_mapping_is_used(tmp_path):
    class MappedCube(_Cube):
        name = "mapped_cube_for_onnx_test"

        def to_onnx(self, builder, input_name):
            square = builder.node("Mul", [input_name, input_name])
            return builder.node("Mul", [square, input_name])

    net = pm.Network(3, seed=0).stack(pm.Dense(4, activation=MappedCube()))
    net.output(pm.Dense(2, "identity"), loss="mse")
    _check(net)


# --- net.export and the CLI -----------------------------------------------------------------

def test_export_infers_the_format_and_keeps_npz(tmp_path):
    net = _hidden_net("sigmoid", "float32")
    x = _inputs(14)[:7].astype(numpy.float32)
    path = net.export(tmp_path / "model.onnx")
    session = ort.InferenceSession(path)
    proba, labels = session.run(None, {"input": x})
    numpy.testing.assert_allclose(proba, net.predict_proba(x), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_array_equal(labels, net.predict(x))
    other = net.export(tmp_path / "model.bin", format="onnx", labels=False)
    assert [o.name for o in ort.InferenceSession(other).get_outputs()] == ["probabilities"]
    npz = net.export(tmp_path / "weights.npz")
    with numpy.load(npz) as weights:
        numpy.testing.assert_array_equal(weights["layers.0.W"], net.get_weights()[0])
    with pytest.raises(ValueError, match="`format` must be one of"):
        net.export(tmp_path / "x", format="tflite")
    with pytest.raises(TypeError, match="format='onnx' only"):
        net.export(tmp_path / "w.npz", labels=False)


def test_failed_export_leaves_the_old_file(tmp_path):
    good = _hidden_net("relu", "float32")
    path = good.export(tmp_path / "model.onnx")
    before = open(path, "rb").read()
    bad = pm.Network(3).stack(_Scale()).output(pm.Dense(2, "softmax"), loss="cross_entropy")
    with pytest.raises(po.OnnxMappingError):
        bad.export(path)
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "polymlp", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_export(tmp_path):
    net = _pairing_net("identity+mse")
    net.save(tmp_path / "model.polymlp")
    out = _cli("export", str(tmp_path / "model.polymlp"), str(tmp_path / "model.onnx"))
    assert out.returncode == 0, out.stderr
    assert "model.onnx" in out.stdout and "predictions" in out.stdout
    x = _inputs(14)[:1000].astype(numpy.float32)
    (pred,) = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"input": x})
    numpy.testing.assert_allclose(pred, net.predict(x), rtol=1e-5, atol=1e-5)
    missing = _cli("export", str(tmp_path / "nope.polymlp"), str(tmp_path / "x.onnx"))
    assert missing.returncode == 1 and "polymlp export: error:" in missing.stderr
    assert not (tmp_path / "x.onnx").exists()


# --- skl2onnx --------------------------------------------------------------------------------

def _estimator(kind, **params):
    """A polymlp.sklearn estimator. The one place that knows the constructor's parameter
    names (scikit-learn's names: hidden_layer_sizes, max_iter, learning_rate_init, ...)."""
    from polymlp import sklearn as psk

    cls = psk.MLPClassifier if kind == "classifier" else psk.MLPRegressor
    iterations = "max_iter" if "max_iter" in cls().get_params() else "epochs"
    defaults = {"hidden_layer_sizes": (16,), iterations: 30, "random_state": 0}
    return cls(**{**defaults, **params})


def _skl2onnx_session(pipeline, X, **options):
    skl2onnx = pytest.importorskip("skl2onnx")
    model = skl2onnx.to_onnx(pipeline, X[:1], **options)
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("labels", ["int", "str"])
@pytest.mark.parametrize("dtype, network_dtype", [("float32", "float32"), ("float64", "float32"),
                                                  ("float64", "float64")])
def test_skl2onnx_pipeline_classifier(labels, dtype, network_dtype):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = X.astype(dtype)
    if labels == "str":
        y = numpy.array(["setosa", "versicolor", "virginica"])[y]
    clf = _estimator("classifier", dtype=network_dtype)
    pipe = make_pipeline(StandardScaler(), clf).fit(X, y)
    assert clf.network_.dtype_name == network_dtype
    session = _skl2onnx_session(pipe, X, options={"zipmap": False})
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    label, proba = session.run(None, {session.get_inputs()[0].name: X})
    assert proba.dtype == dtype and proba.shape == (150, 3)
    # A float32 network rounds in float32 in both; a float64 one computes in float64 in both.
    tol = 1e-5 if network_dtype == "float32" else 1e-10
    numpy.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=tol, atol=tol)
    numpy.testing.assert_array_equal(label, pipe.predict(X))


def test_skl2onnx_binary_with_one_logistic_unit():
    """A binary classifier with one logistic output p (scikit-learn's layout) gives [1-p, p]."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_breast_cancer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(numpy.float32)
    clf = _estimator("classifier")
    pipe = make_pipeline(StandardScaler(), clf).fit(X, y)
    if clf.network_.output_size != 1:
        # Estimators that train two softmax units: give this one scikit-learn's layout, one
        # logistic unit, and take the expected outputs from that network.
        net = pm.Network(X.shape[1], seed=0).stack(pm.Dense(16, "relu"))
        clf.network_ = net.output(pm.Dense(1, "sigmoid"), loss="binary_cross_entropy")
        scaled = pipe[0].transform(X)
        clf.network_.fit(scaled, y[:, None].astype(float), epochs=20, record=None)
        p = pm.to_numpy(clf.network_.predict_proba(scaled))[:, 0].astype(numpy.float64)
        expected_proba = numpy.stack([1 - p, p], axis=1)
        expected_label = clf.classes_[(p > 0.5).astype(int)]
    else:
        expected_proba, expected_label = pipe.predict_proba(X), pipe.predict(X)
    session = _skl2onnx_session(pipe, X, options={"zipmap": False})
    label, proba = session.run(None, {session.get_inputs()[0].name: X})
    assert proba.shape == (len(X), 2)
    numpy.testing.assert_allclose(proba, expected_proba, rtol=1e-5, atol=1e-5)
    clear = numpy.abs(expected_proba[:, 1] - 0.5) > 1e-5
    numpy.testing.assert_array_equal(label[clear], expected_label[clear])


def test_skl2onnx_multilabel_and_regressor():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = X.astype(numpy.float32)
    Y = numpy.stack([y == 0, y == 2, X[:, 0] > 5.8], axis=1).astype(int)
    pipe = make_pipeline(StandardScaler(), _estimator("classifier")).fit(X, Y)
    session = _skl2onnx_session(pipe, X, options={"zipmap": False})
    label, proba = session.run(None, {session.get_inputs()[0].name: X})
    assert label.shape == (150, 3) and label.dtype == numpy.int64
    numpy.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-5, atol=1e-5)
    numpy.testing.assert_array_equal(label, pipe.predict(X))

    reg = make_pipeline(StandardScaler(), _estimator("regressor")).fit(X[:, :3], X[:, 3])
    session = _skl2onnx_session(reg, X[:, :3])
    (pred,) = session.run(None, {session.get_inputs()[0].name: X[:, :3]})
    assert pred.shape == (150, 1)
    numpy.testing.assert_allclose(pred[:, 0], reg.predict(X[:, :3]), rtol=1e-5, atol=1e-5)


def test_skl2onnx_default_zipmap_still_converts():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = X.astype(numpy.float32)
    clf = _estimator("classifier").fit(X, y)
    session = _skl2onnx_session(clf, X)
    label, proba = session.run(None, {session.get_inputs()[0].name: X[:5]})
    assert isinstance(proba, list) and set(proba[0]) == {0, 1, 2}
    numpy.testing.assert_allclose([[row[k] for k in (0, 1, 2)] for row in proba],
                                  clf.predict_proba(X[:5]), rtol=1e-5, atol=1e-5)
    named = _estimator("classifier").fit(X, numpy.array(["a", "b", "c"])[y])
    session = _skl2onnx_session(named, X, options={"zipmap": False, "nocl": True})
    label, proba = session.run(None, {session.get_inputs()[0].name: X})
    assert label.dtype == numpy.int64  # class indices, not the string labels
    numpy.testing.assert_array_equal(named.classes_[label], named.predict(X))


# --- import hygiene ---------------------------------------------------------------------------

def test_import_polymlp_imports_no_export_or_logging_library():
    code = ("import sys, polymlp, polymlp.callbacks\n"
            "net = polymlp.Network(2).output(polymlp.Dense(2, 'softmax'))\n"
            "import tempfile, os\n"
            "net.export(os.path.join(tempfile.mkdtemp(), 'w.npz'))\n"
            "print([m for m in ('onnx', 'onnxruntime', 'skl2onnx', 'tensorboardX', "
            "'tensorboard', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
