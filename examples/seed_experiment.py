"""The seed experiment in 20 lines: a 14-100-40-4 ReLU network on the hypercube data.

Run:  python examples/seed_experiment.py [--backend torch] [--quick]
"""
import argparse

import polymlp as pm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--backend", default="numpy", help="numpy, torch, jax, cupy, ...")
parser.add_argument("--quick", action="store_true", help="one epoch instead of ten")
args = parser.parse_args()

x_train, y_train, x_test, y_test = pm.datasets.hypercube()  # NumPy arrays, no download
net = pm.Network(input_size=14, name="14-100-40-4", backend=args.backend, seed=0)
net.stack(pm.Dense(100, activation="relu")).stack(pm.Dense(40, activation="relu"))
net.output(pm.Dense(4, activation="softmax"), loss="cross_entropy")
history = net.fit(x_train, y_train, epochs=1 if args.quick else 10, batch_size=32,
                  optimizer=pm.Adam(learning_rate=0.002), validation_data=(x_test, y_test))
y_pred, y_hat, accuracy = net.test(x_test, y_test)  # labels, probabilities, accuracy
print(f"{net.name} on {args.backend}: test accuracy {accuracy:.4f} after "
      f"{net.epochs_done} epoch(s) ({len(history)} iterations); the blog reported 0.9774")
