"""Using and writing a plugin: a new activation and a new loss, registered in-process.

``pm.register(kind, name)`` adds a class to polymlp's registry for this process; from
then on its name works wherever a built-in name does (``Dense(activation="swish")``,
``output(..., loss="huber")``, the scikit-learn estimators, saved model configs).
All math goes through ``xp``, so the plugin runs on every backend. To ship it as a
package, expose the same class under an entry point instead (in pyproject.toml):

    [project.entry-points."polymlp.activations"]
    swish = "my_package.activations:Swish"

Run:  python examples/plugin.py [--backend torch] [--quick]
"""
import argparse

import numpy

import polymlp as pm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--backend", default="numpy")
parser.add_argument("--quick", action="store_true", help="fewer epochs")
args = parser.parse_args()


@pm.register("activations", "swish")
class Swish(pm.ElementwiseActivation):
    """``z * sigmoid(z)`` (Ramachandran et al., 2017)."""

    def value(self, z, /, *, xp):
        return z / (1.0 + xp.exp(-z))

    def derivative(self, z, /, *, xp):
        s = 1.0 / (1.0 + xp.exp(-z))
        return s + z * s * (1.0 - s)


@pm.register("losses", "huber")
class Huber(pm.Loss):
    """Squared error near the target, absolute error beyond `delta`; mean over elements."""

    def __init__(self, delta=1.0):
        self.delta = delta  # stored under its own name: get_config() rebuilds the loss

    def value(self, y_hat, y, /, *, xp):
        r = xp.abs(y_hat - y)
        return xp.mean(xp.where(r <= self.delta, 0.5 * r * r, self.delta * (r - 0.5 * self.delta)))

    def gradient(self, y_hat, y, /, *, xp):
        d = y_hat - y
        n = 1
        for s in y.shape:
            n *= s
        return xp.clip(d, -self.delta, self.delta) / n


# Using the plugins: by name, exactly like the built-ins.
rng = numpy.random.default_rng(0)
x = rng.uniform(-2, 2, (512, 1))
y = numpy.sin(2 * x) + 0.05 * rng.standard_normal(x.shape)
y[::50] += 3.0  # a few outliers: what the Huber loss is for
net = pm.Network(1, backend=args.backend, seed=0)
net.stack(pm.Dense(32, activation="swish")).output(pm.Dense(1, activation=None), loss="huber")
history = net.fit(x, y, epochs=60 if args.quick else 200, batch_size=32,
                  optimizer=pm.Adam(0.01), record="epoch")
clean = numpy.sin(2 * x)
print(f"swish + huber on {args.backend}: loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f}; "
      f"R^2 against the noise-free curve {net.evaluate(x, clean)['r2']:.4f}")

# Checking a plugin: its gradient against central finite differences, in float64.
check = pm.Network(1, dtype="float64", seed=1).stack(pm.Dense(4, "swish"))
check.output(pm.Dense(1, None), loss=Huber(delta=0.5))
weights, grads = check.get_weights(), check.gradients(x[:8], y[:8])
w, eps = weights[0], 1e-6
bumped = [a.copy() for a in weights]
bumped[0][0, 0] = w[0, 0] + eps
check.set_weights(bumped)
up = check.loss(x[:8], y[:8])
bumped[0][0, 0] = w[0, 0] - eps
check.set_weights(bumped)
down = check.loss(x[:8], y[:8])
finite = (up - down) / (2 * eps)
print(f"dL/dW[0,0]: backprop {grads[0][0, 0]:.8f}, finite differences {finite:.8f}")
