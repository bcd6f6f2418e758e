"""The network: a stack of layers trained by backpropagation (the public facade).

:class:`Network` builds the stack, holds the parameters and the optimizer
state, and answers inference, weights, ``to``, ``collapse`` and summaries.
The parts behind it:

- :mod:`polymlp._layout`: where each parameter lives in the one flat vector;
- :mod:`polymlp._engine`: forward, gradient and the one training step;
- :mod:`polymlp._loop`: the epochs of ``fit`` (recording, callbacks, divergence);
- :mod:`polymlp._metrics`: accuracy and R^2.
"""

from __future__ import annotations

from . import _divergence, _export, _modelfile, _summary, _validate, _weights, data, registry
from . import callbacks as _callbacks
from . import distributed as _distributed
from ._array_api import resolve_backend, to_numpy
from ._engine import Engine
from ._layout import ParamLayout
from ._loop import EVAL_CHUNK, FitSettings, Trainer
from . import _metrics
from ._metrics import r2_score  # noqa: F401 - part of this module's API
from .errors import NotBuiltError
from .layers import Dense

_RECORD = ("iteration", "epoch", None)


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
        self.layers = []
        self.loss_fn = None
        self.optimizer = None
        self.opt_state = None
        self.theta = None
        #: Where each parameter lives in :attr:`theta` (a :class:`~polymlp._layout.ParamLayout`).
        self.layout = ParamLayout([])
        #: Forward, gradient and training step (an :class:`~polymlp._engine.Engine`), once built.
        self.engine = None
        self.iterations = 0
        self.epochs_done = 0
        self.stop_training = False  # set by a callback to end fit() early
        #: Optional ``callable(flat_grad) -> flat_grad`` applied to every training
        #: gradient before the optimizer update (e.g. gradient clipping).
        self.grad_hook = None
        self._cursor = None  # fit's position inside the current epoch (see polymlp._resume)
        self._resume = None  # a position to continue from, set by load or BackupAndRestore

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
        self._alpha = _validate.alpha(value)
        if getattr(self, "engine", None) is not None:
            self.engine.alpha = self._alpha  # the engine's objective (steps are keyed on it)

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
        # Checks the new layer's parameter specs now, naming it (see ParamSpec).
        self.layout = ParamLayout(self.layers + [layer])
        self.layers.append(layer)
        return self

    def output(self, layer, loss="cross_entropy"):
        """Append the output layer with its `loss`, and initialise every weight; returns self."""
        if self.built:
            raise NotBuiltError(f"Network {self.name!r} already has an output layer.")
        loss_fn = registry.get_loss(loss)
        self.stack(layer)
        self.loss_fn = loss_fn
        self.theta = self.backend.asarray(self.layout.initial_host(self.rng, self.dtype_name))
        self.engine = self._make_engine()
        return self

    def _make_engine(self):
        return Engine(self.layers, self.loss_fn, self.layout, self.backend, alpha=self._alpha,
                      dtype_name=self.dtype_name)

    def _require_built(self, what):
        if not self.built:
            raise NotBuiltError(f"Call output(layer, loss=...) on network {self.name!r} "
                                f"before {what}().")

    @property
    def n_parameters(self):
        return self.layout.size

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

    # --- training ------------------------------------------------------------------

    def fit(self, x, y, *, epochs=10, batch_size=32, optimizer=None, validation_data=None,
            shuffle=True, record="iteration", validation_freq=None, verbose=0,
            distributed=False, callbacks=None, on_divergence="raise", steps_per_execution=None,
            sample_weight=None):
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
            Evaluated at the end of each epoch (``val_loss``, ``val_<metric>``).
        validation_freq : int, optional
            In iterations (minibatch steps). By default (None) the validation
            set is evaluated once per epoch, at its end, as in Keras. With
            ``validation_freq=N`` it is also evaluated after every N-th
            iteration (counted across epochs and ``fit`` calls), for a finer
            validation curve when ``record="iteration"``; the rows in between
            hold NaN. With ``record="epoch"`` every epoch row is evaluated.
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
        steps_per_execution : int, optional
            Where the backend compiles (JAX): at most this many steps per compiled
            call (``None``: up to the next validation point or the epoch's end; on a
            CPU device only for small steps, where dispatch dominates: larger ones
            run step by step unless a value above 1 is given).
            Chunks also end where callbacks need the host (``host_every``, see
            :mod:`polymlp.callbacks`); ``grad_hook`` runs step by step; see CONTRIBUTING.
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
        X, Y, settings, user_callbacks, verbose = _fit_arguments(
            self, x, y, dp, epochs=epochs, batch_size=batch_size, record=record,
            validation_freq=validation_freq, shuffle=shuffle, verbose=verbose,
            on_divergence=on_divergence, callbacks=callbacks, sample_weight=sample_weight,
            steps_per_execution=steps_per_execution, validation_data=validation_data)
        # Under MPI only rank 0 shows progress and writes files (checkpoints).
        writes_files = dp is None or dp.is_root
        keys = _callbacks.log_keys(settings.record, self.metric_name,
                                   settings.validation is not None)
        cbs = _callbacks.CallbackList(
            user_callbacks + _callbacks.progress_callbacks(verbose if writes_files else 0), self)
        cbs.check_logs(keys)
        self._set_optimizer(optimizer)
        cbs.set_params({"epochs": self.epochs_done + settings.epochs,
                        "initial_epoch": self.epochs_done,
                        "steps": -(-X.shape[0] // settings.batch_size), "samples": X.shape[0],
                        "batch_size": settings.batch_size, "shuffle": settings.shuffle,
                        "keys": keys, "writes_files": writes_files})
        try:
            return _train(self, X, Y, settings, cbs, dp)
        except BaseException:
            cbs.abort()  # close progress bars on errors and Ctrl-C
            raise

    def _set_optimizer(self, optimizer):
        if optimizer is None:
            if self.optimizer is not None:
                return
            optimizer = "adam"
        opt = registry.get_optimizer(optimizer)
        if opt is self.optimizer or (self.optimizer is not None
                                     and opt.same_config(self.optimizer)):
            return  # the same optimizer (or one configured alike): keep its state, continue
        self.optimizer = opt
        self.opt_state = opt.init(self.theta, xp=self.xp)

    # --- inference -----------------------------------------------------------------

    def predict_proba(self, x):
        """Network outputs (class probabilities for classifiers), on the network's backend."""
        self._require_built("predict_proba")
        X = data.check_inputs(x, self.backend, self.dtype, self.input_size)
        return self.engine.predict(self.theta, X, EVAL_CHUNK)

    def predict(self, x):
        """Class labels (integer array) for classifiers, outputs for regressors."""
        self._require_built("predict")
        out = self.predict_proba(x)
        return self._labels(out) if self.classification else out

    def _labels(self, out):
        return _metrics.labels(out, xp=self.xp)

    def evaluate(self, x, y):
        """``{"loss": float, "accuracy" or "r2": float}`` over the whole set."""
        self._require_built("evaluate")
        X = data.check_inputs(x, self.backend, self.dtype, self.input_size)
        Y = data.check_targets(y, self.backend, self.dtype, X.shape[0], self.output_size,
                               self.classification)
        loss, metric = self.engine.evaluate(self.theta, X, Y, EVAL_CHUNK)
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
        y_hat = self.engine.predict(self.theta, X, EVAL_CHUNK)
        y_pred = self._labels(y_hat) if self.classification else y_hat
        return y_pred, y_hat, float(self.engine.metric(y_hat, Y))

    def gradients(self, x, y):
        """Gradient of ``loss(x, y)`` (L2 penalty included): NumPy arrays ``[dW1, db1, ...]``."""
        self._require_built("gradients")
        X = data.check_inputs(x, self.backend, self.dtype, self.input_size)
        Y = data.check_targets(y, self.backend, self.dtype, X.shape[0], self.output_size,
                               self.classification)
        flat, _, _ = self.engine.gradient(self.theta, X, Y, training=False)
        return self.layout.split_host(to_numpy(flat))

    # --- weights -------------------------------------------------------------------

    def get_weights(self):
        """NumPy copies of every parameter, ``[W1, b1, W2, b2, ...]`` (``W`` is ``(inputs, outputs)``)."""
        self._require_built("get_weights")
        return self.layout.split_host(to_numpy(self.theta))

    def set_weights(self, weights):
        """Replace every parameter; `weights` as returned by :meth:`get_weights`."""
        self._require_built("set_weights")
        flat = self.layout.flat_from_host(weights, self.dtype_name)
        self.theta = self.backend.asarray(flat)
        if self.optimizer is not None:
            self.opt_state = self.optimizer.init(self.theta, xp=self.xp)

    def save(self, path, include_optimizer=True):
        """Save the network to one file, atomically; reload it with :func:`polymlp.load`.

        See :func:`polymlp.serialization.save`. With `include_optimizer` the
        optimizer state, counters and RNG state are stored too, so ``fit``
        resumes exactly. Returns the path.
        """
        # The file format; serialization (which builds Networks from files) sits above.
        return _modelfile.save(self, path, include_optimizer=include_optimizer)

    def export(self, path, format=None, **options):
        """Write the weights only, as ``.npz`` (keys ``layers.0.W``, ``layers.0.b``, ...), or
        with ``format="onnx"`` (inferred from a ``.onnx`` path) the network as an ONNX model
        (options: see :func:`polymlp.onnx.export`)."""
        return _export.export(self, path, format, **options)

    # --- structure -----------------------------------------------------------------

    def collapse(self):
        """An equivalent one-layer network, when every activation is the identity.

        ``W = W1 W2 ... Wn`` and ``b = (...(b1 W2 + b2) W3 ...) + bn`` (the seed's bonus).
        """
        self._require_built("collapse")
        for i, layer in enumerate(self.layers):
            act = getattr(layer, "activation", None)
            if not isinstance(layer, Dense) or act is None or act.name != "identity":
                what = act.name if act is not None else type(layer).__name__
                raise ValueError(
                    f"collapse() needs every layer to be Dense with activation 'identity'; "
                    f"layer {i} ({layer!r}) uses {what!r}. Only affine stacks collapse.")
        xp = self.xp
        params = self.layout.views(self.theta, xp)
        W, b = params[0]
        for Wl, bl in params[1:]:
            W, b = W @ Wl, b @ Wl + bl
        net = Network(self.input_size, name=f"{self.name} (collapsed)", backend=self.backend,
                      dtype=self.dtype_name, seed=self.seed)
        net.output(Dense(self.output_size, activation="identity"),
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
                net.opt_state = net.optimizer.moved_state(self.opt_state, net.theta,
                                                          xp=target.xp)
        return net

    def summary(self, print_fn=print):
        """Print a table of layers, shapes, activations and parameter counts (returns None);
        with ``print_fn=None``, return the table as a string instead."""
        return _summary.summary(self, print_fn)

    def __getstate__(self):
        # The engine holds compiled steps (local functions, which do not pickle): rebuilt.
        # So do the batch slicers (compiled gathers on JAX).
        return {k: v for k, v in self.__dict__.items() if k != "engine"} | {"_slicers": {}}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.engine = None
        if self.loss_fn is not None:
            self.engine = self._make_engine()

    def __repr__(self):
        sizes = "-".join(str(s) for s in [self.input_size] + [layer.output_size for layer in self.layers])
        return f"Network({self.name!r}, {sizes}, backend={self.backend.name!r})"



def _fit_arguments(net, x, y, dp, *, epochs, batch_size, record, validation_freq, shuffle,
                   verbose, on_divergence, callbacks, sample_weight, steps_per_execution,
                   validation_data):
    """``fit``'s arguments checked: ``(X, Y, FitSettings, callbacks, verbose)``."""
    epochs = _validate.positive_int("epochs", epochs)
    batch_size = _validate.positive_int("batch_size", batch_size)
    _validate.choice("record", record, _RECORD)
    if validation_freq is not None:
        validation_freq = _validate.positive_int("validation_freq", validation_freq)
    if not isinstance(shuffle, bool):
        raise TypeError(f"`shuffle` must be True or False; got {shuffle!r}.")
    verbose = _validate.verbose(verbose)
    _validate.choice("on_divergence", on_divergence, _divergence.ACTIONS)
    user_callbacks = _callbacks.check_callbacks(callbacks)
    X = data.check_inputs(x, net.backend, net.dtype, net.input_size)
    Y = data.check_targets(y, net.backend, net.dtype, X.shape[0], net.output_size,
                           net.classification)
    if sample_weight is not None:
        # The weights ride along as one more target column: shuffled and batched with y.
        Y = _weights.with_weights(net, Y, sample_weight, dp)
    if steps_per_execution is not None:
        steps_per_execution = _validate.positive_int("steps_per_execution",
                                                     steps_per_execution)
    settings = FitSettings(epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                           record=record, validation_freq=validation_freq,
                           on_divergence=on_divergence,
                           validation=_validation(net, validation_data),
                           steps_per_execution=steps_per_execution)
    return X, Y, settings, user_callbacks, verbose


def _train(net, X, Y, settings, cbs, dp):
    """Run the :class:`~polymlp._loop.Trainer` (data-parallel: set up, checked alike on
    every rank, weights broadcast from rank 0)."""
    if dp is None:
        return Trainer(net, settings, cbs).run(X, Y)
    try:
        dp.setup(net.backend)
        dp.check_same((X.shape[0], settings.batch_size, settings.epochs,
                       settings.shuffle, net.n_parameters),
                      "(rows, batch_size, epochs, shuffle, parameters)")
        net.theta = dp.broadcast(net.theta)
        return Trainer(net, settings, cbs, dp).run(X, Y)
    except Exception as exc:  # one failing rank must end the job, never hang it
        dp.abort(exc)
        raise


def _validation(net, validation_data):
    if validation_data is None:
        return None
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise TypeError("`validation_data` must be a tuple (x_val, y_val); got "
                        f"{type(validation_data).__name__}.")
    Xv = data.check_inputs(validation_data[0], net.backend, net.dtype,
                           net.input_size, name="validation_data[0]")
    Yv = data.check_targets(validation_data[1], net.backend, net.dtype, Xv.shape[0],
                            net.output_size, net.classification,
                            name="validation_data[1]")
    return Xv, Yv

