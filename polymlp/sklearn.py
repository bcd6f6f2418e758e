"""scikit-learn's MLP estimators on any Array API backend: a drop-in replacement.

``from polymlp.sklearn import MLPClassifier, MLPRegressor`` replaces
``from sklearn.neural_network import ...``: the constructor parameters,
their defaults, the fitted attributes (``coefs_``, ``intercepts_``,
``loss_curve_``, ``n_iter_``, ...), ``partial_fit``, ``warm_start``, early
stopping, the learning-rate schedules, the warnings and the errors are
scikit-learn's.  Add ``backend="torch"``, ``"jax"``, ``"cupy"`` (with
``device=``) to train elsewhere; that is the one addition.

Needs scikit-learn (``pip install 'polymlp[sklearn]'``); ``import polymlp``
does not import this module.
"""

from __future__ import annotations

import numpy

try:
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils._param_validation import StrOptions
    from sklearn.utils.multiclass import _check_partial_fit_first_call, unique_labels
    from sklearn.utils.validation import column_or_1d
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    from ._install import install_hint

    raise ImportError(f"polymlp.sklearn needs scikit-learn >= 1.6: "
                      f"{install_hint('sklearn')}") from exc

from ._array_api import to_numpy
from ._sklearn_base import _STOCHASTIC, BaseMLP, SolverDivergedError, _is_foreign

__all__ = ["MLPClassifier", "MLPRegressor", "SolverDivergedError", "expected_failed_checks"]

_DIFFERENCES = """
    Differences from scikit-learn
    -----------------------------
    - A non-finite loss stops training with :class:`SolverDivergedError` (a
      ``ValueError`` and a :class:`polymlp.TrainingDivergedError`) and the
      last finite weights, where scikit-learn finishes with NaN weights and
      scores; ``on_divergence="warn"`` warns and stops instead.
    - ``solver="lbfgs"`` is polymlp's own L-BFGS (:class:`polymlp.LBFGS`,
      the same stopping rules as SciPy's L-BFGS-B): iterates differ slightly.
    - Shuffling draws from a generator seeded by ``random_state``, so batch
      orders differ from scikit-learn's; initial weights are drawn as it draws them.
    - Adam adds ``epsilon`` after bias-correcting the second moment (as PyTorch).
    - Sparse ``X`` is densified once per fit or prediction.
    - float64 needs a backend that offers it: on JAX without x64 the network
      trains in float32 (``coefs_`` are float32) unless ``dtype`` is given.
"""

_EXTRAS = """
    backend : str or namespace, default "numpy"
        Keyword only. Array library that trains and predicts: ``"numpy"``,
        ``"torch"``, ``"jax"``, ``"cupy"``, ``"array_api_strict"``, a plugin name.
    device : str or device, optional
        Keyword only. Device on that backend (its default when omitted).
    dtype : {None, "float32", "float64"}, default None
        Keyword only. None keeps the input's float dtype, as scikit-learn does.
    on_divergence : {"raise", "warn"}, default "raise"
        Keyword only. What a non-finite loss does (see the differences below).
"""


class _MLPCommon(BaseMLP):
    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="numpy", device=None, dtype=None, on_divergence="raise"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.on_divergence = on_divergence

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix `X` and target(s) `y`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Also an array of any Array API library (kept on its device).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    @property
    def network_(self):
        """The trained :class:`polymlp.Network` (its outputs stay on the backend)."""
        if not hasattr(self, "_network"):
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet.")
        self._sync_network()
        return self._network


class MLPClassifier(ClassifierMixin, _MLPCommon):
    __doc__ = """Multi-layer perceptron classifier: scikit-learn's, trained by polymlp.

    Takes exactly the parameters of ``sklearn.neural_network.MLPClassifier``
    (same names, meanings, defaults; see its documentation), plus the
    keyword-only extras below. Binary targets train one logistic output,
    multiclass a softmax, multilabel indicator matrices independent logistic
    outputs; the loss is scikit-learn's log-loss plus
    ``0.5 * alpha * ||W||^2 / n_samples``.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, \
warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, \
beta_1, beta_2, epsilon, n_iter_no_change, max_fun :
        As in scikit-learn.
    """ + _EXTRAS + """
    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_, \
best_validation_score_, t_, coefs_, intercepts_, n_features_in_, \
feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_ :
        As in scikit-learn.
    network_ : polymlp.Network
        The trained network.
    """ + _DIFFERENCES + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from polymlp.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(max_iter=500, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X = self._check_X(X, reset=reset)
        y = _check_y(y, X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(numpy.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score_backend(self, Xb, y, sample_weight):
        y_pred = self._forward_backend(Xb)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return float(accuracy_score(y, self._label_binarizer.inverse_transform(y_pred),
                                    sample_weight=sample_weight))

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default None
        classes : array of shape (n_classes,), default None
            Every class label; required on the first call.

        Returns
        -------
        self
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if _is_foreign(y):
                y = to_numpy(y)
            if type_of_target_is_multilabel(y):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy, as scikit-learn's; `y` may be an array of any library."""
        return ClassifierMixin.score(self, X, _host(y), sample_weight=_host(sample_weight))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return numpy.log(self.predict_proba(X))

    def predict_proba(self, X):
        """Probability estimates, shape ``(n_samples, n_classes)``."""
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return numpy.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _MLPCommon):
    __doc__ = """Multi-layer perceptron regressor: scikit-learn's, trained by polymlp.

    Takes exactly the parameters of ``sklearn.neural_network.MLPRegressor``
    (``loss="squared_error"`` or ``"poisson"`` included; same names,
    meanings, defaults), plus the keyword-only extras below. The squared
    error is scikit-learn's (half the mean squared error), the Poisson loss
    its half deviance with an exponential output.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, \
warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, \
beta_1, beta_2, epsilon, n_iter_no_change, max_fun :
        As in scikit-learn.
    """ + _EXTRAS + """
    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, \
t_, coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, \
n_outputs_, out_activation_ :
        As in scikit-learn.
    network_ : polymlp.Network
        The trained network.
    """ + _DIFFERENCES + """
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from polymlp.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=200, random_state=1)
    >>> reg = MLPRegressor(random_state=1, max_iter=2000, tol=0.1).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="numpy", device=None, dtype=None, on_divergence="raise"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, backend=backend, device=device, dtype=dtype,
            on_divergence=on_divergence)
        self.loss = loss

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X = self._check_X(X, reset=reset)
        y = _check_y(y, X, numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Returns
        -------
        y : ndarray of shape (n_samples, n_outputs) or (n_samples,)
        """
        y_pred = self._forward_pass_fast(X)
        if y_pred.shape[1] == 1:
            return y_pred[:, 0]
        return y_pred

    def score(self, X, y, sample_weight=None):
        """R^2, as scikit-learn's; `y` may be an array of any library."""
        return RegressorMixin.score(self, X, _host(y), sample_weight=_host(sample_weight))

    def _score_backend(self, Xb, y, sample_weight):
        y_pred = self._forward_backend(Xb)
        if y_pred.shape[1] == 1:
            y_pred = y_pred[:, 0]
        return float(r2_score(y, y_pred, sample_weight=sample_weight))

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


def _host(a):
    return to_numpy(a) if _is_foreign(a) else a


def type_of_target_is_multilabel(y):
    from sklearn.utils.multiclass import type_of_target

    return type_of_target(y) == "multilabel-indicator"


def _check_y(y, X, numeric=False):
    """`y` checked against `X` as scikit-learn's ``validate_data(X, y)`` checks it."""
    from sklearn.utils.validation import check_array, check_consistent_length

    if y is None:
        raise ValueError("This estimator requires y to be passed, but the target y is None.")
    if _is_foreign(y):
        y = to_numpy(y)
    y = check_array(y, accept_sparse=False, ensure_2d=False, dtype="numeric" if numeric else None,
                    ensure_all_finite=True, input_name="y")
    if numeric and y.dtype.kind == "O":
        y = y.astype(numpy.float64)
    check_consistent_length(X, y)
    return y


_FLOAT32 = ("float32 training: the check compares fits within a tolerance set for float64 "
            "rounding (weights against repeated rows, or row order); passes with float64")


def _float32_reason(estimator):
    """"dtype" (float32 asked for), "backend" (float64 input, a backend without it) or None."""
    if getattr(estimator, "dtype", None) == "float32":
        return "dtype"
    if getattr(estimator, "dtype", None) is None:
        from ._array_api import resolve_backend
        from .errors import BackendError

        try:
            backend = resolve_backend(estimator.backend, estimator.device)
        except BackendError:  # not usable here: its fit raises, nothing to expect of checks
            return None
        try:
            backend.dtype("float64")
        except BackendError:
            return "backend"
    return None


def expected_failed_checks(estimator):
    """scikit-learn estimator checks `estimator` is known to fail, with the reason.

    None for estimators that train in float64 (the default on NumPy, PyTorch,
    CuPy); for float32 training (``dtype="float32"``, or JAX without x64) the
    checks that compare two fits at float64 tolerances. Pass it on:
    ``check_estimator(est, expected_failed_checks=expected_failed_checks(est))``.
    """
    reason = _float32_reason(estimator)
    if reason is None:
        return {}
    names = ["check_sample_weight_equivalence_on_dense_data",
             "check_sample_weight_equivalence_on_sparse_data"]
    if reason == "backend":  # the check's float64 input trained in float32 (seen on JAX)
        names.append("check_methods_sample_order_invariance")
    return {name: _FLOAT32 for name in names}
