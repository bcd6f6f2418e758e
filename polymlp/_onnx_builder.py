"""The graph builder handed to ``to_onnx`` mappings, and the lookup of those mappings.

A layer or activation maps itself to ONNX operators with an optional method
(the protocol, documented in CONTRIBUTING.md, "Exporting to ONNX"):

- ``Layer.to_onnx(self, builder, input_name, params)``: `params` are the
  layer's parameters as NumPy arrays, in the order of its ``parameter_specs``;
- ``Activation.to_onnx(self, builder, input_name)``.

Each adds nodes through `builder` and returns the name of its output.  The
same mapping builds a standalone model (:class:`ModelBuilder`) and a piece of
an skl2onnx pipeline (the builder of :mod:`polymlp._onnx_sklearn`), so a
builder only exposes what both can do.

This module imports ``onnx`` (``polymlp.onnx`` and its converters use it);
``import polymlp`` never imports it.
"""

from __future__ import annotations

import numpy
import onnx
from onnx import helper, numpy_helper

from .errors import PolymlpError

DOC = ("CONTRIBUTING.md, 'Exporting to ONNX' under 'Writing a plugin'")


class OnnxMappingError(PolymlpError, NotImplementedError):
    """A layer or activation has no ONNX mapping (or one that cannot be trusted)."""


class GraphBuilder:
    """What a ``to_onnx`` method receives: adds nodes and constants to the graph being built.

    Attributes
    ----------
    opset : int
        The default-domain (``ai.onnx``) opset of the model; use only operators
        it defines, or call :meth:`require_opset`.
    dtype : numpy.dtype
        The floating dtype the graph computes in (the network's: float32 or
        float64). :meth:`constant` casts floating values to it.
    """

    opset = None
    dtype = None

    def __init__(self):
        self.where = None  # "layer 2 (Dense(...))", for error messages

    # --- what a mapping calls ----------------------------------------------------------

    def node(self, op_type, inputs, *, outputs=1, domain="", **attributes):
        """Add one node; return its output name (a tuple of names if `outputs` > 1).

        Parameters
        ----------
        op_type : str
            An ONNX operator, e.g. ``"Gemm"``, ``"Sigmoid"``, ``"LayerNormalization"``.
        inputs : list of str
            Names of values already in the graph (outputs of :meth:`node` or
            :meth:`constant`, or the mapping's `input_name`); ``""`` for an
            omitted optional input.
        outputs : int, default 1
            Number of outputs.
        domain : str, default ""
            Operator domain (``""`` is ``ai.onnx``).
        **attributes
            Operator attributes, e.g. ``alpha=0.01`` for ``LeakyRelu``.
        """
        names = [self._fresh(f"{op_type.lower()}_out") for _ in range(outputs)]
        self._add_node(op_type, list(inputs), names, domain, attributes)
        return names[0] if outputs == 1 else tuple(names)

    def constant(self, value, name="const", dtype=None):
        """Add a constant (an initializer) and return its name.

        Floating values (Python numbers or arrays) are stored in :attr:`dtype`
        unless `dtype` says otherwise; integer arrays keep their dtype.
        """
        array = numpy.asarray(value)
        if dtype is not None:
            array = array.astype(dtype)
        elif array.dtype.kind == "f":
            array = array.astype(self.dtype)
        unique = self._fresh(name)
        self._add_constant(unique, numpy.ascontiguousarray(array))
        return unique

    def activation(self, activation, input_name):
        """Map `activation` (an :class:`polymlp.Activation`) applied to `input_name`.

        Layers with an activation (like :class:`polymlp.Dense`) call this
        rather than the activation's method, so a missing mapping is reported
        with its layer.
        """
        method = mapping(activation, "activation", self.where)
        return method(self, input_name)

    def require_opset(self, version, what):
        """Raise :class:`OnnxMappingError` unless the model's opset is at least `version`."""
        if self.opset < version:
            raise OnnxMappingError(
                f"{what} needs ONNX opset {version} or later; this model is built with opset "
                f"{self.opset}. Export with opset={max(version, 18)} (or a later one your "
                f"runtime supports).")

    # --- what a concrete builder implements ---------------------------------------------

    def _fresh(self, base):
        raise NotImplementedError

    def _add_node(self, op_type, inputs, outputs, domain, attributes):
        raise NotImplementedError

    def _add_constant(self, name, array):
        raise NotImplementedError


class ModelBuilder(GraphBuilder):
    """Collects nodes and initializers for :func:`onnx.helper.make_graph`."""

    def __init__(self, dtype, opset):
        super().__init__()
        self.dtype = numpy.dtype(dtype)
        self.opset = int(opset)
        self.nodes, self.initializers = [], []
        self._used = set()
        self._ops = 0

    def _fresh(self, base):
        name, k = base, 0
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def reserve(self, name):
        """Keep `name` (a graph input or output) from being handed out."""
        self._used.add(name)

    def _add_node(self, op_type, inputs, outputs, domain, attributes):
        self._ops += 1
        self.nodes.append(helper.make_node(op_type, inputs, outputs,
                                           name=f"{op_type}_{self._ops}",
                                           domain=domain or None, **attributes))

    def _add_constant(self, name, array):
        self.initializers.append(numpy_helper.from_array(array, name))


def tensor_type(dtype):
    """The ONNX element type of a NumPy dtype."""
    return helper.np_dtype_to_tensor_dtype(numpy.dtype(dtype))


def _describe(obj):
    cls = type(obj)
    name = getattr(obj, "name", None) or cls.__name__
    return f"{name!r} ({cls.__module__}.{cls.__qualname__})"


def _owner(cls, attribute):
    """The class of `cls`'s MRO that defines `attribute` itself, or None."""
    return next((c for c in cls.__mro__ if attribute in c.__dict__), None)


# The methods that define what a layer or activation computes: a subclass that
# overrides one of them computes something else than the mapping it inherits.
_MATH = {"layer": ("forward",), "activation": ("value", "forward")}
_SIGNATURE = {"layer": "to_onnx(self, builder, input_name, params)",
              "activation": "to_onnx(self, builder, input_name)"}


def mapping(obj, kind, where=None):
    """The bound ``to_onnx`` method of `obj` (a layer or an activation), checked.

    Raises :class:`OnnxMappingError` naming `obj` and the method to implement
    when it has none, or when it inherits one from a class whose math it
    overrides (a ``ReLU`` subclass with another ``value`` must map itself).
    """
    cls = type(obj)
    context = f" in {where}" if where else ""
    owner = _owner(cls, "to_onnx")
    if owner is None or not callable(getattr(obj, "to_onnx", None)):
        raise OnnxMappingError(
            f"Cannot export {kind} {_describe(obj)}{context} to ONNX: it has no ONNX mapping. "
            f"Implement `{_SIGNATURE[kind]}` on {cls.__qualname__}: add nodes with "
            f"builder.node(...) and builder.constant(...) and return the name of the output "
            f"(see {DOC}).")
    for method in _MATH[kind]:
        math_owner = _owner(cls, method)
        if math_owner is not None and math_owner is not owner and issubclass(math_owner, owner):
            raise OnnxMappingError(
                f"Cannot export {kind} {_describe(obj)}{context} to ONNX: "
                f"{math_owner.__qualname__} overrides `{method}` but inherits `to_onnx` from "
                f"{owner.__qualname__}, which maps the parent's math. Implement "
                f"`{_SIGNATURE[kind]}` on {math_owner.__qualname__} (see {DOC}).")
    return obj.to_onnx


def layer_params(network):
    """Each layer's parameters as NumPy arrays, in the order of its ``parameter_specs``."""
    weights = iter(network.get_weights())
    return [tuple(next(weights) for _ in layer.parameter_specs()) for layer in network.layers]


def network_graph(network, builder, input_name):
    """Add `network`'s layers to `builder`, from `input_name`; return the output's name.

    The mapping walk shared by :func:`to_onnx` and the skl2onnx converters.
    """
    value = input_name
    for i, (layer, params) in enumerate(zip(network.layers, layer_params(network))):
        builder.where = f"layer {i} ({layer!r}) of network {network.name!r}"
        value = mapping(layer, "layer", builder.where)(builder, value, params)
    builder.where = None
    return value


def label_node(builder, probabilities, units):
    """int64 labels ``(batch,)`` from the output: arg-max, or ``p > 0.5`` for one unit."""
    if units == 1:
        positive = builder.node("Greater", [probabilities, builder.constant(0.5, "half")])
        flat = builder.node("Reshape", [positive, builder.constant([-1], "flat", dtype="int64")])
        return builder.node("Cast", [flat], to=onnx.TensorProto.INT64)
    return builder.node("ArgMax", [probabilities], axis=1, keepdims=0)


def check_opset(opset, minimum=13):
    """`opset` as an int the installed ``onnx`` knows, or a clear error."""
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not minimum <= opset <= latest:
        raise ValueError(f"`opset` must be an int from {minimum} to {latest} (the newest this "
                         f"onnx {onnx.__version__} knows); got {opset!r}.")
    return opset
