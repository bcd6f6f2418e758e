"""The training loop shared by :class:`polymlp.sklearn.MLPClassifier` and ``MLPRegressor``.

It follows scikit-learn's ``BaseMultilayerPerceptron`` step by step (its
initialisation, epoch loop, stopping rule, learning-rate schedules, early
stopping and warnings), with every epoch run by :meth:`polymlp.Network.fit`
on the chosen backend.  ``coefs_`` and ``intercepts_`` are host copies
refreshed after every fit; edits to them reach the network before the next
fit or prediction, as in scikit-learn.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy
import scipy.sparse
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import data, lbfgs
from .callbacks import Callback
from ._array_api import to_numpy
from ._sklearn_losses import Exp, HalfSquaredError, LogLoss, PoissonLoss
from ._sklearn_rate import ScheduledRate
from .errors import BackendError, TrainingDivergedError
from .layers import Dense
from .network import Network
from .optimizers import Adam, Momentum

_STOCHASTIC = ("sgd", "adam")
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "softmax": "softmax", "exp": Exp()}


class SolverDivergedError(TrainingDivergedError, ValueError):
    """The loss or the weights became non-finite (a ``ValueError`` too, as scikit-learn's)."""


def _is_foreign(X):
    return data.is_foreign_array(X)


class BaseMLP(BaseEstimator):
    """scikit-learn's MLP fitting procedure over a :class:`polymlp.Network`."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {numpy.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [str, object],
        "device": [None, str, object],
        "dtype": [None, StrOptions({"float32", "float64"})],
        "on_divergence": [StrOptions({"raise", "warn"})],
    }

    # --- building -------------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if numpy.any(numpy.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _network_dtype(self, X_dtype):
        """X's dtype (float32 stays float32), unless `dtype` says otherwise or the backend
        lacks float64 (JAX without x64), where float32 is used."""
        if self.dtype is not None:
            return self.dtype
        return "float32" if X_dtype == numpy.float32 else "float64"

    def _initialize(self, y, layer_units, X_dtype):
        """scikit-learn's ``_initialize``: attributes, then Glorot-uniform weights drawn
        from ``random_state`` exactly as scikit-learn draws them."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = numpy.sqrt(factor / (fan_in + fan_out))
            coefs.append(self._random_state.uniform(-bound, bound, (fan_in, fan_out)))
            intercepts.append(self._random_state.uniform(-bound, bound, fan_out))
        self._build_network(layer_units, X_dtype)
        self._set_coefs([c.astype(self._dtype_) for c in coefs],
                        [b.astype(self._dtype_) for b in intercepts])
        self._best_weights = self._network.get_weights()
        if self.solver in _STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -numpy.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = numpy.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _build_network(self, layer_units, X_dtype):
        dtype = self._network_dtype(X_dtype)
        # The network's seed drives its shuffling; drawn from random_state like sklearn's.
        seed = int(self._random_state.randint(numpy.iinfo(numpy.int32).max))
        kwargs = dict(name=type(self).__name__, backend=self.backend, device=self.device,
                      seed=seed, alpha=float(self.alpha))
        try:
            net = Network(layer_units[0], dtype=dtype, **kwargs)
        except BackendError:
            if self.dtype is not None or dtype == "float32":
                raise
            dtype = "float32"  # e.g. JAX without x64: train in float32, say so in the docs
            net = Network(layer_units[0], dtype=dtype, **kwargs)
        hidden = _ACTIVATIONS[self.activation]
        for width in layer_units[1:-1]:
            net.stack(Dense(width, hidden, kernel_initializer="zeros", bias_initializer="zeros"))
        out = Dense(layer_units[-1], _ACTIVATIONS[self.out_activation_],
                    kernel_initializer="zeros", bias_initializer="zeros")
        self._network = net.output(out, loss=self._loss_fn())
        self._dtype_ = numpy.dtype(dtype)

    def _set_coefs(self, coefs, intercepts):
        """Put weights into the network (keeping the optimizer state) and publish them."""
        net = self._network
        state = net.opt_state
        net.set_weights([w for pair in zip(coefs, intercepts) for w in pair])
        net.opt_state = state
        self._publish()

    def _publish(self):
        weights = self._network.get_weights()
        self.coefs_, self.intercepts_ = weights[0::2], weights[1::2]
        self._published = [w.copy() for w in weights]

    def _sync_network(self, X_dtype=None):
        """Take edits of ``coefs_``/``intercepts_`` (or ones set before any fit) over."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        if not hasattr(self, "_network"):  # attributes set by hand, as in sklearn's test_fit
            units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
            self._random_state = check_random_state(self.random_state)
            self._build_network(units, X_dtype if X_dtype is not None else numpy.float64)
        flat = [w for pair in zip(coefs, intercepts) for w in pair]
        weights = [numpy.asarray(w, dtype=self._dtype_).reshape(s)
                   for w, s in zip(flat, self._shapes())]
        published = getattr(self, "_published", None)
        if published is None or any(w.shape != p.shape or not numpy.array_equal(w, p)
                                    for w, p in zip(weights, published)):
            self._set_coefs(weights[0::2], weights[1::2])

    def _shapes(self):
        return self._network.layout.shapes

    def _loss_fn(self):
        if not is_classifier(self):
            return PoissonLoss() if self.loss == "poisson" else HalfSquaredError()
        return LogLoss(binary=self.out_activation_ == "logistic")

    # --- inputs ---------------------------------------------------------------------

    def _check_X(self, X, *, reset):
        if _is_foreign(X):  # arrays of torch, jax, cupy...: kept on their device
            if X.ndim != 2:
                raise ValueError(f"Expected a 2-D array of shape (n_samples, n_features); got "
                                 f"shape {tuple(X.shape)}.")
            if reset:
                self.n_features_in_ = int(X.shape[1])
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                                 f"expecting {self.n_features_in_} features as input.")
            return X
        return validate_data(self, X, accept_sparse=["csr", "csc"], reset=reset,
                             dtype=(numpy.float64, numpy.float32))

    def _to_backend(self, X):
        """Features on the network's backend; sparse matrices are densified here."""
        if scipy.sparse.issparse(X):
            X = X.toarray()
        net = self._network
        return data.check_inputs(X, net.backend, net.dtype, net.input_size, name="X")

    def _targets_to_backend(self, Y):
        net = self._network
        return net.backend.asarray(numpy.asarray(Y, dtype=self._dtype_))

    def _weights_to_backend(self, sample_weight, X):
        if sample_weight is None:
            return None
        from sklearn.utils.validation import _check_sample_weight

        return _check_sample_weight(sample_weight, X, dtype=numpy.float64)

    # --- fitting --------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if _is_foreign(y):
            y = to_numpy(y)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._weights_to_backend(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        X_dtype = getattr(X, "dtype", numpy.float64)
        if first_pass:
            self._initialize(y, layer_units, X_dtype)
        else:
            self._sync_network(X_dtype)
        self._network.alpha = float(self.alpha)
        try:
            if self.solver in _STOCHASTIC:
                self._fit_stochastic(X, y, sample_weight, incremental)
            else:
                self._fit_lbfgs(X, y, sample_weight)
        finally:
            self._publish()
        return self

    def _run(self, Xb, Yb, epochs, batch_size, sample_weight, shuffle=True, callbacks=None,
             record="epoch"):
        net = self._network
        try:
            hist = net.fit(Xb, Yb, epochs=epochs, batch_size=batch_size, shuffle=bool(shuffle),
                           record=record, sample_weight=sample_weight,
                           on_divergence=self.on_divergence, callbacks=callbacks)
        except TrainingDivergedError as exc:
            raise SolverDivergedError(_diverged_message(self, exc)) from exc
        return hist

    def _fit_lbfgs(self, X, y, sample_weight):
        net = self._network
        opt = lbfgs.LBFGS(max_iter=self.max_iter, max_fun=self.max_fun, tol=self.tol)
        net.optimizer, net.opt_state = opt, opt.init(net.theta, xp=net.xp)
        Xb, Yb = self._to_backend(X), self._targets_to_backend(y)
        hist = self._run(Xb, Yb, 1, 32, sample_weight, shuffle=False, record="iteration")
        state = net.opt_state
        self.n_iter_ = min(int(state["n_iter"]), self.max_iter)
        # The objective's value after the last iteration (as SciPy's result.fun).
        losses = hist.columns.get("loss")
        self.loss_ = float(losses[-1]) if losses else float(net.loss(Xb, Yb))
        if int(state["status"]) != lbfgs.CONVERGED:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status="
                f"{int(state['status'])}):\n{lbfgs.LBFGS.message(state)}.\n\nIncrease the "
                f"number of iterations to improve the convergence (max_iter={self.max_iter}).\n"
                f"You might also want to scale the data as shown in:\n    "
                f"https://scikit-learn.org/stable/modules/preprocessing.html",
                ConvergenceWarning, stacklevel=4)

    def _make_optimizer(self):
        if self.solver == "adam":
            return Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)
        inner = Momentum(self.learning_rate_init, self.momentum, self.nesterovs_momentum)
        return ScheduledRate(inner, self.learning_rate, self.power_t)

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        net = self._network
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
            net.optimizer = self._optimizer
            net.opt_state = self._optimizer.init(net.theta, xp=net.xp)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        X_val = y_val = sw_val = None
        if early_stopping:
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            parts = train_test_split(
                X, y, *([] if sample_weight is None else [sample_weight]),
                random_state=self._random_state, test_size=self.validation_fraction,
                stratify=stratify)
            X, X_val, y, y_val = parts[:4]
            if sample_weight is not None:
                sample_weight, sw_val = parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            X_val = self._to_backend(X_val)
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(numpy.clip(self.batch_size, 1, n_samples))
        Xb, Yb = self._to_backend(X), self._targets_to_backend(y)
        net.rng = numpy.random.default_rng(self._random_state.randint(2 ** 31))
        self.n_iter_ = 0
        # One Network.fit for all epochs (compiled once on JAX); scikit-learn's
        # end-of-epoch logic runs in a callback between epochs.
        epochs = 1 if incremental else self.max_iter
        end = _EpochEnd(self, n_samples, early_stopping, (X_val, y_val, sw_val), incremental)
        self._run(Xb, Yb, epochs, batch_size, sample_weight, self.shuffle, [end])
        if early_stopping:  # restore the best weights (the optimizer state stays)
            state = net.opt_state
            net.set_weights(self._best_weights)
            net.opt_state = state

    def _trigger_stopping(self, msg):
        opt = self._optimizer
        if not isinstance(opt, ScheduledRate) or opt.schedule != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if opt.learning_rate <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        opt.set_rate(self._network, opt.learning_rate / 5.0)
        if self.verbose:
            print(msg + " Setting learning rate to %f" % opt.learning_rate)
        return False

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val):
        if early_stopping:
            score = self._score_backend(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_weights = self._network.get_weights()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # --- inference ------------------------------------------------------------------

    def _forward_backend(self, Xb):
        """Network outputs for backend features, as a NumPy array of the fitted dtype."""
        return to_numpy(self._network.predict_proba(Xb)).astype(self._dtype_, copy=False)

    def _forward_pass_fast(self, X, check_input=True):
        check_is_fitted(self, "coefs_")
        if check_input:
            X = self._check_X(X, reset=False)
        self._sync_network()
        return self._forward_backend(self._to_backend(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class _EpochEnd(Callback):
    """scikit-learn's end of an epoch: loss curve, stopping rule, schedules, warning."""

    def __init__(self, est, n_samples, early_stopping, validation, incremental):
        self.est, self.n_samples = est, n_samples
        self.early_stopping, self.validation = early_stopping, validation
        self.incremental = incremental

    def on_epoch_end(self, epoch, logs=None):
        est, net = self.est, self.network
        est.n_iter_ += 1
        est.loss_ = float(logs["loss"])
        est.t_ += self.n_samples
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
        est._update_no_improvement_count(self.early_stopping, *self.validation)
        if isinstance(est._optimizer, ScheduledRate):  # Adam keeps its rate, as sklearn's
            est._optimizer.iteration_ends(net, est.t_)
        if est._no_improvement_count > est.n_iter_no_change:
            what = ("Validation score" if self.early_stopping else "Training loss")
            msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
                   % (what, est.tol, est.n_iter_no_change))
            if est._trigger_stopping(msg):
                net.stop_training = True
                return
            est._no_improvement_count = 0
        if not self.incremental and est.n_iter_ == est.max_iter:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % est.max_iter,
                          ConvergenceWarning)


def _diverged_message(est, exc):
    name = type(est).__name__
    return (f"Solver produced non-finite parameter weights. The input data may contain large "
            f"values and need to be preprocessed. ({exc.args[0].split(' (fit(')[0]}) Lower "
            f"learning_rate_init (now {est.learning_rate_init:g}) or scale the inputs, e.g. "
            f"with sklearn.preprocessing.StandardScaler; or pass {name}(on_divergence='warn') "
            f"to stop with the last finite weights and a RuntimeWarning instead.")
