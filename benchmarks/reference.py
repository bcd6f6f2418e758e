"""The floor: a hand-written NumPy training loop for a ReLU MLP with softmax output.

Written for speed, not generality: every weight, bias and gradient is a view
of one flat float32 buffer, so Adam is a fixed handful of in-place passes per
step whatever the depth; the backward pass writes into those views with
``out=``; the softmax + cross-entropy gradient is fused into ``(p - y) / n``;
no input gradient is computed for the first layer and no loss per batch.
"""

import math

import numpy as np

import workloads as wl


class ReferenceMLP:
    """ReLU hidden layers, softmax output, Adam on one flat buffer."""

    def __init__(self, sizes, weights):
        shapes = [s for fi, fo in zip(sizes[:-1], sizes[1:]) for s in ((fi, fo), (fo,))]
        total = sum(math.prod(s) for s in shapes)
        self.theta = np.empty(total, np.float32)
        self.grad = np.zeros(total, np.float32)
        self.m = np.zeros(total, np.float32)   # first moment / (1 - beta1)
        self.v = np.zeros(total, np.float32)   # second moment / (1 - beta2)
        self.tmp = np.empty(total, np.float32)
        params, grads, at = [], [], 0
        for s in shapes:
            k = math.prod(s)
            params.append(self.theta[at:at + k].reshape(s))
            grads.append(self.grad[at:at + k].reshape(s))
            at += k
        for view, w in zip(params, weights):
            view[...] = w
        self.W, self.b = params[0::2], params[1::2]
        self.dW, self.db = grads[0::2], grads[1::2]
        self.t = 0

    def forward(self, x):
        """Logits and the inputs of every layer (post-ReLU activations)."""
        inputs = [x]
        for W, b in zip(self.W[:-1], self.b[:-1]):
            x = x @ W
            x += b
            np.maximum(x, 0, out=x)
            inputs.append(x)
        z = x @ self.W[-1]
        z += self.b[-1]
        return z, inputs

    def gradient(self, x, y1h):
        z, inputs = self.forward(x)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z -= y1h
        z *= np.float32(1.0 / x.shape[0])
        delta = z
        for i in range(len(self.W) - 1, -1, -1):
            a = inputs[i]
            np.matmul(a.T, delta, out=self.dW[i])
            np.sum(delta, axis=0, out=self.db[i])
            if i:
                delta = delta @ self.W[i].T
                delta *= a > 0

    def adam(self):
        self.t += 1
        b1, b2 = wl.BETA1, wl.BETA2
        # m and v hold the moments divided by (1 - beta), so the updates are
        # m = b m + g and v = b v + g^2; the factors are folded into the scalars.
        scale_v = math.sqrt((1.0 - b2) / (1.0 - b2 ** self.t))
        scale_m = -wl.LR * (1.0 - b1) / (1.0 - b1 ** self.t)
        m, v, g, tmp = self.m, self.v, self.grad, self.tmp
        m *= b1
        m += g
        v *= b2
        np.multiply(g, g, out=tmp)
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= scale_v
        tmp += wl.EPS
        np.divide(m, tmp, out=tmp)
        tmp *= scale_m
        self.theta += tmp

    def fit(self, x, y1h, batch, epochs, rng):
        n = x.shape[0]
        for _ in range(epochs):
            perm = rng.permutation(n)
            xs = ys = None  # free last epoch's copy before making the next
            xs, ys = x[perm], y1h[perm]
            for s in range(0, n, batch):
                self.gradient(xs[s:s + batch], ys[s:s + batch])
                self.adam()

    def predict_proba(self, x, chunk=8192):
        out = []
        for s in range(0, x.shape[0], chunk):
            z, _ = self.forward(x[s:s + chunk])
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            out.append(z)
        return np.concatenate(out)
