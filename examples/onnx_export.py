"""Deploying a trained network: export to ONNX, run it in onnxruntime, convert a pipeline.

Trains the seed net (14-100-40-4) on the hypercube, writes ``model.onnx`` with
``net.export``, runs it in onnxruntime and compares with polymlp's own
predictions; then converts a ``StandardScaler + MLPClassifier`` pipeline with
skl2onnx (skipped without scikit-learn or skl2onnx).

Run:  python examples/onnx_export.py [--quick]
Needs: pip install 'polymlp[onnx]'
"""
import argparse
import os
import tempfile

import numpy

import polymlp as pm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="one epoch instead of five")
args = parser.parse_args()

try:
    import onnxruntime

    import polymlp.onnx  # noqa: F401 - registers the skl2onnx converters too
except ImportError as exc:
    raise SystemExit(f"This example needs the onnx extra: pip install 'polymlp[onnx]' ({exc})")

x_train, y_train, x_test, y_test = pm.datasets.hypercube()
net = pm.Network(14, name="14-100-40-4", seed=0)
net.stack(pm.Dense(100, "relu")).stack(pm.Dense(40, "relu"))
net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
net.fit(x_train, y_train, epochs=1 if args.quick else 5, batch_size=32, record=None)

with tempfile.TemporaryDirectory() as folder:
    path = net.export(os.path.join(folder, "model.onnx"))
    size = os.path.getsize(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(None, {"input": x_test.astype(numpy.float32)})

ours = pm.to_numpy(net.predict_proba(x_test))
print(f"exported {net.name} ({net.n_parameters:,} parameters) to model.onnx ({size:,} bytes); "
      f"inputs {[i.name for i in session.get_inputs()]}, outputs "
      f"{[o.name for o in session.get_outputs()]}")
print(f"onnxruntime on {len(x_test):,} test rows: test accuracy "
      f"{numpy.mean(labels == y_test):.4f}; "
      f"max |onnxruntime - polymlp| of probabilities {numpy.max(numpy.abs(probabilities - ours)):.2e}; "
      f"labels equal: {bool(numpy.all(labels == pm.to_numpy(net.predict(x_test))))}")

try:
    import skl2onnx
    from sklearn.datasets import load_digits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from polymlp.sklearn import MLPClassifier
except ImportError as exc:
    print(f"(skipping the pipeline conversion: {exc})")
    raise SystemExit(0)

X, y = load_digits(return_X_y=True)
X = X.astype(numpy.float32)
clf = MLPClassifier(hidden_layer_sizes=(32,), random_state=0)
# The iteration budget: scikit-learn's name where the estimator uses it.
clf.set_params(**{"max_iter" if "max_iter" in clf.get_params() else "epochs":
                  10 if args.quick else 100})
pipe = make_pipeline(StandardScaler(), clf).fit(X, y)
model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
session = onnxruntime.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
label, proba = session.run(None, {session.get_inputs()[0].name: X})
print(f"pipeline StandardScaler + MLPClassifier through skl2onnx: outputs "
      f"{[o.name for o in session.get_outputs()]}; labels equal: "
      f"{bool(numpy.all(label == pipe.predict(X)))}; max |difference| of probabilities "
      f"{numpy.max(numpy.abs(proba - pipe.predict_proba(X))):.2e}")
