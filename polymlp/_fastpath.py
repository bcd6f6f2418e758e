"""The in-place training step for backends whose arrays can be written (NumPy, PyTorch).

It computes what :meth:`Network._grad` followed by ``Optimizer.update``
computes, in the same order of operations, but writes instead of allocating:
the gradient goes straight into one preallocated flat buffer (each layer's
``dW`` and ``db`` are views of it, written with ``out=``), ReLU runs in place,
softmax + cross-entropy is fused in place, and the optimizer updates the
parameters and its state in place when it offers ``update_inplace``.  It is an
optimisation only: :func:`make_step` returns ``None`` (and the network uses
the pure path) unless ``Backend.writable`` says in-place writes are safe.
Layers, activations and optimizers without a fast kernel here go through
their pure methods, so plugins keep working on this path.

The step never writes into arrays it does not own: it trains a private copy
of the parameters and optimizer state, made once per ``fit`` (the network
holds that copy from then on, so it shows the last completed step even if
training stops half-way through an epoch).
"""

from __future__ import annotations

from .activations import Identity, ReLU, Softmax
from .layers import Dense
from .losses import CrossEntropy

_RELU, _IDENTITY, _OTHER = 0, 1, 2


def make_step(net, want_loss, y_var=None):
    """``(step, theta, state)`` for the in-place path, or ``None`` where it does not apply.

    `step(theta, state, x, y)` returns ``(theta, state, loss, metric)`` like the
    pure step built by ``Network._make_step``; `theta` and `state` are the
    private copies it updates in place (pass them back each call).
    """
    if not net.backend.writable or getattr(net, "_sample_weighted", False):
        return None  # weighted fits (a weight column in y) take the pure step
    return _FlatStep(net, want_loss, y_var).bind()


def _is_plain_dense(layer):
    # Subclasses that override the math keep their own (pure) methods.
    cls = type(layer)
    return (isinstance(layer, Dense) and cls.forward is Dense.forward
            and cls.backward is Dense.backward and cls.backward_delta is Dense.backward_delta)


def _activation_kind(activation):
    if type(activation) is ReLU:
        return _RELU
    if type(activation) is Identity:
        return _IDENTITY
    return _OTHER


def _owner(cls, attribute):
    """The class in `cls`'s MRO that defines `attribute` (None if none does)."""
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return klass
    return None


def has_inplace_update(optimizer):
    """Whether `optimizer.update_inplace` implements the same rule as its ``update``.

    A subclass that overrides ``update`` but inherits ``update_inplace`` would
    silently train with its parent's rule, so it gets the pure update instead.
    """
    cls = type(optimizer)
    owner = _owner(cls, "update_inplace")
    return owner is not None and owner is _owner(cls, "update") and getattr(
        owner, "update_inplace", None) is not None


class _FlatStep:
    """Preallocated buffers and the per-layer plan of one ``fit`` call."""

    def __init__(self, net, want_loss, y_var=None):
        xp = net.xp
        self.net, self.xp, self.want_loss, self.y_var = net, xp, want_loss, y_var
        self.theta = xp.asarray(net.theta, copy=True)
        self.state = {k: (xp.asarray(v, copy=True) if hasattr(v, "shape") and v.ndim > 0 else v)
                      for k, v in net.opt_state.items()}
        # The network holds the working copies from now on, so the originals can be freed
        # before the buffers below exist (peak memory).
        net.theta, net.opt_state = self.theta, self.state
        self.grad = xp.zeros_like(self.theta)
        self.work = xp.empty_like(self.theta)
        params, grads = net._unpack(self.theta), net._unpack(self.grad)
        self.plan = []
        for layer, p, g in zip(net.layers, params, grads):
            dense = _is_plain_dense(layer)
            kind = _activation_kind(layer.activation) if dense else _OTHER
            self.plan.append((dense, kind, layer, p, g))
        last = net.layers[-1]
        self.softmax_ce = (_is_plain_dense(last) and type(last.activation) is Softmax
                           and type(net.loss_fn) is CrossEntropy)
        self.inplace_update = has_inplace_update(net.optimizer)
        self.sum, self.max = net.backend.reductions()
        self.hidden = self.plan[:-1]
        self.backward_plan = list(enumerate(self.plan))[::-1]

    def bind(self):
        return self.step, self.theta, self.state

    # --- forward ---------------------------------------------------------------------

    def _forward(self, x):
        """Caches of every layer but the last, and the last layer's input."""
        xp, rng, maximum = self.xp, self.net.rng, self.xp.maximum
        caches = []
        for dense, kind, layer, p, _ in self.hidden:
            if dense:
                z = x @ p[0]
                z += p[1]
                if kind == _RELU:
                    maximum(z, 0, out=z)  # z now holds the activation; ReLU' needs only a > 0
                    caches.append((x, z, z))
                    x = z
                elif kind == _IDENTITY:
                    caches.append((x, z, z))
                    x = z
                else:
                    a = layer.activation.forward(z, xp=xp)
                    caches.append((x, z, a))
                    x = a
            else:
                x, cache = layer.forward(p, x, xp=xp, training=True, rng=rng)
                caches.append(cache)
        return caches, x

    def _output(self, x, y, caches):
        """Forward through the last layer; ``(loss, metric, delta_or_grad, is_delta)``.

        Appends the last layer's cache to `caches`.
        """
        xp, net, want_loss = self.xp, self.net, self.want_loss
        dense, _, layer, p, _ = self.plan[-1]
        n = y.shape[0]
        loss = metric = None
        if self.softmax_ce:
            z = x @ p[0]
            z += p[1]
            z -= self.max(z, axis=-1, keepdims=True)  # the shifted logits of log_softmax
            if want_loss:
                e = xp.exp(z)
                s = self.sum(e, axis=-1, keepdims=True)
                loss = -xp.sum(y * (z - xp.log(s))) / n
                e /= s
                metric = net._metric(e, y, self.y_var)
                delta = e - y
            else:
                e = xp.exp(z, out=z)
                e /= self.sum(e, axis=-1, keepdims=True)
                e -= y
                delta = e
            delta /= n  # the fused gradient (y_hat - y) / n
            caches.append((x, None, None))
            return loss, metric, delta, True
        if dense:
            z = x @ p[0]
            z += p[1]
            out = layer.activation.forward(z, xp=xp)
            caches.append((x, z, out))
        else:
            out, cache = layer.forward(p, x, xp=xp, training=True, rng=net.rng)
            caches.append(cache)
        loss, grad, is_delta = net._output_terms(out, caches, y, want_loss)
        if want_loss:
            metric = net._metric(out, y, self.y_var)
        return loss, metric, grad, is_delta

    # --- backward and update ---------------------------------------------------------

    def _backward(self, caches, grad, is_delta):
        """Write the flat gradient into ``self.grad``; `grad` is dL/d(output) or dL/dz."""
        xp = self.xp
        matmul, total = xp.matmul, self.sum
        owned = True  # whether `grad` is an array this step made (safe to scale in place)
        for i, (dense, kind, layer, p, g) in self.backward_plan:
            cache = caches[i]
            if dense:
                if is_delta:
                    delta, is_delta = grad, False
                elif kind == _RELU and owned:
                    grad *= cache[2] > 0
                    delta = grad
                elif kind == _IDENTITY:
                    delta = grad
                else:
                    delta = layer.activation.backward(cache[1], cache[2], grad, xp=xp)
                matmul(cache[0].T, delta, out=g[0])
                total(delta, axis=0, out=g[1])
                if i:
                    grad = delta @ p[0].T
                    owned = True
            else:
                method = layer.backward_delta if is_delta else layer.backward
                grad, values = method(p, cache, grad, xp=xp, need_input_grad=i > 0)
                is_delta, owned = False, False
                for view, value in zip(g, values):
                    view[...] = value

    def step(self, theta, state, x, y):
        caches, last_input = self._forward(x)
        loss, metric, grad, is_delta = self._output(last_input, y, caches)
        self._backward(caches, grad, is_delta)
        net = self.net
        penalty = net._penalty(theta, y.shape[0])  # the L2 term (Network(alpha=...)), or None
        if penalty is not None:
            self.grad += penalty[1]
            if loss is not None:
                loss = loss + penalty[0]
        g = self.grad if net.grad_hook is None else net.grad_hook(self.grad)
        opt, xp = net.optimizer, self.xp
        if self.inplace_update:
            state = opt.update_inplace(theta, g, state, xp=xp, work=self.work)
        else:
            new, state = opt.update(theta, g, state, xp=xp)
            theta[...] = new
        return theta, state, loss, metric


def deterministic_layers(layers):
    """Whether every layer is a plain :class:`Dense` (no host randomness in training).

    Only such steps may be traced once and replayed by a compiler such as
    ``jax.jit``: a layer that draws from the host generator during training
    would have its draw frozen into the compiled function.
    """
    return all(_is_plain_dense(layer) for layer in layers)


def infer(net, params, x):
    """``Network._forward`` for evaluation, in place: ``(output, caches)``.

    Only the last layer's cache is filled (the loss needs its pre-activations);
    the others are ``None``. Each plain ``Dense`` layer allocates one array.
    """
    xp, maximum = net.xp, net.xp.maximum
    caches = [None] * len(net.layers)
    last = len(net.layers) - 1
    for i, (layer, p) in enumerate(zip(net.layers, params)):
        if not _is_plain_dense(layer):
            x, caches[i] = layer.forward(p, x, xp=xp, training=False, rng=net.rng)
            continue
        z = x @ p[0]
        z += p[1]
        kind = _activation_kind(layer.activation)
        if i == last or kind == _OTHER:
            a = layer.activation.forward(z, xp=xp)
        elif kind == _RELU:
            a = maximum(z, 0, out=z)
        else:
            a = z
        if i == last:
            caches[i] = (x, z, a)
        x = a
    return x, caches
