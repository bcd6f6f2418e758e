"""Export to ONNX: a trained :class:`polymlp.Network` as a model every serving stack reads.

>>> import polymlp as pm, polymlp.onnx                      # doctest: +SKIP
>>> net.export("model.onnx")                                # or polymlp.onnx.export(net, path)
>>> import onnxruntime, numpy
>>> session = onnxruntime.InferenceSession("model.onnx")
>>> probabilities, labels = session.run(None, {"input": x.astype(numpy.float32)})

The graph is built with ``onnx.helper``, one node per operation, from each
layer's and activation's ``to_onnx`` method (the mapping protocol: see
:mod:`polymlp._onnx_builder` and CONTRIBUTING.md, "Exporting to ONNX").
Built-ins map to ``Gemm`` (Dense), ``Relu``, ``Sigmoid``, ``Tanh``,
``LeakyRelu``, ``Softmax`` (last axis) and ``Identity``.

The model
---------
- input ``input``: ``(batch, input_size)`` in the network's dtype (float32, or
  float64 for a float64 network); the batch axis is dynamic (``"batch"``).
- classifiers: ``probabilities`` ``(batch, k)``, what ``net.predict_proba``
  returns, and ``label`` ``(batch,)`` int64, what ``net.predict`` returns
  (the arg-max, or ``p > 0.5`` for one sigmoid unit); ``labels=False`` leaves
  the labels out.
- regressors: ``predictions`` ``(batch, k)``, what ``net.predict`` returns.
- metadata (``model.metadata_props``): ``name``, ``polymlp_version``,
  ``summary`` (the network summary), ``task``, ``loss``, ``outputs``.
- opset: :data:`DEFAULT_OPSET` (18) of the default domain: the oldest with
  every operator the built-ins and polymlp-extras use (``LayerNormalization``
  needs 17), and one that onnxruntime >= 1.14 runs.

Importing this module also registers skl2onnx converters for
:class:`polymlp.sklearn.MLPClassifier` and :class:`~polymlp.sklearn.MLPRegressor`
when skl2onnx is installed (see :mod:`polymlp._onnx_sklearn`), so
``skl2onnx.to_onnx(Pipeline([... , MLPClassifier(...)]), X[:1], options={"zipmap": False})``
converts whole pipelines.

Needs ``onnx`` (``pip install 'polymlp[onnx]'``, which also brings onnxruntime
and skl2onnx); ``import polymlp`` does not import this module.
"""

from __future__ import annotations

try:
    import onnx  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without onnx
    raise ImportError("polymlp.onnx needs the onnx package: pip install 'polymlp[onnx]'") from exc

from ._onnx_builder import GraphBuilder, OnnxMappingError, network_graph
from ._onnx_export import DEFAULT_OPSET, check_export, export, to_onnx

__all__ = ["DEFAULT_OPSET", "GraphBuilder", "OnnxMappingError", "check_export", "export",
           "network_graph", "to_onnx"]


def _register_sklearn_converters():
    try:
        import skl2onnx  # noqa: F401
    except ImportError:
        return False
    from . import _onnx_sklearn

    _onnx_sklearn.register()
    return True


SKLEARN_CONVERTERS = _register_sklearn_converters()
"""True when the skl2onnx converters of polymlp's estimators were registered on import."""
