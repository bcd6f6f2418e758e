"""The engine: forward, gradient and the one training step of a stack of layers.

There is one algorithm.  A step is: forward through the layers, the loss
and its gradient at the output, backward through the layers in reverse,
the flat gradient through the host phase (a data-parallel allreduce, the
network's ``grad_hook``), then the optimizer's update.  It runs in one of two
modes:

- **pure** (every backend; the only mode on JAX, array-api-strict, CuPy):
  each component's pure methods; on a backend that compiles (JAX) the step
  is compiled once with ``Backend.jit`` and replayed;
- **in place** (backends whose arrays may be written: NumPy, PyTorch): the
  same loop, but where a component declares an in-place kernel
  (:mod:`polymlp._kernels`) the engine calls it, the gradient is written
  into one preallocated flat buffer, and the parameters and optimizer state
  are private copies updated in place.  Components without kernels go
  through their pure methods, so plugins work unchanged.
"""

from __future__ import annotations

import types
import warnings

from . import _metrics
from ._kernels import kernel
from ._weights import split_weights, weight_total


class Engine:
    """Forward, gradient and step builder for `layers` with `loss` on `backend`.

    Parameters
    ----------
    layers : list of Layer
        Built layers.
    loss : Loss
    layout : ParamLayout
        Where each layer's parameters live in the flat vector.
    backend : Backend
    alpha : float, default 0.0
        The L2 penalty (``Network(alpha=...)``): the objective of a batch of
        ``n`` rows (or total sample weight ``n``) is its mean loss plus
        ``0.5 * alpha * sum(W ** 2) / n`` over the penalized parameters.
    dtype_name : str, default "float32"
    """

    def __init__(self, layers, loss, layout, backend, alpha=0.0, dtype_name="float32"):
        self.layers, self.loss, self.layout, self.backend = list(layers), loss, layout, backend
        self.xp = backend.xp
        self.alpha = alpha  # a constant of compiled steps: callers key their caches on it
        mask = layout.penalty_mask_host(dtype_name)
        self.penalty_mask = None if mask is None else backend.asarray(mask)
        self.width = self.layers[-1].output_size
        last = self.layers[-1]
        # The output layer can backpropagate from dL/dz: the loss fuses with its activation.
        self.fused = hasattr(last, "backward_delta") and hasattr(last, "activation")
        total, maximum = backend.reductions()
        self.ops = types.SimpleNamespace(sum=total, max=maximum)
        self.replan()
        self.warned_untraceable = False
        #: The training step last made, by what it was made for (see ``Trainer``):
        #: kept across fit() calls, since compiling one is not free.
        self.step_cache = {}
        self.chunk_cache = {}  # the compiled chunk of steps likewise (see make_chunk)
        self._evaluate_small = None  # (alpha, evaluation compiled), where the backend compiles
        #: Layers random in training: they declare ``draw_noise`` (see polymlp.Layer).
        self.noisy = [i for i, layer in enumerate(self.layers)
                      if getattr(layer, "draw_noise", None) is not None]

    def replan(self):
        """Look up the kernels the in-place mode calls again (per layer forward/backward,
        the fused output): done when a step is made and before each evaluation, so that
        a method replaced on an instance after building is honoured."""
        self._pure = types.SimpleNamespace(
            forward=[layer.forward for layer in self.layers],
            backward=[None] * len(self.layers), linear=None, output=None)
        self._inplace = self._plan_inplace() if self.backend.writable else self._pure

    def _plan_inplace(self):
        last = self.layers[-1]
        plan = types.SimpleNamespace(
            forward=[kernel(layer, "forward_inplace") or layer.forward for layer in self.layers],
            backward=[kernel(layer, "backward_inplace") for layer in self.layers],
            linear=kernel(last, "linear_inplace"), output=kernel(self.loss, "output_inplace"))
        fusable = (self.fused and isinstance(last.activation, self.loss.inplace_activations)
                   and plan.backward[-1] is not None)
        if not (fusable and plan.linear is not None and plan.output is not None):
            plan.linear = plan.output = None
        return plan

    @property
    def classification(self):
        return bool(self.loss.classification)

    # --- forward ---------------------------------------------------------------------

    def forward(self, params, x, *, training=False, rng=None, inplace=False, stop=None,
                noise=None):
        """``(output, caches)`` through the first `stop` layers (all by default).

        `noise` (training only) holds, per layer, what :meth:`draw_noise` drew.
        """
        return self._forward(self._inplace if inplace else self._pure, params, x, training,
                             rng, len(self.layers) if stop is None else stop, noise)

    def _forward(self, plan, params, x, training, rng, stop, noise):
        xp, caches, forward = self.xp, [], plan.forward
        for i in range(stop):
            fn = forward[i]  # the layer's kernel in place, else its forward
            if noise is not None and noise[i] is not None:
                x, cache = fn(params[i], x, xp=xp, training=training, rng=rng, noise=noise[i])
            else:
                x, cache = fn(params[i], x, xp=xp, training=training, rng=rng)
            caches.append(cache)
        return x, caches

    def draw_noise(self, rng, rows, dtype):
        """Per layer, the randomness of one training batch (on the backend), or None
        when no layer is random: drawn on the host, in layer order."""
        if not self.noisy:
            return None
        noise = [None] * len(self.layers)
        for i in self.noisy:
            host = self.layers[i].draw_noise(rng, rows)
            noise[i] = None if host is None else self.backend.asarray(host, dtype=dtype)
        return noise

    def output_terms(self, out, caches, y, want_loss):
        """Loss (or None) and ``dL/d(output)``, or ``dL/dz`` when the output layer fuses.

        `y` may carry a sample-weight column (see :mod:`polymlp._weights`)."""
        xp, last, loss = self.xp, self.layers[-1], self.loss
        y, weights = split_weights(y, self.width, xp)
        kw = {} if weights is None else {"sample_weight": weights}
        if self.fused:
            z = caches[-1][1]
            value = (loss.output_value(z, out, y, last.activation, xp=xp, **kw)
                     if want_loss else None)
            return value, loss.output_delta(z, out, y, last.activation, xp=xp, **kw), True
        if weights is not None:  # the generic path: dL/dy_hat row by row, then its VJP
            raise TypeError(f"`sample_weight` needs an output layer with an activation "
                            f"(such as Dense); {type(last).__name__} has none.")
        value = loss.value(out, y, xp=xp) if want_loss else None
        return value, loss.gradient(out, y, xp=xp), False

    def penalty(self, theta, rows):
        """``(value, flat gradient)`` of the L2 penalty over `rows` rows (or total sample
        weight), or None when there is none: the one place it is computed."""
        if not self.alpha or self.penalty_mask is None:
            return None
        w = theta * self.penalty_mask
        return (0.5 * self.alpha / rows) * self.xp.sum(w * w), (self.alpha / rows) * w

    def penalty_rows(self, x, y, rows=None):
        """What the penalty is divided by: `rows` when given (a data-parallel step's
        global batch), else the batch's total sample weight, else its rows."""
        if rows is not None:
            return rows
        total = weight_total(y, self.width, self.xp)
        return x.shape[0] if total is None else total

    def _loss_terms(self, plan, params, x, y, want_loss, training, rng, noise):
        """``(output, caches, loss, grad, is_delta)`` of one batch's data term, with the
        kernels of `plan` (in place) or none (pure). The penalty's value and gradient
        are added by the callers (:meth:`gradient`, :class:`InPlaceStep`).
        """
        weighted = y.shape[1] != self.width  # the fused in-place kernel takes no weights
        if plan.output is not None and not weighted:  # the loss fused with the output activation
            h, caches = self._forward(plan, params, x, training, rng, len(self.layers) - 1,
                                      noise)
            z = plan.linear(params[-1], h, xp=self.xp)
            loss, out, delta = plan.output(z, y, self.layers[-1].activation, xp=self.xp,
                                           ops=self.ops, want_loss=want_loss)
            caches.append((h, None, None))
            return out, caches, loss, delta, True
        out, caches = self._forward(plan, params, x, training, rng, len(self.layers), noise)
        loss, grad, is_delta = self.output_terms(out, caches, y, want_loss)
        return out, caches, loss, grad, is_delta

    # --- backward --------------------------------------------------------------------

    def backward(self, params, caches, grad, is_delta, grad_views=None):
        """Per-layer parameter gradients; written into `grad_views` when given (in place)."""
        xp, plan = self.xp, self._pure if grad_views is None else self._inplace
        grads = [None] * len(self.layers)
        owned = True  # whether `grad` is an array this step made (safe to overwrite)
        for i in range(len(self.layers) - 1, -1, -1):
            layer, need = self.layers[i], i > 0  # nobody needs dL/d(inputs)
            fn = plan.backward[i]
            if fn is not None:
                grad = fn(params[i], caches[i], grad, grad_views[i], xp=xp, ops=self.ops,
                          need_input_grad=need, is_delta=is_delta, owned=owned)
                owned = True
            else:
                method = layer.backward_delta if is_delta else layer.backward
                grad, values = method(params[i], caches[i], grad, xp=xp, need_input_grad=need)
                if grad_views is None:
                    grads[i] = values
                else:
                    for view, value in zip(grad_views[i], values):
                        view[...] = value
                owned = False
            is_delta = False
        return grads

    def gradient(self, theta, x, y, *, want_loss=False, training=True, rng=None, noise=None,
                 rows=None):
        """``(flat gradient, loss or None, output)`` of the batch objective (pure): the
        mean loss plus the L2 penalty (over `rows`, see :meth:`penalty_rows`)."""
        xp = self.xp
        params = self.layout.views(theta, xp)
        out, caches, loss, grad, is_delta = self._loss_terms(
            self._pure, params, x, y, want_loss, training, rng, noise)
        grads = self.backward(params, caches, grad, is_delta)
        flat = [xp.reshape(g, (-1,)) for gs in grads for g in gs]
        flat = xp.concat(flat) if flat else xp.zeros_like(theta)
        penalty = self.penalty(theta, self.penalty_rows(x, y, rows))
        if penalty is not None:
            flat = flat + penalty[1]
            if loss is not None:
                loss = loss + penalty[0]
        return flat, loss, out

    def metric(self, out, y, y_var=None):
        """Batch accuracy (classifiers) or R^2 (regressors, against `y_var` if given);
        sample weights do not weigh it."""
        y = split_weights(y, self.width, self.xp)[0]
        return _metrics.metric(out, y, xp=self.xp, classification=self.classification,
                               y_var=y_var)

    # --- evaluation ------------------------------------------------------------------

    def predict(self, theta, x, chunk):
        """Outputs for `x`, `chunk` rows per forward pass (in place where allowed)."""
        self.replan()
        params, n = self.layout.views(theta, self.xp), x.shape[0]
        if n <= chunk:
            return self._infer(params, x)[0]
        outs = [self._infer(params, x[s:min(s + chunk, n), ...])[0] for s in range(0, n, chunk)]
        return self.xp.concat(outs, axis=0)

    def _infer(self, params, x):
        return self.forward(params, x, inplace=self.backend.writable)

    def evaluate(self, theta, x, y, chunk):
        """Mean loss (plus the L2 penalty over the set's rows) and metric (0-d arrays)
        over a whole set, `chunk` rows at a time."""
        n = x.shape[0]
        if n <= chunk:
            if self.backend.compiles:  # one compiled call (validation runs it often)
                if self._evaluate_small is None or self._evaluate_small[0] != self.alpha:
                    self._evaluate_small = (self.alpha, self.backend.jit(self._evaluate_one))
                return self._evaluate_small[1](theta, x, y)
            self.replan()
            return self._evaluate_one(theta, x, y)
        self.replan()
        params = self.layout.views(theta, self.xp)
        total, outs = 0.0, []
        for s in range(0, n, chunk):
            e = min(s + chunk, n)  # the standard leaves out-of-bounds stops undefined
            xb, yb = x[s:e, ...], y[s:e, ...]
            out, caches = self._infer(params, xb)
            total = total + self.output_terms(out, caches, yb, True)[0] * xb.shape[0]
            outs.append(out)
        loss = self._penalized(theta, x, y, total / n)
        return loss, self.metric(self.xp.concat(outs, axis=0), y)

    def _evaluate_one(self, theta, x, y):
        out, caches = self._infer(self.layout.views(theta, self.xp), x)
        loss = self.output_terms(out, caches, y, True)[0]
        return self._penalized(theta, x, y, loss), self.metric(out, y)

    def _penalized(self, theta, x, y, loss):
        penalty = self.penalty(theta, self.penalty_rows(x, y))
        return loss if penalty is None else loss + penalty[0]

    # --- the step --------------------------------------------------------------------

    def make_step(self, optimizer, *, want_loss, y_var=None, rng=None, hook=None,
                  reducer=None, inplace=None):
        """The training step ``step(theta, state, x, y, weight=None) -> (theta, state, loss, metric)``.

        Parameters
        ----------
        optimizer : Optimizer
        want_loss : bool
            Compute the batch loss and metric (0-d arrays); else both are None.
        y_var : array, optional
            The training targets' variance (a regressor's batch R^2 is against it).
        rng : numpy.random.Generator
            Passed to layers in training (host randomness: eager steps only).
        hook, reducer : callable, optional
            ``grad -> grad`` run on the host between gradient and update:
            `reducer` first (a data-parallel allreduce), then `hook` (``grad_hook``).
        inplace : bool, optional
            Defaults to ``Backend.writable``. An in-place step trains private
            copies of the parameters and state: see :class:`InPlaceStep`.

        `weight` scales the batch's gradient, loss and metric (a data-parallel
        rank's share of the global batch); a batch of no rows contributes zeros.
        """
        inplace = self.backend.writable if inplace is None else inplace
        self.replan()
        if inplace:
            return InPlaceStep(self, optimizer, want_loss, y_var, rng, hook, reducer).step
        return _pure_step(self, optimizer, want_loss, y_var, rng, hook, reducer)


def make_chunk(engine, optimizer, *, want_loss, y_var, batch_size, slots):
    """Many steps in one compiled call, where the backend compiles (``lax.scan`` on JAX).

    ``chunk(theta, state, X, Y, starts, active, noise) -> (theta, state, losses, metrics)``
    runs the step on the batches ``X[starts[i]:starts[i] + batch_size]`` (full
    batches) for every slot ``i`` of the `slots`, skipping the slots where
    `active` is false (so chunks of any length up to `slots` share one
    compilation); losses and metrics come back stacked, one per slot (None
    unless `want_loss`); `noise` holds, per layer, each slot's draw stacked (see
    :meth:`Engine.draw_noise`). `theta` and `state` are donated where the device allows.
    """
    xp, backend = engine.xp, engine.backend
    step = _pure_step(engine, optimizer, want_loss, y_var, _TracingRng(), None, None).eager

    def chunk(theta, state, X, Y, starts, active, noise):
        def body(carry, slot):
            theta, state = carry
            start, on, slot_noise = slot
            new_theta, new_state, loss, metric = step(
                theta, state, backend.rows_at(X, start, batch_size),
                backend.rows_at(Y, start, batch_size), None, slot_noise)
            # An inactive slot keeps the carry (a select: the step still runs).
            theta = xp.where(on, new_theta, theta)
            state = {k: xp.where(on, v, state[k]) for k, v in new_state.items()}
            return (theta, state), (loss, metric)

        (theta, state), (losses, metrics) = backend.scan(body, (theta, state),
                                                         (starts, active, noise))
        return theta, state, losses, metrics

    compiled = backend.jit(chunk, donate=(0, 1))

    def run(theta, state, X, Y, starts, active, noise=None):
        return compiled(theta, state, X, Y, starts, active, noise)

    run.compiled, run.ran = compiled, False
    return run


def compose(gradient, update, host, xp):
    """The one step: gradient, then the host phase (if any), then the update.

    ``step(theta, state, x, y, weight=None, noise=None, rows=None)``: `rows` is
    the global batch's row count of a data-parallel shard (the L2 penalty's
    divisor; the shard's `weight` then counts it once over the ranks)."""
    def step(theta, state, x, y, weight=None, noise=None, rows=None):
        if x.shape[0] == 0:  # an empty data-parallel shard: adds nothing to the sum
            grad, loss, metric = gradient(theta, None, None, None, None)
        else:
            grad, loss, metric = gradient(theta, x, y, noise, rows)
            if weight is not None:
                grad = grad * weight
                if loss is not None:
                    loss, metric = loss * weight, metric * weight
        if host is not None:
            grad = host(grad)
        theta, state = update(theta, grad, state)
        return theta, state, loss, metric
    return step


def _host_phase(reducer, hook):
    if reducer is None or hook is None:
        return reducer or hook
    return lambda grad: hook(reducer(grad))


def _empty(engine, theta, want_loss):
    xp = engine.xp
    zero = xp.zeros_like(theta[0]) if want_loss else None
    return xp.zeros_like(theta), zero, zero


class _TracingRng:
    """Stands in for the host generator while a step is traced: using it means the
    layer draws host randomness, which a compiled step would freeze."""

    def __getattr__(self, name):
        raise _Untraceable(f"draws from the host generator (rng.{name})")


class _Untraceable(Exception):
    pass


def _pure_step(engine, opt, want_loss, y_var, rng, hook, reducer):
    xp, backend = engine.xp, engine.backend

    def gradient_with(layer_rng):
        def gradient(theta, x, y, noise, rows):
            if x is None:
                return _empty(engine, theta, want_loss)
            grad, loss, out = engine.gradient(theta, x, y, want_loss=want_loss, rng=layer_rng,
                                              noise=noise, rows=rows)
            return grad, loss, (engine.metric(out, y, y_var) if want_loss else None)
        return gradient

    def update(theta, grad, state):
        return opt.update(theta, grad, state, xp=xp)

    host = _host_phase(reducer, hook)
    eager = compose(gradient_with(rng), update, host, xp)
    eager.eager = eager
    if not backend.compiles:
        return eager
    gradient = gradient_with(_TracingRng())
    if host is None:
        compiled = backend.jit(compose(gradient, update, None, xp))
    else:  # the host phase runs eagerly between the compiled halves
        compiled = compose(backend.jit(gradient), backend.jit(update), host, xp)
    return _FirstTraceFallback(engine, compiled, eager)


class _FirstTraceFallback:
    """A compiled step that falls back to the eager one if its first trace fails.

    A layer that calls host code (draws from ``rng``, converts an array to a
    Python number) cannot be traced; it is named in one warning and the step
    runs eagerly from then on. The eager step raises any genuine error again.
    """

    def __init__(self, engine, compiled, eager):
        self.engine, self.compiled, self.eager, self.traced = engine, compiled, eager, False
        self.traceable = True  # until a trace fails
    def __call__(self, theta, state, x, y, weight=None, noise=None, rows=None):
        if self.traced:
            return self.compiled(theta, state, x, y, weight, noise, rows)
        try:
            out = self.compiled(theta, state, x, y, weight, noise, rows)
        except Exception as exc:  # noqa: BLE001 - any trace failure: run eagerly instead
            self.untraceable(exc)
            out = self.eager(theta, state, x, y, weight, noise, rows)
        self.traced = True
        return out

    def untraceable(self, exc):
        """Tracing failed with `exc`: warn (once per network), run eagerly from now on."""
        self.compiled, self.traceable, self.traced = self.eager, False, True
        self._warn(exc)

    def _warn(self, exc):
        engine = self.engine
        if engine.warned_untraceable:
            return
        engine.warned_untraceable = True
        names = ", ".join(f"{i} ({type(layer).__name__})" for i, layer in
                          enumerate(engine.layers) if not _is_traceable(engine, i))
        what = f"layer {names}" if names else "a component"
        warnings.warn(f"The training step cannot be compiled on backend "
                      f"{engine.backend.name!r}: {what} cannot be traced "
                      f"({type(exc).__name__}: {exc}). Training runs eagerly (slower).",
                      RuntimeWarning, stacklevel=5)


def _is_traceable(engine, index):
    """Whether layer `index`'s training forward traces (checked only after a failure)."""
    xp, layer = engine.xp, engine.layers[index]
    params = [s for s in engine.layout.per_layer[index]]
    width = layer.input_size or 1
    dtype = xp.float32

    def probe(p, x):
        return layer.forward(p, x, xp=xp, training=True, rng=_TracingRng())[0]

    try:
        engine.backend.jit(probe)(tuple(xp.zeros(s.shape, dtype=dtype) for s in params),
                                  xp.zeros((2, width), dtype=dtype))
    except Exception:  # noqa: BLE001 - this layer is the one that cannot be traced
        return False
    return True


class InPlaceStep:
    """The step in place: private parameter/state copies, one gradient buffer, kernels.

    :attr:`step` is the step function (called as the pure step, with the
    `theta` and `state` it returned: its own buffers); ``step.bind`` is
    :meth:`bind` and ``step.owner`` this object.
    """

    def __init__(self, engine, opt, want_loss, y_var, rng, hook, reducer):
        self.engine, self.opt, self.want_loss, self.y_var, self.rng = (
            engine, opt, want_loss, y_var, rng)
        self.theta = self.state = None
        self.update_inplace = kernel(opt, "update_inplace")
        self.step = compose(self._gradient, self._update, _host_phase(reducer, hook), engine.xp)
        self.step.bind, self.step.owner = self.bind, self

    def bind(self, theta, state):
        """Own copies of `theta` and `state` (reused while they are the ones given back)."""
        xp = self.engine.xp
        if theta is not self.theta:
            if self.theta is None or self.theta.shape != theta.shape:
                self.theta = xp.asarray(theta, copy=True)
                self.grad = xp.zeros_like(self.theta)
                self.work = xp.empty_like(self.theta)
                self.params = self.engine.layout.views(self.theta, xp)
                self.grads = self.engine.layout.views(self.grad, xp)
            else:
                self.theta[...] = theta
        if state is not self.state:
            self.state = {k: (xp.asarray(v, copy=True) if hasattr(v, "shape") and v.ndim > 0
                              else v) for k, v in state.items()}
        return self.theta, self.state

    def _gradient(self, theta, x, y, noise, rows):
        engine = self.engine
        if x is None:
            return _empty(engine, theta, self.want_loss)
        out, caches, loss, grad, is_delta = engine._loss_terms(
            engine._inplace, self.params, x, y, self.want_loss, True, self.rng, noise)
        metric = engine.metric(out, y, self.y_var) if self.want_loss else None
        engine.backward(self.params, caches, grad, is_delta, self.grads)
        if engine.alpha and engine.penalty_mask is not None:
            loss = self._add_penalty(theta, engine.penalty_rows(x, y, rows), loss)
        return self.grad, loss, metric

    def _add_penalty(self, theta, rows, loss):
        """:meth:`Engine.penalty` written into the gradient buffer (`work` as scratch:
        the update overwrites it next), its value added to `loss`."""
        xp, engine, work = self.engine.xp, self.engine, self.work
        scale = engine.alpha / rows
        xp.multiply(theta, engine.penalty_mask, out=work)
        if loss is not None:
            loss = loss + (0.5 * scale) * xp.sum(work * work)
        work *= scale
        self.grad += work
        return loss

    def _update(self, theta, grad, state):
        xp = self.engine.xp
        if self.update_inplace is not None:
            state = self.update_inplace(theta, grad, state, xp=xp, work=self.work)
        else:
            new, state = self.opt.update(theta, grad, state, xp=xp)
            theta[...] = new
        self.state = state
        return theta, state
