"""Every polymlp-extras activation and layer exports to ONNX and runs in onnxruntime
as it runs in polymlp (batches of 1, 7 and 1000 rows, float32 and float64)."""

import numpy
import pytest

import polymlp as pm
import polymlp_extras as ex

pytest.importorskip("onnxruntime")
po = pytest.importorskip("polymlp.onnx")

CASES = {
    "swish": lambda: pm.Dense(16, ex.Swish()),
    "swish beta=1.5": lambda: pm.Dense(16, ex.Swish(beta=1.5)),
    "silu": lambda: pm.Dense(16, ex.SiLU()),
    "gelu": lambda: pm.Dense(16, ex.GELU()),
    "gelu tanh": lambda: pm.Dense(16, ex.GELU(approximate="tanh")),
    "softplus": lambda: pm.Dense(16, ex.Softplus()),
    "softplus beta=2 threshold=3": lambda: pm.Dense(16, ex.Softplus(beta=2.0, threshold=3.0)),
    "mish": lambda: pm.Dense(16, ex.Mish()),
    "dropout": lambda: ex.Dropout(0.3),
    "layer_norm": lambda: ex.LayerNorm(),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_exports_and_matches_onnxruntime(case, dtype):
    net = pm.Network(14, seed=3, dtype=dtype).stack(pm.Dense(16, activation="tanh"))
    net.stack(CASES[case]()).output(pm.Dense(4, activation="softmax"), loss="cross_entropy")
    # Larger weights reach the tails: softplus's linear branch, erf's large-argument branch.
    net.set_weights([w * 3 for w in net.get_weights()])
    x = numpy.random.default_rng(0).standard_normal((1000, 14)) * 2
    po.check_export(net, x[:1], x[:7], x)


def test_dropout_is_the_identity_and_layer_norm_one_op():
    net = pm.Network(6, seed=0).stack(ex.Dropout(0.5)).stack(ex.LayerNorm(epsilon=1e-3))
    net.output(pm.Dense(2, activation="identity"), loss="mse")
    nodes = po.to_onnx(net).graph.node
    ops = [n.op_type for n in nodes]
    assert ops.count("LayerNormalization") == 1 and "Dropout" not in ops
    (norm,) = [n for n in nodes if n.op_type == "LayerNormalization"]
    eps = {a.name: a.f for a in norm.attribute}["epsilon"]
    assert eps == pytest.approx(1e-3)


def test_layer_norm_needs_opset_17():
    net = pm.Network(6, seed=0).stack(ex.LayerNorm()).output(pm.Dense(2, "identity"), loss="mse")
    with pytest.raises(po.OnnxMappingError, match="needs ONNX opset 17"):
        po.to_onnx(net, opset=16)
