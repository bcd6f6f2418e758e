"""skl2onnx converters for :class:`polymlp.sklearn.MLPClassifier` and ``MLPRegressor``.

Registered by ``import polymlp.onnx`` (when skl2onnx is installed) the way
skl2onnx documents custom converters: ``update_registered_converter`` with a
shape calculator and a converter, so ``skl2onnx.to_onnx`` converts pipelines
that hold polymlp's estimators. The converter walks the fitted estimator's
network (``network_``) with the same ``to_onnx`` mappings as
:func:`polymlp.onnx.to_onnx`; the network computes in its own dtype, and the
outputs come in the input's float type (double for double inputs), as the
estimators return float64.

Classifier outputs (as skl2onnx's own ``MLPClassifier`` converter):

- ``label``: ``classes_[argmax(probabilities)]`` as int64 (integer, boolean
  or integral float classes) or strings; for multilabel estimators (sigmoid
  outputs), the int64 indicator matrix ``probabilities > 0.5``.
- ``probabilities``: ``(N, n_classes)``; a binary estimator with one logistic
  unit ``p`` gives ``[1 - p, p]``. With ``options={"zipmap": False}``; by
  default skl2onnx adds its ZipMap (a list of dicts), as for every classifier.
  With ``options={"nocl": True}`` the labels are class indices (int64).

Regressor output ``variable``: ``(N, n_outputs)``.
"""

from __future__ import annotations

import numpy
from onnx import TensorProto, numpy_helper
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType, Int64TensorType,
                                        StringTensorType)
from skl2onnx.common.utils import check_input_and_output_numbers

from ._onnx_builder import GraphBuilder, OnnxMappingError, network_graph, tensor_type
from .sklearn import MLPClassifier, MLPRegressor

CLASSIFIER_ALIAS = "PolymlpMLPClassifier"
REGRESSOR_ALIAS = "PolymlpMLPRegressor"


class ContainerBuilder(GraphBuilder):
    """A :class:`GraphBuilder` that adds to an skl2onnx container, under its scope's names."""

    def __init__(self, scope, container, dtype):
        super().__init__()
        self.scope, self.container = scope, container
        self.dtype = numpy.dtype(dtype)
        self.opset = int(container.target_opset)

    def _fresh(self, base):
        return self.scope.get_unique_variable_name(base)

    def _add_node(self, op_type, inputs, outputs, domain, attributes):
        self.container.add_node(op_type, inputs, outputs, op_domain=domain,
                                name=self.scope.get_unique_operator_name(op_type), **attributes)

    def _add_constant(self, name, array):
        if array.dtype.kind in "USO":
            values = [str(v).encode("utf-8") for v in array.ravel()]
            self.container.add_initializer(name, TensorProto.STRING, list(array.shape), values)
        else:
            self.container.add_initializer(name, None, None, numpy_helper.from_array(array, name))


def _network(estimator):
    network = getattr(estimator, "network_", None)
    if network is None:
        raise OnnxMappingError(f"{type(estimator).__name__} is not fitted (no `network_`): fit "
                               f"it before converting it to ONNX.")
    return network


def _float_type(variable):
    """Double for double inputs, float otherwise (as skl2onnx's own converters)."""
    return DoubleTensorType if isinstance(variable.type, DoubleTensorType) else FloatTensorType


def classifier_kind(network, n_classes):
    """``"binary"`` (one unit: P(classes_[1])), ``"multilabel"`` (sigmoid units) or
    ``"multiclass"`` (one probability per class)."""
    units = network.output_size
    activation = getattr(getattr(network.layers[-1], "activation", None), "name", None)
    if units == 1 and n_classes == 2:
        return "binary"
    if units != n_classes:
        raise OnnxMappingError(f"The classifier's network has {units} outputs for "
                               f"{n_classes} classes; expected one output per class, or one "
                               f"logistic output for two classes.")
    return "multilabel" if activation == "sigmoid" and units > 1 else "multiclass"


def _label_classes(classes):
    """``classes_`` as an array ONNX can hold (int64 or strings), or a clear error."""
    classes = numpy.asarray(classes)
    if classes.dtype.kind in "biu":
        return classes.astype(numpy.int64)
    if classes.dtype.kind == "f" and numpy.all(classes == numpy.round(classes)):
        return classes.astype(numpy.int64)  # as skl2onnx does for float labels
    if classes.dtype.kind in "US" or all(isinstance(c, str) for c in classes):
        return classes.astype(str)
    raise OnnxMappingError(f"classes_ {classes.tolist()!r} (dtype {classes.dtype}) cannot be "
                           f"ONNX labels: use integer or string class labels.")


def classifier_shapes(operator):
    """Shape calculator: ``label`` and ``probabilities``."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    estimator = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    k = len(estimator.classes_)
    kind = classifier_kind(_network(estimator), k)
    if kind == "multilabel":
        operator.outputs[0].type = Int64TensorType([n, k])
    elif (_label_classes(estimator.classes_).dtype.kind == "U"
          and not _no_class_labels(operator.scope_inst, estimator)):
        operator.outputs[0].type = StringTensorType([n])
    else:
        operator.outputs[0].type = Int64TensorType([n])
    operator.outputs[1].type = _float_type(operator.inputs[0])([n, k])


def regressor_shapes(operator):
    """Shape calculator: ``variable`` ``(N, n_outputs)``."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    network = _network(operator.raw_operator)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator.inputs[0])([n, network.output_size])


def _network_outputs(scope, operator, container):
    """Builder, network and the network's output for the operator's input (cast to its dtype)."""
    network = _network(operator.raw_operator)
    builder = ContainerBuilder(scope, container, network.dtype_name)
    x = builder.node("Cast", [operator.inputs[0].full_name], to=tensor_type(network.dtype_name))
    return builder, network, network_graph(network, builder, x)


def _cast_to(container, scope, source, variable):
    elem = TensorProto.DOUBLE if isinstance(variable.type, DoubleTensorType) else TensorProto.FLOAT
    container.add_node("Cast", [source], [variable.full_name], to=elem,
                       name=scope.get_unique_operator_name("Cast"))


def convert_classifier(scope, operator, container):
    """Converter of :class:`polymlp.sklearn.MLPClassifier`."""
    estimator = operator.raw_operator
    builder, network, out = _network_outputs(scope, operator, container)
    kind = classifier_kind(network, len(estimator.classes_))
    proba = out
    if kind == "binary":
        negative = builder.node("Sub", [builder.constant(1.0, "one"), out])
        proba = builder.node("Concat", [negative, out], axis=1)
    _cast_to(container, scope, proba, operator.outputs[1])
    label = operator.outputs[0].full_name
    if kind == "multilabel":
        positive = builder.node("Greater", [proba, builder.constant(0.5, "half")])
        container.add_node("Cast", [positive], [label], to=TensorProto.INT64,
                           name=scope.get_unique_operator_name("Cast"))
        return
    if _no_class_labels(container, estimator):  # option nocl: class indices as labels
        container.add_node("ArgMax", [proba], [label], axis=1, keepdims=0,
                           name=scope.get_unique_operator_name("ArgMax"))
        return
    index = builder.node("ArgMax", [proba], axis=1, keepdims=0)
    classes = builder.constant(_label_classes(estimator.classes_), "classes")
    container.add_node("Gather", [classes, index], [label], axis=0,
                       name=scope.get_unique_operator_name("Gather"))


def _no_class_labels(container, estimator):
    return bool(container.get_options(estimator, {"nocl": False})["nocl"])


def convert_regressor(scope, operator, container):
    """Converter of :class:`polymlp.sklearn.MLPRegressor`."""
    _, _, out = _network_outputs(scope, operator, container)
    _cast_to(container, scope, out, operator.outputs[0])


def register():
    """Register both converters with skl2onnx (idempotent)."""
    update_registered_converter(MLPClassifier, CLASSIFIER_ALIAS, classifier_shapes,
                                convert_classifier, overwrite=True,
                                options={"zipmap": [True, False, "columns"],
                                         "nocl": [False, True]})
    update_registered_converter(MLPRegressor, REGRESSOR_ALIAS, regressor_shapes,
                                convert_regressor, overwrite=True)
