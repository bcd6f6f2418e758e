"""The network: a stack of layers trained by backpropagation.

All parameters live in one flat vector on the backend; each layer sees its
weights as reshaped slices of it (views on NumPy), so an optimizer step is
one pass over one array whatever the depth.  The forward pass caches each
layer's input, pre-activations and activations; the backward pass runs the
delta recurrence from the loss's gradient at the output pre-activations.
"""

from __future__ import annotations

import math
from math import nan

import numpy

from . import _divergence, _fastpath, _validate, data, registry
from . import callbacks as _callbacks
from . import distributed as _distributed
from ._array_api import resolve_backend, to_numpy
from .errors import NotBuiltError
from .history import History

_RECORD = ("iteration", "epoch", None)
_EVAL_CHUNK = 8192  # rows per forward pass when predicting (bounds activation memory)


class Network:
    """A multilayer perceptron.

    Parameters
    ----------
    input_size : int
        Number of input features.
    name : str, optional
        Used in summaries, progress and file names.
    backend : str or namespace, default "numpy"
        Array library: ``"numpy"``, ``"array_api_strict"``, ``"torch"``,
        ``"jax"``, ``"cupy"``, a plugin name, or an Array API namespace.
    device : str or device, optional
        Device on that backend; its default device when omitted.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Seeds the host ``numpy.random.Generator`` behind every random draw
        (initial weights, shuffling), so a seed gives the same run on every backend.
    alpha : float, default 0.0
        L2 penalty (weight decay) on the parameters whose ``ParamSpec`` is
        regularized (``Dense.W``, not ``Dense.b``), as scikit-learn's MLP: the
        objective of a batch of ``n`` rows is its mean loss plus
        ``0.5 * alpha * sum(W ** 2) / n``. Part of every reported loss
        (training history, :meth:`loss`, :meth:`evaluate`, :meth:`gradients`).

    Examples
    --------
    >>> import polymlp as pm
    >>> net = pm.Network(2, seed=0).stack(pm.Dense(8, "relu")).output(pm.Dense(2, "softmax"),
    ...                                                            loss="cross_entropy")
    >>> net.predict([[0.0, 1.0]]).shape
    (1,)
    """

    def __init__(self, input_size, *, name=None, backend="numpy", device=None,
                 dtype="float32", seed=None, alpha=0.0):
        self.input_size = _validate.positive_int("input_size", input_size)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string or None; got {name!r} of type "
                            f"{type(name).__name__}.")
        self.name = name if name is not None else "network"
        dtype = _validate.dtype_name(dtype)
        seed = _validate.seed(seed)
        self.backend = resolve_backend(backend, device)
        self.dtype_name = dtype
        self.dtype = self.backend.dtype(dtype)
        self.seed = seed
        self.rng = data.host_rng(seed)
        self.alpha = alpha
        self._penalty_mask = None  # 1 where the L2 penalty applies, set with the weights
        self.layers = []
        self.loss_fn = None
        self.optimizer = None
        self.opt_state = None
        self.theta = None
        self._layout = []  # per layer: [(offset, size, shape), ...]
        self.iterations = 0
        self.epochs_done = 0
        self.stop_training = False  # set by a callback to end fit() early
        #: Optional ``callable(flat_grad) -> flat_grad`` applied to every training
        #: gradient before the optimizer update (e.g. gradient clipping).
        self.grad_hook = None
        self._compiled = {}  # the pure training step, by (want_loss, optimizer, grad_hook)

    # --- building ------------------------------------------------------------------

    @property
    def xp(self):
        return self.backend.xp

    @property
    def alpha(self):
        """L2 penalty strength (see the class docstring); settable between fits."""
        return self._alpha

    @alpha.setter
    def alpha(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float, numpy.number)):
            raise TypeError(f"`alpha` must be a number >= 0 (the L2 penalty); got {value!r} of "
                            f"type {type(value).__name__}. Pass e.g. alpha=1e-4, or 0 for none.")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"`alpha` must be a finite number >= 0 (the L2 penalty); got "
                             f"{value!r}. Pass e.g. alpha=1e-4, or 0 for none.")
        self._alpha = float(value)

    @property
    def device(self):
        return self.backend.device

    @property
    def built(self):
        return self.loss_fn is not None

    def stack(self, layer):
        """Append a hidden layer (an instance or a registered layer name); returns self."""
        if self.built:
            raise NotBuiltError(
                f"Network {self.name!r} already has its output layer; stack() must come "
                f"before output(). Build a new network to change the architecture.")
        layer = registry.get_layer(layer)
        if any(layer is other for other in self.layers):
            raise ValueError(f"This {type(layer).__name__} instance is already layer "
                             f"{[i for i, o in enumerate(self.layers) if o is layer][0]} of "
                             f"network {self.name!r}; a layer instance holds its own shapes, "
                             f"so create a new one for each position, e.g. {layer!r}.")
        width = self.layers[-1].output_size if self.layers else self.input_size
        out = layer.build(width)
        layer._output_size = out
        self.layers.append(layer)
        return self

    def output(self, layer, loss="cross_entropy"):
        """Append the output layer with its `loss`, and initialise every weight; returns self."""
        if self.built:
            raise NotBuiltError(f"Network {self.name!r} already has an output layer.")
        loss_fn = registry.get_loss(loss)
        self.stack(layer)
        self.loss_fn = loss_fn
        self._init_parameters()
        return self

    def _init_parameters(self):
        host, offset = [], 0
        self._layout = []
        mask = []
        for layer in self.layers:
            slots = []
            for spec in layer.parameter_specs():
                mask.append(numpy.full(math.prod(spec.shape), float(spec.penalized)))
                fan_in = spec.shape[0] if spec.shape else 1
                fan_out = spec.shape[1] if len(spec.shape) > 1 else spec.shape[0] if spec.shape else 1
                host.append(spec.initializer(spec.shape, rng=self.rng, fan_in=fan_in,
                                             fan_out=fan_out))
                size = math.prod(spec.shape)
                slots.append((offset, size, tuple(spec.shape)))
                offset += size
            self._layout.append(slots)
        self.theta = self.backend.asarray(data.flat_host(host, self.dtype_name))
        flat_mask = data.flat_host(mask, self.dtype_name)
        self._penalty_mask = self.backend.asarray(flat_mask) if flat_mask.any() else None

    def _penalty(self, theta, n_rows):
        """``(value, flat_grad)`` of ``0.5 * alpha * sum(W ** 2) / n_rows``, or None.

        The one place the L2 penalty is computed: the pure step, the in-place
        step (:mod:`polymlp._fastpath`), evaluation and full-batch objectives use it.
        """
        if not self._alpha or self._penalty_mask is None:
            return None
        w = theta * self._penalty_mask
        return (0.5 * self._alpha / n_rows) * self.xp.sum(w * w), (self._alpha / n_rows) * w

    def _require_built(self, what):
        if not self.built:
            raise NotBuiltError(f"Call output(layer, loss=...) on network {self.name!r} "
                                f"before {what}().")

    @property
    def n_parameters(self):
        return sum(size for slots in self._layout for _, size, _ in slots)

    @property
    def output_size(self):
        return self.layers[-1].output_size if self.layers else self.input_size

    @property
    def classification(self):
        return bool(self.loss_fn is not None and self.loss_fn.classification)

    @property
    def metric_name(self):
        """``"accuracy"`` for classifiers, ``"r2"`` for regressors."""
        return "accuracy" if self.classification else "r2"

    # --- the math ------------------------------------------------------------------

    def _unpack(self, theta):
        """Per-layer tuples of parameter arrays: reshaped slices of the flat vector."""
        xp = self.xp
        return [tuple(xp.reshape(theta[o:o + s], shape) for o, s, shape in slots)
                for slots in self._layout]

    def _forward(self, params, x, training=False):
        caches = []
        for layer, p in zip(self.layers, params):
            x, cache = layer.forward(p, x, xp=self.xp, training=training, rng=self.rng)
            caches.append(cache)
        return x, caches

    def _infer(self, params, x):
        """Forward pass for evaluation: the output and caches (only the last one is
        needed, by :meth:`_output_terms`); in place where the backend allows it."""
        if self.backend.writable:
            return _fastpath.infer(self, params, x)
        return self._forward(params, x)

    def _output_terms(self, out, caches, y, want_loss):
        """Loss (or None) and ``dL/d(output)`` or ``dL/dz`` of the output layer."""
        xp, last, loss = self.xp, self.layers[-1], self.loss_fn
        y, weights = _split_weights(y, out.shape[1], xp)
        kw = {} if weights is None else {"sample_weight": weights}
        fused = hasattr(last, "backward_delta") and hasattr(last, "activation")
        if fused:
            z = caches[-1][1]
            value = (loss.output_value(z, out, y, last.activation, xp=xp, **kw)
                     if want_loss else None)
            return value, loss.output_delta(z, out, y, last.activation, xp=xp, **kw), True
        if weights is not None:  # the generic path: dL/dy_hat row by row, then its VJP
            raise TypeError(f"`sample_weight` needs an output layer with an activation "
                            f"(such as Dense); {type(last).__name__} has none.")
        value = loss.value(out, y, xp=xp) if want_loss else None
        return value, loss.gradient(out, y, xp=xp), False

    def _grad(self, theta, x, y, want_loss=False, training=True, penalty_rows=None):
        """Flat gradient of the mean batch loss (plus the L2 penalty over
        `penalty_rows`, default the batch's rows); also the loss and output when asked."""
        xp = self.xp
        params = self._unpack(theta)
        out, caches = self._forward(params, x, training=training)
        value, grad, fused = self._output_terms(out, caches, y, want_loss)
        grads = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            need = i > 0  # nobody needs the gradient with respect to the inputs
            if fused and i == len(self.layers) - 1:
                grad, grads[i] = layer.backward_delta(params[i], caches[i], grad, xp=xp,
                                                      need_input_grad=need)
            else:
                grad, grads[i] = layer.backward(params[i], caches[i], grad, xp=xp,
                                                need_input_grad=need)
        flat = [xp.reshape(g, (-1,)) for gs in grads for g in gs]
        flat_grad = xp.concat(flat) if flat else xp.zeros_like(theta)
        if penalty_rows is None:  # the rows, or the weights' sum (scikit-learn's convention)
            penalty_rows = (x.shape[0] if y.shape[1] == out.shape[1]
                            else _safe_total(y[:, -1], xp))
        penalty = self._penalty(theta, penalty_rows)
        if penalty is not None:
            flat_grad = flat_grad + penalty[1]
            if value is not None:
                value = value + penalty[0]
        return flat_grad, value, out

    def _metric(self, out, y, y_var=None):
        """Batch accuracy (classifiers) or R^2 (regressors) as a 0-d array.

        With `y_var`, the per-output variance of the whole training set, a
        regressor's batch score is ``1 - MSE(batch) / y_var``: its size-weighted
        mean over an epoch is that epoch's R^2, even for batches of one row.
        """
        xp = self.xp
        y, _ = _split_weights(y, out.shape[1], xp)  # metrics are not weighted
        if self.classification:
            if out.shape[1] == 1:  # one sigmoid unit: threshold at 0.5
                hits = (out > 0.5) == (y > 0.5)
            else:
                hits = xp.argmax(out, axis=1) == xp.argmax(y, axis=1)
            return xp.mean(xp.astype(hits, out.dtype))
        return r2_score(out, y, xp=xp, y_var=y_var)

    def _predict_raw(self, x):
        outs = []
        params = self._unpack(self.theta)
        n = x.shape[0]
        for s in range(0, n, _EVAL_CHUNK):
            out, _ = self._infer(params, x if n <= _EVAL_CHUNK else
                                 x[s:min(s + _EVAL_CHUNK, n), ...])
            outs.append(out)
        return outs[0] if len(outs) == 1 else self.xp.concat(outs, axis=0)

    def _eval(self, x, y):
        """Loss and metric (0-d arrays) over a whole set, in chunks."""
        xp = self.xp
        params = self._unpack(self.theta)
        n = x.shape[0]
        penalty = self._penalty(self.theta, n)
        extra = 0.0 if penalty is None else penalty[0]
        if n <= _EVAL_CHUNK:
            out, caches = self._infer(params, x)
            loss, _, _ = self._output_terms(out, caches, y, True)
            return loss + extra, self._metric(out, y)
        total_loss, outs = 0.0, []
        for s in range(0, n, _EVAL_CHUNK):
            e = min(s + _EVAL_CHUNK, n)  # the standard leaves out-of-bounds stops undefined
            xb, yb = x[s:e, ...], y[s:e, ...]
            out, caches = self._infer(params, xb)
            loss, _, _ = self._output_terms(out, caches, yb, True)
            total_loss = total_loss + loss * xb.shape[0]
            outs.append(out)
        return total_loss / n + extra, self._metric(xp.concat(outs, axis=0), y)

    # --- training ------------------------------------------------------------------

    def fit(self, x, y, *, epochs=10, batch_size=32, optimizer=None, validation_data=None,
            shuffle=True, record="iteration", validation_freq=1, verbose=0,
            distributed=False, callbacks=None, on_divergence="raise", sample_weight=None):
        """Train by minibatch backpropagation; calling again continues training.

        Parameters
        ----------
        x : array of shape (n, input_size)
        y : labels (n,), one-hot (n, k), or regression targets (n, k)
        epochs, batch_size : int
        optimizer : str or Optimizer, optional
            ``"adam"`` (the default on the first call), ``"gd"``, ``"momentum"``
            or an instance. Omitted or equal to the current one, training
            continues with the current optimizer state.
        validation_data : tuple (x_val, y_val), optional
            Evaluated after every recorded step (``val_loss``, ``val_<metric>``).
        validation_freq : int
            Evaluate the validation set every this many steps (iterations or
            epochs, as recorded) and at the end of each epoch; other rows hold NaN.
        shuffle : bool
            Reshuffle the training set each epoch (from the network's seed).
        record : {"iteration", "epoch", None}
            Granularity of the history; ``None`` records nothing and computes
            no per-batch loss (the fastest path).
        verbose : {0, 1, 2}
            0 writes nothing, 1 a progress bar per epoch (tqdm, when installed),
            2 one line per epoch; to stderr, with loss and metrics.
        callbacks : list of polymlp.callbacks.Callback, optional
            Called at epoch and batch boundaries (see :mod:`polymlp.callbacks`):
            ``EarlyStopping``, ``ModelCheckpoint``, ``LearningRateScheduler``...
        on_divergence : {"raise", "warn"}
            When the loss or a weight becomes NaN or infinite (checked once per
            epoch on the device), the network is put back to its last finite
            weights and :class:`TrainingDivergedError` is raised naming the
            epoch and iteration, or a ``RuntimeWarning`` is issued and
            training stops.
        sample_weight : array of shape (n,), optional
            Non-negative weight of each row: a batch's loss is
            ``sum(w_i * loss_i) / sum(w_i)`` and the L2 penalty is divided by
            ``sum(w_i)`` instead of the row count (scikit-learn's convention).
            Needs a loss whose ``output_value`` and ``output_delta`` take
            ``sample_weight`` (per-row weights scaled to sum to the batch's rows).
        distributed : bool or polymlp.distributed.DataParallel
            Train data-parallel over the MPI processes of ``mpiexec -n N``:
            each rank takes its shard of every global batch of `batch_size`
            rows and gradients are averaged with one allreduce per step.

        Returns
        -------
        History
        """
        self._require_built("fit")
        # Before any check, so that an error on one rank ends the whole MPI job.
        dp = _distributed.resolve(distributed)
        epochs = _validate.positive_int("epochs", epochs)
        batch_size = _validate.positive_int("batch_size", batch_size)
        _validate.choice("record", record, _RECORD)
        validation_freq = _validate.positive_int("validation_freq", validation_freq)
        if not isinstance(shuffle, bool):
            raise TypeError(f"`shuffle` must be True or False; got {shuffle!r}.")
        verbose = _validate.verbose(verbose)
        _validate.choice("on_divergence", on_divergence, _divergence.ACTIONS)
        user_callbacks = _callbacks.check_callbacks(callbacks)
        X = data.check_inputs(x, self.backend, self.dtype, self.input_size)
        Y = data.check_targets(y, self.backend, self.dtype, X.shape[0], self.output_size,
                               self.classification)
        if sample_weight is not None:
            # The weights ride along as one more target column: shuffled and batched with y.
            Y = self._with_weights(Y, sample_weight, dp)
        self._sample_weighted = sample_weight is not None  # read by _fastpath.make_step
        val = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise TypeError("`validation_data` must be a tuple (x_val, y_val); got "
                                f"{type(validation_data).__name__}.")
            Xv = data.check_inputs(validation_data[0], self.backend, self.dtype,
                                   self.input_size, name="validation_data[0]")
            Yv = data.check_targets(validation_data[1], self.backend, self.dtype, Xv.shape[0],
                                    self.output_size, self.classification,
                                    name="validation_data[1]")
            val = (Xv, Yv)
        # Under MPI only rank 0 shows progress and writes files (checkpoints).
        self._writes_files = dp is None or dp.is_root
        shown = verbose if self._writes_files else 0
        cbs = _callbacks.CallbackList(user_callbacks + _callbacks.progress_callbacks(shown), self)
        cbs.check_logs(_callbacks.log_keys(record, self.metric_name, val is not None))
        self._set_optimizer(optimizer)
        cbs.set_params({"epochs": self.epochs_done + epochs, "initial_epoch": self.epochs_done,
                        "steps": -(-X.shape[0] // batch_size), "samples": X.shape[0],
                        "batch_size": batch_size,
                        "keys": _callbacks.log_keys(record, self.metric_name, val is not None)})
        try:
            if getattr(self.optimizer, "full_batch", False):
                return self._fit_full_batch(X, Y, epochs, val, record, dp, cbs, on_divergence)
            if dp is None:
                return self._train(X, Y, epochs, batch_size, val, shuffle, record, verbose,
                                   validation_freq, callbacks=cbs, on_divergence=on_divergence)
            try:
                dp.setup(self.backend)
                dp.check_same((X.shape[0], batch_size, epochs, shuffle, self.n_parameters),
                              "(rows, batch_size, epochs, shuffle, parameters)")
                self.theta = dp.broadcast(self.theta)
                return self._train(X, Y, epochs, batch_size, val, shuffle, record,
                                   verbose if dp.is_root else 0, validation_freq, dp,
                                   callbacks=cbs, on_divergence=on_divergence)
            except Exception as exc:  # one failing rank must end the job, never hang it
                dp.abort(exc)
                raise
        except BaseException:
            cbs.abort()  # close progress bars on errors and Ctrl-C
            raise

    def _fit_full_batch(self, X, Y, epochs, val, record, dp, cbs, on_divergence):
        """Training with a full-batch optimizer (``full_batch = True``, e.g. L-BFGS).

        Each epoch is one ``optimizer.minimize(objective, theta, state, xp=xp)``
        over the whole set, where ``objective(theta) -> (loss, flat gradient)``
        includes the L2 penalty; training stops after an epoch whose state
        reports ``status == 0`` (converged). The history holds the loss after
        each of the optimizer's iterations (``record="iteration"``) or epochs.
        """
        if dp is not None:
            raise ValueError(f"{type(self.optimizer).__name__} is a full-batch optimizer and "
                             f"does not train data-parallel; use distributed=False.")
        xp, metric = self.xp, self.metric_name
        hist = History("epoch" if record == "epoch" else "iteration")

        def objective(theta):
            grad, loss, _ = self._grad(theta, X, Y, want_loss=True)
            return loss, grad

        if _fastpath.deterministic_layers(self.layers):
            objective = self.backend.jit(objective)
        self.stop_training, logs = False, {}
        cbs.on_train_begin()
        for _ in range(epochs):
            epoch, start = self.epochs_done, self.theta
            cbs.on_epoch_begin(epoch)
            theta, state, losses = self.optimizer.minimize(objective, self.theta,
                                                           self.opt_state, xp=xp)
            if not bool(xp.all(xp.isfinite(theta))):
                self.theta = start
                _divergence.report_full_batch(self, epoch, on_divergence)
                break
            self.theta, self.opt_state = theta, state
            self.iterations += len(losses)
            self.epochs_done += 1
            loss, score = (float(v) for v in self._eval(X, Y))
            row = {}
            if val is not None:
                vl, vm = self._eval(*val)
                row = {"val_loss": float(vl), f"val_{metric}": float(vm)}
            if record == "iteration" and losses:
                n = len(losses)
                hist.extend("iteration", range(self.iterations - n + 1, self.iterations + 1))
                hist.extend("loss", losses)
                hist.extend(metric, [nan] * (n - 1) + [score])
                for key, value in row.items():
                    hist.extend(key, [nan] * (n - 1) + [value])
            elif record == "epoch":
                hist.append(epoch=self.epochs_done, loss=loss, **{metric: score}, **row)
            logs = {"loss": loss, metric: score, **row}
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training or int(state.get("status", 1)) == 0:
                break
        cbs.on_train_end(logs)
        return hist

    def _with_weights(self, Y, sample_weight, dp):
        """`Y` with the checked `sample_weight` as one more column."""
        import inspect

        if dp is not None:
            raise ValueError("`sample_weight` is not supported with distributed training; "
                             "pass distributed=False, or repeat rows instead of weighting them.")
        for method in ("output_value", "output_delta"):
            if "sample_weight" not in inspect.signature(getattr(self.loss_fn, method)).parameters:
                raise TypeError(f"`sample_weight` needs a loss whose {method}() takes "
                                f"sample_weight; loss {self.loss_fn.name!r} does not.")
        w = data.host_array(sample_weight, "sample_weight")
        if w.shape != (Y.shape[0],):
            raise ValueError(f"`sample_weight` must have shape ({Y.shape[0]},), one weight per "
                             f"row; got shape {w.shape}.")
        w = w.astype(numpy.float64)
        if not numpy.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise ValueError("`sample_weight` must hold finite weights >= 0 with a positive "
                             f"sum; got values from {w.min():g} to {w.max():g}.")
        W = self.backend.asarray(data.flat_host([w], self.dtype_name))
        return self.xp.concat([Y, self.xp.reshape(W, (-1, 1))], axis=1)

    def _set_optimizer(self, optimizer):
        if optimizer is None:
            if self.optimizer is not None:
                return
            optimizer = "adam"
        opt = registry.get_optimizer(optimizer)
        if opt is self.optimizer or (self.optimizer is not None and opt == self.optimizer):
            return  # same optimizer: keep its state and continue
        self.optimizer = opt
        self.opt_state = opt.init(self.theta, xp=self.xp)

    def _make_step(self, want_loss, y_var=None):
        """The training step and the parameters and optimizer state it starts from.

        Returns ``(step, theta, state)``; ``step(theta, state, x, y)`` returns
        ``(theta, state, loss, metric)`` (loss and metric are 0-d arrays, or None
        unless `want_loss`). A step is: flat gradient of the batch loss, then
        :attr:`grad_hook` if set, then the optimizer update. On writable backends
        the in-place twin from :mod:`polymlp._fastpath` does the same arithmetic;
        elsewhere the pure step runs, compiled where the backend has a compiler.
        """
        fast = _fastpath.make_step(self, want_loss, y_var)
        if fast is not None:
            return fast
        # y_var is baked into a compiled step: key on the array itself (it stays alive here).
        key = (want_loss, self.optimizer, self.grad_hook, None if y_var is None else id(y_var),
               self._alpha)
        if key not in self._compiled:  # kept across fit() calls: compiling is not free
            self._compiled = {key: self._pure_step(want_loss, y_var)}
        state = self.opt_state
        if self.backend.compiles:  # the counter comes back as an array: start as one
            state = {k: _strong_scalar(self.backend, v) for k, v in state.items()}
        return self._compiled[key], self.theta, state

    def _pure_step(self, want_loss, y_var=None):
        """The functional step; on JAX compiled once by ``Backend.jit`` (optimizers are pure)."""
        xp, opt, hook, jit = self.xp, self.optimizer, self.grad_hook, self.backend.jit

        def gradient(theta, x, y):
            grad, loss, out = self._grad(theta, x, y, want_loss=want_loss)
            return grad, loss, (self._metric(out, y, y_var) if want_loss else None)

        def update(theta, grad, state):
            new_theta, new_state = opt.update(theta, grad, state, xp=xp)
            return _keep_dtypes(new_theta, new_state, theta, state, xp)

        # Layers that draw host randomness in training cannot be traced once and replayed.
        traceable = _fastpath.deterministic_layers(self.layers)
        if traceable and hook is None:
            return jit(_compose_step(gradient, update, None))
        # The hook (an allreduce, say) runs uncompiled between the compiled halves.
        return _compose_step(jit(gradient) if traceable else gradient, jit(update), hook)

    def _train(self, X, Y, epochs, batch_size, val, shuffle, record, verbose, val_freq=1,
               dp=None, callbacks=None, on_divergence="raise"):
        xp, n = self.xp, X.shape[0]
        metric = self.metric_name
        hist = History("epoch" if record == "epoch" else "iteration")
        want_loss = record is not None
        y_var = (None if self.classification or not want_loss
                 else _variance(Y[:, :self.output_size], xp=xp))
        cbs = callbacks if callbacks is not None else _callbacks.CallbackList([], self)
        self.stop_training, logs = False, {}
        # One slicer per batch size, kept across fit() calls: on JAX each is a compiled
        # gather, and compiling it again for every partial_fit dominated small fits.
        slicers = self.__dict__.setdefault("_slicers", {})
        if batch_size not in slicers:
            slicers[batch_size] = _batch_slicer(self.backend, batch_size)
        rows = slicers[batch_size]
        cbs.on_train_begin()
        for _ in range(epochs):
            epoch, start = self.epochs_done, _divergence.snapshot(self)
            cbs.on_epoch_begin(epoch)
            # Made after the callbacks, which may change the weights or the optimizer.
            # Data-parallel training takes the pure step on its shards (see _shard_grad).
            if dp is None:
                step, theta, state = self._make_step(want_loss, y_var)
            else:
                theta, state, opt = self.theta, self.opt_state, self.optimizer
            Xs = Ys = None  # drop last epoch's shuffled copy before making the next one
            if shuffle:
                perm = self.backend.asarray(self.rng.permutation(n))
                Xs, Ys = xp.take(X, perm, axis=0), xp.take(Y, perm, axis=0)
            else:
                Xs, Ys = X, Y
            losses, metrics, vlosses, vmetrics, sizes = [], [], [], [], []
            for s in range(0, n, batch_size):
                e = min(s + batch_size, n)  # the standard leaves out-of-bounds stops undefined
                if cbs.batch_hooks:
                    cbs.on_batch_begin(self.iterations + 1, _batch_logs(epoch, s // batch_size, e - s))
                if dp is None:
                    xb, yb = rows(Xs, Ys, s, e)
                    theta, state, loss, score = step(theta, state, xb, yb)
                else:
                    grad, loss, score = self._shard_grad(dp, theta, Xs, Ys, s, e, want_loss,
                                                         y_var)
                    theta, state = opt.update(theta, grad, state, xp=xp)
                self.iterations += 1
                if want_loss:
                    # Kept as device arrays: converted once per epoch, never per batch.
                    losses.append(loss)
                    metrics.append(score)
                    sizes.append(e - s)
                    if val is not None and record == "iteration":
                        if self.iterations % val_freq == 0 or s + batch_size >= n:
                            self.theta = theta
                            vl, vm = self._eval(*val)
                        else:
                            vl = vm = nan
                        vlosses.append(vl)
                        vmetrics.append(vm)
                if cbs.batch_hooks:
                    self.theta, self.opt_state = theta, state
                    cbs.on_batch_end(self.iterations, _batch_logs(epoch, s // batch_size, e - s))
                    if self.theta is not theta and dp is None:  # a callback set new weights
                        step, theta, state = self._make_step(want_loss, y_var)
                    theta, state = self.theta, self.opt_state
                    if self.stop_training:
                        break
            if not _divergence.finite(xp, theta, losses):  # one host sync per epoch
                self._diverged(start, X, Y, batch_size, shuffle, hist, record, val, metric,
                               (losses, metrics, sizes, vlosses, vmetrics), on_divergence,
                               val_freq, replay=dp is None)
                break
            self.theta, self.opt_state = theta, state
            self.epochs_done += 1
            if want_loss:
                if dp is not None:  # sum the weighted shard values: one reduction per epoch
                    losses = list(dp.allreduce(xp.stack(losses)))
                    metrics = list(dp.allreduce(xp.stack(metrics)))
                self._record(hist, record, losses, metrics, sizes, vlosses, vmetrics, val, metric,
                             val_freq)
            logs = _callbacks.epoch_logs(hist, record, len(losses), sizes, metric)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        return hist

    def _diverged(self, start, X, Y, batch_size, shuffle, hist, record, val, metric, lists,
                  action, val_freq=1, replay=True):
        """Put back the last finite state, record the epoch up to it, then raise or warn."""
        div = _divergence.restore_last_finite(self, start, X, Y, batch_size, shuffle,
                                              self.epochs_done + 1, self.iterations, replay,
                                              want_loss=True)
        k = div.steps_kept
        if record == "iteration" and k:
            self._record(hist, record, *(values[:k] for values in lists), val, metric, val_freq)
        _divergence.report(self, div, action, hist)

    def _shard_grad(self, dp, theta, Xs, Ys, s, e, want_loss, y_var=None):
        """This rank's share of the global batch gradient, summed over ranks.

        Each rank weighs its mean over its rows by ``rows / global rows``, so the
        sum is the mean over the global batch whatever the shard sizes.
        """
        xp = self.xp
        lo, hi, weight = dp.shard(s, e)
        xb, yb = Xs[lo:hi, ...], Ys[lo:hi, ...]
        loss = score = None
        if hi > lo:
            # The penalty over the global batch, weighed like the data term: the
            # weights sum to 1 over ranks, so the sum holds it once.
            grad, loss, out = self._grad(theta, xb, yb, want_loss=want_loss, penalty_rows=e - s)
            grad = grad * weight
            if want_loss:
                loss, score = loss * weight, self._metric(out, yb, y_var) * weight
        else:  # more ranks than rows in this batch: nothing to add
            grad = xp.zeros_like(theta)
            if want_loss:
                loss = score = xp.zeros_like(theta[0])
        return dp.allreduce(grad), loss, score

    def _record(self, hist, record, losses, metrics, sizes, vlosses, vmetrics, val, metric,
                val_freq):
        xp = self.xp
        loss_h = to_numpy(xp.stack(losses))
        metric_h = to_numpy(xp.stack(metrics))
        if record == "iteration":
            first = self.iterations - len(losses) + 1
            hist.extend("iteration", range(first, self.iterations + 1))
            hist.extend("loss", loss_h)
            hist.extend(metric, metric_h)
            if val is not None:
                hist.extend("val_loss", _host_values(vlosses, xp))
                hist.extend(f"val_{metric}", _host_values(vmetrics, xp))
            return
        total = sum(sizes)
        row = {"epoch": self.epochs_done,
               "loss": sum(l * s for l, s in zip(loss_h, sizes)) / total,
               metric: sum(m * s for m, s in zip(metric_h, sizes)) / total}
        if val is not None:
            vl, vm = self._eval(*val) if self.epochs_done % val_freq == 0 else (nan, nan)
            row["val_loss"], row[f"val_{metric}"] = float(vl), float(vm)
        hist.append(**row)

    # --- inference -----------------------------------------------------------------

    def predict_proba(self, x):
        """Network outputs (class probabilities for classifiers), on the network's backend."""
        self._require_built("predict_proba")
        return self._predict_raw(data.check_inputs(x, self.backend, self.dtype, self.input_size))

    def predict(self, x):
        """Class labels (integer array) for classifiers, outputs for regressors."""
        self._require_built("predict")
        out = self.predict_proba(x)
        return self._labels(out) if self.classification else out

    def _labels(self, out):
        xp = self.xp
        if out.shape[1] == 1:
            index = xp.__array_namespace_info__().default_dtypes(device=self.device)["indexing"]
            return xp.astype(out[:, 0] > 0.5, index)
        return xp.argmax(out, axis=1)

    def evaluate(self, x, y):
        """``{"loss": float, "accuracy" or "r2": float}`` over the whole set."""
        self._require_built("evaluate")
        X = data.check_inputs(x, self.backend, self.dtype, self.input_size)
        Y = data.check_targets(y, self.backend, self.dtype, X.shape[0], self.output_size,
                               self.classification)
        loss, metric = self._eval(X, Y)
        return {"loss": float(loss), self.metric_name: float(metric)}

    def loss(self, x, y):
        """Mean loss over `x`, `y` (plus the L2 penalty when ``alpha > 0``), as a float."""
        return self.evaluate(x, y)["loss"]

    def test(self, x, y):
        """The seed's triple ``(y_pred, y_hat, accuracy)``: labels, probabilities, accuracy."""
        self._require_built("test")
        X = data.check_inputs(x, self.backend, self.dtype, self.input_size)
        Y = data.check_targets(y, self.backend, self.dtype, X.shape[0], self.output_size,
                               self.classification)
        y_hat = self._predict_raw(X)
        y_pred = self._labels(y_hat) if self.classification else y_hat
        return y_pred, y_hat, float(self._metric(y_hat, Y))

    def gradients(self, x, y):
        """Gradient of ``loss(x, y)`` (L2 penalty included): NumPy arrays ``[dW1, db1, ...]``."""
        self._require_built("gradients")
        X = data.check_inputs(x, self.backend, self.dtype, self.input_size)
        Y = data.check_targets(y, self.backend, self.dtype, X.shape[0], self.output_size,
                               self.classification)
        flat, _, _ = self._grad(self.theta, X, Y, training=False)
        return self._split_host(to_numpy(flat))

    # --- weights -------------------------------------------------------------------

    def _split_host(self, flat):
        return [flat[o:o + s].reshape(shape).copy() for slots in self._layout
                for o, s, shape in slots]

    def get_weights(self):
        """NumPy copies of every parameter, ``[W1, b1, W2, b2, ...]`` (``W`` is ``(inputs, outputs)``)."""
        self._require_built("get_weights")
        return self._split_host(to_numpy(self.theta))

    def set_weights(self, weights):
        """Replace every parameter; `weights` as returned by :meth:`get_weights`."""
        self._require_built("set_weights")
        shapes = [shape for slots in self._layout for _, _, shape in slots]
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"`weights` must be a list of arrays; got {type(weights).__name__}.")
        if len(weights) != len(shapes):
            raise ValueError(f"`weights` has {len(weights)} arrays but the network has "
                             f"{len(shapes)} parameters (shapes {shapes}); pass a list shaped "
                             f"like get_weights(): [W1, b1, W2, b2, ...].")
        host = []
        for i, (w, shape) in enumerate(zip(weights, shapes)):
            arr = data.host_array(w, f"weights[{i}]")
            if tuple(arr.shape) != shape:
                raise ValueError(f"`weights[{i}]` has shape {tuple(arr.shape)}; expected {shape} "
                                 f"(W is (inputs, outputs), b is (outputs,)).")
            host.append(arr)
        flat = data.flat_host(host, self.dtype_name)
        if not bool((abs(flat) < float("inf")).all()):
            raise ValueError("`weights` contain NaN or infinite values (or values too large "
                             f"for {self.dtype_name}); pass finite weights.")
        self.theta = self.backend.asarray(flat)
        if self.optimizer is not None:
            self.opt_state = self.optimizer.init(self.theta, xp=self.xp)

    def save(self, path, include_optimizer=True):
        """Save the network to one file, atomically; reload it with :func:`polymlp.load`.

        See :func:`polymlp.serialization.save`. With `include_optimizer` the
        optimizer state, counters and RNG state are stored too, so ``fit``
        resumes exactly. Returns the path.
        """
        from . import serialization

        return serialization.save(self, path, include_optimizer=include_optimizer)

    def export(self, path):
        """Write the weights only, as ``.npz`` (keys ``layers.0.W``, ``layers.0.b``, ...)."""
        from . import serialization

        return serialization.export(self, path)

    # --- structure -----------------------------------------------------------------

    def collapse(self):
        """An equivalent one-layer network, when every activation is the identity.

        ``W = W1 W2 ... Wn`` and ``b = (...(b1 W2 + b2) W3 ...) + bn`` (the seed's bonus).
        """
        self._require_built("collapse")
        for i, layer in enumerate(self.layers):
            act = getattr(layer, "activation", None)
            if not isinstance(layer, registry.layers.Dense) or act is None or act.name != "identity":
                what = act.name if act is not None else type(layer).__name__
                raise ValueError(
                    f"collapse() needs every layer to be Dense with activation 'identity'; "
                    f"layer {i} ({layer!r}) uses {what!r}. Only affine stacks collapse.")
        xp = self.xp
        params = self._unpack(self.theta)
        W, b = params[0]
        for Wl, bl in params[1:]:
            W, b = W @ Wl, b @ Wl + bl
        net = Network(self.input_size, name=f"{self.name} (collapsed)", backend=self.backend,
                      dtype=self.dtype_name, seed=self.seed)
        net.output(registry.layers.Dense(self.output_size, activation="identity"),
                   loss=registry.to_config(self.loss_fn))
        net.theta = xp.concat([xp.reshape(W, (-1,)), b])
        return net

    def to(self, backend, device=None):
        """A copy of this network (weights and optimizer state) on another backend/device."""
        target = resolve_backend(backend, device)
        net = Network(self.input_size, name=self.name, backend=target, dtype=self.dtype_name,
                      seed=self.seed, alpha=self.alpha)
        net.rng.bit_generator.state = self.rng.bit_generator.state
        for layer in self.layers[:-1]:
            net.stack(registry.get_layer(registry.to_config(layer)))
        if self.built:
            net.output(registry.get_layer(registry.to_config(self.layers[-1])),
                       loss=registry.to_config(self.loss_fn))
            net.theta = target.asarray(to_numpy(self.theta))
            net.iterations, net.epochs_done = self.iterations, self.epochs_done
            if self.optimizer is not None:
                net.optimizer = registry.get_optimizer(registry.to_config(self.optimizer))
                net.opt_state = {k: _state_value(v, target) for k, v in self.opt_state.items()}
        return net

    def summary(self, print_fn=print):
        """Print (and return) a table of layers, shapes, activations and parameter counts."""
        lines = [f"Network {self.name!r} (backend {self.backend.name}, device "
                 f"{self.device}, {self.dtype_name})",
                 f"{'#':>3}  {'layer':<10} {'shape':<14} {'activation':<12} {'params':>9}"]
        width = self.input_size
        for i, layer in enumerate(self.layers):
            count = sum(math.prod(s.shape) for s in layer.parameter_specs())
            act = getattr(getattr(layer, "activation", None), "name", "-")
            shape = f"{width} -> {layer.output_size}"
            lines.append(f"{i + 1:>3}  {layer.name:<10} {shape:<14} {act:<12} {count:>9,}")
            width = layer.output_size
        loss = self.loss_fn.name if self.loss_fn else "(no output layer yet)"
        lines.append(f"loss: {loss}; total parameters: {self.n_parameters:,}")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def __getstate__(self):
        # Compiled steps are local functions (they do not pickle); rebuilt on demand.
        return {**self.__dict__, "_compiled": {}, "_slicers": {}}

    def __repr__(self):
        sizes = "-".join(str(s) for s in [self.input_size] + [layer.output_size for layer in self.layers])
        return f"Network({self.name!r}, {sizes}, backend={self.backend.name!r})"


def _split_weights(y, width, xp):
    """``(targets, weights)``: `y` and None, or, when `y` carries a weight column
    (``fit(sample_weight=...)``), its targets and the weights scaled to sum to its rows."""
    if y.shape[1] == width:
        return y, None
    w = y[:, -1:]
    return y[:, :width], w * (y.shape[0] / _safe_total(w, xp))


def _safe_total(w, xp):
    total = xp.sum(w)
    return xp.where(total > 0, total, xp.ones_like(total))


def _variance(y, /, *, xp):
    return xp.mean((y - xp.mean(y, axis=0)) ** 2, axis=0)


def r2_score(y_hat, y, /, *, xp, y_var=None):
    """Coefficient of determination, averaged uniformly over outputs (as scikit-learn).

    `y_var` replaces the variance of `y` by a reference one (a training set's).
    """
    ss_res = xp.sum((y - y_hat) ** 2, axis=0)
    ss_tot = xp.sum((y - xp.mean(y, axis=0)) ** 2, axis=0)
    if y_var is not None:  # against a reference variance (the whole training set's)
        ss_tot = y_var * y.shape[0]
    safe = xp.where(ss_tot > 0, ss_tot, 1.0)
    # A constant target scores 1 when predicted exactly and 0 otherwise (as scikit-learn).
    constant = xp.astype(ss_res == 0, ss_res.dtype)
    return xp.mean(xp.where(ss_tot > 0, 1.0 - ss_res / safe, constant))


def _keep_dtypes(new_theta, new_state, theta, state, xp):
    """Cast updated arrays back to their input dtypes.

    Under ``jax.jit`` with x64 on, a step counter returned by the previous
    compiled step is a 64-bit array, and ``beta ** t`` would silently promote
    float32 parameters to float64. The dtypes are static, so this costs nothing
    when they already agree.
    """
    if new_theta.dtype != theta.dtype:
        new_theta = xp.astype(new_theta, theta.dtype)
    for key, value in new_state.items():
        old = state.get(key)
        if hasattr(old, "dtype") and hasattr(value, "dtype") and value.dtype != old.dtype:
            new_state = {**new_state, key: xp.astype(value, old.dtype)}
    return new_theta, new_state


def _strong_scalar(backend, value):
    """A Python number as a 0-d array of the backend's default dtype (else unchanged).

    With an explicit dtype the array is "strongly" typed, like the arrays a
    compiled step returns: JAX would otherwise trace a second version of the
    step, with other rounding, for a counter that starts as a Python int (or
    comes back as one from a file).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    kind = "integral" if isinstance(value, int) else "real floating"
    dtype = backend.xp.__array_namespace_info__().default_dtypes(device=backend.device)[kind]
    return backend.asarray(value, dtype=dtype)


def _batch_slicer(backend, size):
    """``rows(X, Y, start, stop)``: rows ``start:stop`` of `X` and `Y`.

    Plain slices (views on NumPy), except where the backend compiles (JAX):
    there each slice is a dispatch costing more than the compiled step itself,
    so a full batch of both arrays is one compiled gather at a traced offset.
    """
    xp = backend.xp

    def gather(X, Y, start):
        index = start + xp.arange(size)
        return xp.take(X, index, axis=0), xp.take(Y, index, axis=0)

    compiled = backend.jit(gather)

    def rows(X, Y, start, stop):
        if backend.compiles and stop - start == size:
            return compiled(X, Y, start)
        return X[start:stop, ...], Y[start:stop, ...]

    return rows


def _compose_step(gradient, update, hook):
    """``step(theta, state, x, y)``: gradient, then `hook` (if any), then update."""
    def step(theta, state, x, y):
        grad, loss, metric = gradient(theta, x, y)
        if hook is not None:
            grad = hook(grad)
        theta, state = update(theta, grad, state)
        return theta, state, loss, metric
    return step


def _state_value(value, target):
    """An optimizer state entry moved to `target`; 0-d integers (a step counter
    that came back from a compiled step as an array) become Python ints again."""
    if isinstance(value, (int, float)):
        return value
    host = to_numpy(value)
    if host.ndim == 0 and host.dtype.kind in "iu":
        return int(host)
    return target.asarray(host)


def _host_values(values, xp):
    """Floats from a list of 0-d arrays and NaN placeholders, with one transfer."""
    arrays = [v for v in values if v is not nan]
    host = iter(to_numpy(xp.stack(arrays)).tolist() if arrays else [])
    return [nan if v is nan else next(host) for v in values]


def _batch_logs(epoch, batch, size):
    return {"epoch": epoch, "batch": batch, "size": size}
