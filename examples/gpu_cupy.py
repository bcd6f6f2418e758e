"""The seed network on a CUDA GPU with CuPy, timed against NumPy on the CPU.

Nothing in the model changes but ``backend="cupy"``. Without CuPy or a CUDA device
the script says why and exits cleanly.

Run:  python examples/gpu_cupy.py [--device 0] [--quick]
"""
import argparse
import sys
import time

import polymlp as pm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--device", default=None, help="CUDA device number (default: current)")
parser.add_argument("--quick", action="store_true", help="one epoch instead of ten")
args = parser.parse_args()

cupy = next(row for row in pm.describe_backends() if row["name"] == "cupy")
if not cupy["usable"]:
    print(f"Skipping the GPU example: cupy is not usable here ({cupy['why']}).")
    sys.exit(0)

x_train, y_train, x_test, y_test = pm.datasets.hypercube()
epochs = 1 if args.quick else 10
for backend, device in (("numpy", None), ("cupy", args.device)):
    net = pm.Network(14, name="14-100-40-4", backend=backend, device=device, seed=0)
    net.stack(pm.Dense(100, "relu")).stack(pm.Dense(40, "relu"))
    net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
    start = time.perf_counter()
    # record=None computes no per-batch loss: nothing leaves the GPU until the end.
    net.fit(x_train, y_train, epochs=epochs, batch_size=32, optimizer=pm.Adam(0.002),
            record=None)
    y_pred, _, accuracy = net.test(x_test, y_test)  # y_pred stays a CuPy array on the GPU
    seconds = time.perf_counter() - start
    print(f"{backend:<6} {str(net.device):<18} test accuracy {accuracy:.4f}  "
          f"train+test {seconds:.2f}s  predictions: {type(y_pred).__module__}")
