"""The ONNX model of a network: :func:`to_onnx`, :func:`export`, :func:`check_export`.

See :mod:`polymlp.onnx` (the public module) for the model's inputs, outputs
and metadata. Kept apart from it so that ``Network.export`` reaches this
without the skl2onnx converters (which import polymlp.sklearn).
"""

from __future__ import annotations

import json

import onnx
from onnx import helper

from . import __version__, _modelfile, registry
from ._onnx_builder import ModelBuilder, check_opset, label_node, network_graph, tensor_type
from .errors import NotBuiltError

#: The default-domain opset of exported models.
DEFAULT_OPSET = 18

INPUT = "input"
PROBABILITIES, LABEL, PREDICTIONS = "probabilities", "label", "predictions"


def to_onnx(network, *, opset=DEFAULT_OPSET, labels=True):
    """`network` as an ``onnx.ModelProto`` (checked with ``onnx.checker``).

    Parameters
    ----------
    network : polymlp.Network
        A built network (any backend: the weights are copied to the host).
    opset : int, default DEFAULT_OPSET (18)
        Default-domain opset of the model.
    labels : bool, default True
        For classifiers, add the ``label`` output beside ``probabilities``.

    Raises
    ------
    OnnxMappingError
        A layer or activation has no ``to_onnx`` mapping (the message names it).
    """
    if not network.built:
        raise NotBuiltError(f"Call output(layer, loss=...) on network {network.name!r} before "
                            f"exporting it to ONNX.")
    if not isinstance(labels, bool):
        raise TypeError(f"`labels` must be True or False; got {labels!r}.")
    opset = check_opset(opset)
    builder = ModelBuilder(network.dtype_name, opset)
    for name in (INPUT, PROBABILITIES, LABEL, PREDICTIONS):
        builder.reserve(name)
    out = network_graph(network, builder, INPUT)
    k, elem = network.output_size, tensor_type(network.dtype_name)
    if network.classification:
        names = [PROBABILITIES] + ([LABEL] if labels else [])
        builder.nodes.append(helper.make_node("Identity", [out], [PROBABILITIES],
                                              name="probabilities"))
        outputs = [helper.make_tensor_value_info(PROBABILITIES, elem, ["batch", k])]
        if labels:
            label = label_node(builder, PROBABILITIES, k)
            builder.nodes.append(helper.make_node("Identity", [label], [LABEL], name="label"))
            outputs.append(helper.make_tensor_value_info(LABEL, onnx.TensorProto.INT64,
                                                         ["batch"]))
    else:
        names = [PREDICTIONS]
        builder.nodes.append(helper.make_node("Identity", [out], [PREDICTIONS],
                                              name="predictions"))
        outputs = [helper.make_tensor_value_info(PREDICTIONS, elem, ["batch", k])]
    summary = network.summary(print_fn=None)
    graph = helper.make_graph(
        builder.nodes, network.name,
        [helper.make_tensor_value_info(INPUT, elem, ["batch", network.input_size])], outputs,
        initializer=builder.initializers, doc_string=summary)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="polymlp",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string=f"polymlp network {network.name!r}: "
                                         f"{', '.join(names)} from {INPUT!r}.")
    helper.set_model_props(model, {
        "name": network.name,
        "polymlp_version": __version__,
        "summary": summary,
        "task": "classification" if network.classification else "regression",
        "loss": json.dumps(registry.to_config(network.loss_fn)),
        "outputs": ",".join(names),
    })
    onnx.checker.check_model(model, full_check=True)
    return model


def export(network, path, *, opset=DEFAULT_OPSET, labels=True):
    """Write `network` as an ONNX file at `path`, atomically; return the path.

    What :meth:`polymlp.Network.export` calls for ``format="onnx"`` or a
    ``.onnx`` path. Parameters as for :func:`to_onnx`.
    """
    # The atomic write of polymlp's own files: a failed export leaves the old file intact.
    path = _modelfile._check_path(path)
    model = to_onnx(network, opset=opset, labels=labels)
    _modelfile._atomic_write(path, [(None, model.SerializeToString())])
    return path


def check_export(network, *batches, opset=DEFAULT_OPSET, rtol=None, atol=None):
    """Export `network`, run it in onnxruntime on each batch, compare with polymlp.

    For plugin authors testing a ``to_onnx`` mapping, and for polymlp's own
    tests. The model must pass ``onnx.checker`` (with shape inference); its
    ``probabilities`` (classifiers) or ``predictions`` (regressors) must match
    ``network.predict_proba`` within `rtol`/`atol` (default: ``1e-5`` for
    float32, ``1e-10`` for float64, `atol` scaled by the largest output), and
    its ``label`` must equal ``network.predict`` wherever the two largest
    probabilities are further apart than the tolerance.

    Parameters
    ----------
    network : polymlp.Network
    *batches : array-like of shape (n, input_size)
        Inputs; each is run as one batch (cast to the network's dtype).

    Returns
    -------
    float
        The largest ``|onnxruntime - polymlp|`` over every batch and output.
    """
    import numpy
    import onnxruntime

    from ._array_api import to_numpy

    model = to_onnx(network, opset=opset)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    tol = 1e-5 if network.dtype_name == "float32" else 1e-10
    rtol = tol if rtol is None else rtol
    largest = 0.0
    for i, batch in enumerate(batches):
        x = numpy.asarray(batch, dtype=network.dtype_name)
        got = dict(zip(names, session.run(None, {INPUT: x})))
        ref = to_numpy(network.predict_proba(x))
        out = got[PROBABILITIES if network.classification else PREDICTIONS]
        scale = max(1.0, float(numpy.max(numpy.abs(ref)))) if ref.size else 1.0
        numpy.testing.assert_allclose(
            out, ref, rtol=rtol, atol=(tol * scale if atol is None else atol),
            err_msg=f"onnxruntime vs polymlp, batch {i} of {x.shape[0]} rows")
        assert out.dtype == ref.dtype and out.shape == ref.shape, (out.dtype, out.shape)
        if ref.size:
            largest = max(largest, float(numpy.max(numpy.abs(out.astype(numpy.float64) - ref))))
        if LABEL in got:
            labels = to_numpy(network.predict(x))
            top = numpy.sort(ref, axis=1)
            # Where the winner is decided by rounding, either label is right.
            clear = (numpy.abs(ref[:, 0] - 0.5) > tol if ref.shape[1] == 1
                     else top[:, -1] - top[:, -2] > tol)
            assert got[LABEL].dtype == numpy.int64 and got[LABEL].shape == (x.shape[0],)
            numpy.testing.assert_array_equal(got[LABEL][clear], labels[clear])
    return largest
