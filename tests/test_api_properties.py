"""Property-based: random shapes, dtypes and values thrown at the public API.

Whatever comes in, only the documented exception types may come out:
``TypeError``, ``ValueError`` (``BackendError`` and ``ModelFileError`` are
``ValueError``\\ s), ``NotBuiltError`` and ``TrainingDivergedError``.
"""

import io
import warnings
import zipfile

import numpy
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import polymlp as pm  # noqa: E402

DOCUMENTED = (TypeError, ValueError, pm.NotBuiltError, pm.TrainingDivergedError)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_dtypes = st.sampled_from(["float32", "float64", "int64", "int8", "uint8", "bool",
                           "complex128", "<U3", "float16"])
_numeric_arrays = _dtypes.flatmap(lambda dt: hnp.arrays(
    dtype=dt, shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)))
_object_arrays = st.lists(st.one_of(st.none(), _floats, st.text(max_size=2)), max_size=6).map(
    lambda items: numpy.array(items + [None], dtype=object)[:len(items)])
_junk = st.one_of(st.none(), _floats, st.text(max_size=4), st.dictionaries(st.text(max_size=2),
                                                                          _floats, max_size=2),
                  st.lists(st.lists(_floats, max_size=5), max_size=5))
_inputs = st.one_of(_numeric_arrays, _numeric_arrays.map(lambda a: a.tolist()), _object_arrays,
                    _junk)
_scalars = st.one_of(st.integers(-3, 5), _floats, st.text(max_size=3), st.none(), st.booleans())


def _net():
    net = pm.Network(4, seed=0).stack(pm.Dense(3, activation="relu"))
    return net.output(pm.Dense(3, activation="softmax"), loss="cross_entropy")


def _good(n):
    rng = numpy.random.default_rng(n)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)


def _only_documented(call):
    with numpy.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except DOCUMENTED:
            pass


@FAST
@given(x=_inputs, y=_inputs, method=st.sampled_from(
    ["fit", "predict", "predict_proba", "evaluate", "test", "gradients", "loss"]))
def test_data_methods_raise_only_documented_errors(x, y, method):
    net = _net()

    def call():
        if method == "fit":
            net.fit(x, y, epochs=1, batch_size=4, record=None)
        elif method in ("predict", "predict_proba"):
            getattr(net, method)(x)
        else:
            getattr(net, method)(x, y)

    _only_documented(call)


@FAST
@given(n=st.integers(1, 12), epochs=_scalars, batch_size=_scalars, lr=_scalars,
       beta=_scalars, record=st.sampled_from(["iteration", "epoch", None, "batch", 1]),
       verbose=_scalars, shuffle=_scalars)
def test_fit_arguments_raise_only_documented_errors(n, epochs, batch_size, lr, beta, record,
                                                    verbose, shuffle):
    x, y = _good(n)

    def call():
        _net().fit(x, y, epochs=epochs, batch_size=batch_size, record=record, verbose=verbose,
                   shuffle=shuffle, optimizer=pm.Adam(learning_rate=lr, beta1=beta))

    _only_documented(call)


@FAST
@given(input_size=_scalars, units=_scalars, activation=st.one_of(st.text(max_size=8), _scalars),
       loss=st.one_of(st.sampled_from(["mse", "cross_entropy", "mea"]), _scalars),
       dtype=st.one_of(st.sampled_from(["float32", "float64", "float16"]), _scalars),
       seed=_scalars, backend=st.one_of(st.sampled_from(["numpy", "nmupy", "cupy"]), _scalars))
def test_constructors_raise_only_documented_errors(input_size, units, activation, loss, dtype,
                                                    seed, backend):
    def call():
        net = pm.Network(input_size, dtype=dtype, seed=seed, backend=backend)
        net.output(pm.Dense(units, activation=activation), loss=loss)

    _only_documented(call)


@FAST
@given(weights=st.one_of(_junk, st.lists(_inputs, max_size=5)))
def test_set_weights_raises_only_documented_errors(weights):
    _only_documented(lambda: _net().set_weights(weights))


def _model_bytes():
    net = _net()
    net.fit(*_good(8), epochs=1, batch_size=4)
    buf = io.BytesIO()
    members = pm.serialization._members(net, True)
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


_MODEL = _model_bytes()


@FAST
@given(data=st.data())
def test_damaged_model_files_raise_only_model_file_errors(tmp_path_factory, data):
    """Random byte flips and truncations of a good file: it loads or says it is damaged."""
    raw = bytearray(_MODEL)
    directory = raw.find(b"PK\x01\x02")  # the zip's central directory: most fragile part
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.one_of(st.integers(0, len(raw) - 1),
                                 st.integers(directory, len(raw) - 1)))
        raw[at] = data.draw(st.integers(0, 255))
    raw = raw[:data.draw(st.integers(0, len(raw)))]
    path = tmp_path_factory.mktemp("damaged") / "m.polymlp"
    path.write_bytes(bytes(raw))
    with numpy.errstate(all="ignore"):
        try:
            pm.load(path)
        except pm.ModelFileError:
            pass
