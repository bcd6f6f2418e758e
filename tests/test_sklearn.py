"""polymlp.sklearn: scikit-learn's estimator checks, pipelines, search, the estimators' own API."""

import pickle
import subprocess
import sys
import warnings

import numpy
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits, load_iris, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import polymlp as pm  # noqa: E402
from polymlp import testing  # noqa: E402
from polymlp._array_api import array_backend_name  # noqa: E402
from polymlp.sklearn import MLPClassifier, MLPRegressor, expected_failed_checks  # noqa: E402

FAST = dict(hidden_layer_sizes=(16,), max_iter=50, learning_rate_init=0.05, random_state=0)


@pytest.fixture(autouse=True)
def _numpy_session_only(request):
    """Tests that do not take `backend_name` run on NumPy: once, in the numpy session."""
    if "backend_name" not in request.fixturenames and "numpy" not in testing.selected_backends():
        pytest.skip("backend-independent: runs in the numpy session")


@parametrize_with_checks([MLPClassifier(**FAST), MLPRegressor(**FAST),
                          MLPClassifier(**FAST, dtype="float32"),
                          MLPRegressor(**FAST, dtype="float32")],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_no_expected_failures_in_float64():
    assert expected_failed_checks(MLPClassifier()) == {}
    assert expected_failed_checks(MLPRegressor(backend="torch")) == {}
    assert set(expected_failed_checks(MLPRegressor(dtype="float32"))) == {
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weight_equivalence_on_sparse_data"}


def test_import_polymlp_does_not_import_sklearn():
    code = "import sys, polymlp; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_parameters_are_scikit_learns_plus_keyword_only_extras():
    import inspect

    for ours, theirs in ((MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)):
        sk = inspect.signature(theirs.__init__).parameters
        mine = inspect.signature(ours.__init__).parameters
        assert list(mine)[:len(sk)] == list(sk)
        for name, p in sk.items():
            assert mine[name].default == p.default or (
                p.default is not p.empty and str(mine[name].default) == str(p.default)), name
            assert mine[name].kind == p.kind, name
        extras = [n for n in mine if n not in sk]
        assert extras == ["backend", "device", "dtype", "on_divergence"]
        assert all(mine[n].kind is inspect.Parameter.KEYWORD_ONLY for n in extras)


def test_string_labels_and_attributes(iris):
    X, y = iris
    names = numpy.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(**FAST).fit(X, names)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    pred = clf.predict(X)
    assert pred.dtype == names.dtype and set(pred) <= set(names)
    assert clf.score(X, names) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and numpy.allclose(proba.sum(axis=1), 1.0)
    numpy.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.n_iter_ == len(clf.loss_curve_) <= 50 and clf.loss_ == clf.loss_curve_[-1]
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert [c.shape for c in clf.coefs_] == [(4, 16), (16, 3)]
    assert clf.t_ == 150 * clf.n_iter_ and clf.best_validation_score_ is None
    assert isinstance(clf.network_, pm.Network) and clf.network_.alpha == clf.alpha
    numpy.testing.assert_allclose(pm.to_numpy(clf.network_.predict_proba(X)), proba)


def _sgd_pair(ours_cls, theirs_cls, X, y, **params):
    """Fit polymlp's and scikit-learn's estimator with full batches and no shuffling:
    the same initial weights (drawn from random_state as scikit-learn draws them),
    the same loss scaling, penalty and schedule give the same weights."""
    params = dict(solver="sgd", batch_size=len(X), shuffle=False, random_state=0, tol=0.0,
                  max_iter=15, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ours_cls(**params).fit(X, y), theirs_cls(**params).fit(X, y)


@pytest.mark.parametrize("params", [
    dict(learning_rate="invscaling", learning_rate_init=0.5, power_t=0.3, alpha=0.01),
    dict(momentum=0.9, nesterovs_momentum=False, alpha=1.0, learning_rate_init=0.05),
    dict(momentum=0.5, nesterovs_momentum=True, activation="tanh", learning_rate_init=0.1),
    dict(activation="logistic", learning_rate="invscaling", momentum=0.8),
])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
def test_sgd_trains_exactly_as_scikit_learn(iris, task, params):
    X, y = iris
    X = X[:60]
    if task == "regression":
        ours, theirs = _sgd_pair(MLPRegressor, SkMLPRegressor, X, X[:, 0] - y[:60], **params)
    else:
        target = {"binary": y[:60] % 2, "multiclass": y[:60],
                  "multilabel": numpy.stack([y[:60] == 0, X[:, 1] > 0], axis=1).astype(int)}
        ours, theirs = _sgd_pair(MLPClassifier, SkMLPClassifier, X, target[task], **params)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    numpy.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)


def test_schedules_live_in_the_optimizer_state(iris):
    X, y = iris
    clf = MLPClassifier(**{**FAST, "max_iter": 4}, solver="sgd", learning_rate="invscaling")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    opt = clf.network_.optimizer
    expected = clf.learning_rate_init / (clf.t_ + 1) ** clf.power_t
    assert opt.learning_rate == pytest.approx(expected)
    # The rate is an array in the state; the optimizer's config (what a compiled step
    # is keyed on) still holds the initial rate only.
    scale = float(pm.to_numpy(clf.network_.opt_state["rate_scale"]))
    assert scale == pytest.approx(expected / clf.learning_rate_init, rel=1e-6)
    assert opt.get_config()["inner"]["learning_rate"] == clf.learning_rate_init


def test_adam_and_lbfgs_close_to_scikit_learn_on_digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    for params in (dict(solver="adam", max_iter=60), dict(solver="lbfgs", max_iter=100)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours = MLPClassifier(random_state=0, **params).fit(Xtr, ytr).score(Xte, yte)
            theirs = SkMLPClassifier(random_state=0, **params).fit(Xtr, ytr).score(Xte, yte)
        assert abs(ours - theirs) < 0.03, (params, ours, theirs)


def test_user_guide_snippets_run_unchanged_after_the_import_swap():
    """scikit-learn's user-guide examples, with only the import swapped, and its results."""
    from polymlp.sklearn import MLPClassifier, MLPRegressor  # noqa: F811 - the swap

    X = [[0., 0.], [1., 1.]]
    y = [0, 1]
    clf = MLPClassifier(solver='lbfgs', alpha=1e-5, hidden_layer_sizes=(5, 2), random_state=1)
    clf.fit(X, y)
    assert clf.predict([[2., 2.], [-1., -2.]]).tolist() == [1, 0]
    assert [coef.shape for coef in clf.coefs_] == [(2, 5), (5, 2), (2, 1)]
    assert clf.predict_proba([[2., 2.], [1., 2.]]).shape == (2, 2)
    y = [[0, 1], [1, 1]]
    clf = MLPClassifier(solver='lbfgs', alpha=1e-5, hidden_layer_sizes=(15,), random_state=1)
    clf.fit(X, y)
    assert clf.predict([[1., 2.]]).tolist() == [[1, 1]]
    assert clf.predict([[0., 0.]]).tolist() == [[0, 1]]
    # The docstring examples of MLPClassifier and MLPRegressor.
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=100, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=1)
    clf = MLPClassifier(random_state=1, max_iter=300).fit(X_train, y_train)
    theirs = SkMLPClassifier(random_state=1, max_iter=300).fit(X_train, y_train)
    assert clf.predict_proba(X_test[:1]).shape == (1, 2)
    assert abs(clf.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.08
    X, y = make_regression(n_samples=200, n_features=20, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        regr = MLPRegressor(random_state=1, max_iter=2000, tol=0.1).fit(X_train, y_train)
        sk = SkMLPRegressor(random_state=1, max_iter=2000, tol=0.1).fit(X_train, y_train)
    assert abs(regr.score(X_test, y_test) - sk.score(X_test, y_test)) < 0.05


def test_pipeline_grid_search_and_cross_val_score():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
                                   "mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3).fit(X, y)
    assert scores.shape == (3,) and scores.mean() > 0.85
    assert len(grid.cv_results_["params"]) == 4 and grid.best_score_ > 0.85
    assert isinstance(grid.best_estimator_[-1].network_, pm.Network)


def test_clone_pickle_and_joblib_keep_predictions(iris, tmp_path):
    import joblib

    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**FAST).fit(X, y)
    fresh = clone(clf)
    assert not hasattr(fresh, "coefs_") and fresh.get_params() == clf.get_params()
    again = pickle.loads(pickle.dumps(clf))
    numpy.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    numpy.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # Both keep training where the original stopped, with its optimizer state.
    clf.partial_fit(X, y)
    loaded.partial_fit(X, y)
    numpy.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_edited_coefs_are_used(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**FAST).fit(X, y)
    clf.coefs_[-1][:] = 0.0
    clf.intercepts_[-1][:] = [0.0, 5.0, 0.0]
    assert (clf.predict(X) == 1).all()


def test_divergence_error_names_the_estimators_option(iris):
    """Issue 14: the message suggests an option the estimator accepts, and it works."""
    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=100, activation="identity", solver="sgd",
                  learning_rate_init=1, max_iter=20, random_state=0)
    with pytest.raises(ValueError, match="MLPRegressor\\(on_divergence='warn'\\)") as info:
        MLPRegressor(**params).fit(X, y)
    assert isinstance(info.value, pm.TrainingDivergedError)
    assert "fit(on_divergence" not in str(info.value)
    reg = MLPRegressor(**params, on_divergence="warn")
    with pytest.warns(RuntimeWarning):
        reg.fit(X, y)
    assert all(numpy.isfinite(c).all() for c in reg.coefs_)


def test_differences_are_documented():
    for est in (MLPClassifier, MLPRegressor):
        assert "Differences from scikit-learn" in est.__doc__


def test_sample_weight_zero_rows_are_ignored_by_lbfgs(iris):
    X, y = iris
    w = numpy.ones(150)
    w[::3] = 0.0
    keep = w > 0
    a = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), random_state=0, max_iter=30)
    b = clone(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y, sample_weight=w)
        b.fit(X[keep], y[keep])
    for p, q in zip(a.coefs_, b.coefs_):
        numpy.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-8)


def test_diabetes_regression_matches_scikit_learn():
    """Reference: scikit-learn's MLPRegressor, same architecture and training budget."""
    X, y = load_diabetes(return_X_y=True)
    ours, theirs = [], []
    for seed in range(2):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed)
        for out, cls in ((ours, MLPRegressor), (theirs, SkMLPRegressor)):
            model = make_pipeline(StandardScaler(), TransformedTargetRegressor(
                cls(hidden_layer_sizes=(16,), max_iter=200, random_state=seed),
                transformer=StandardScaler()))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Xtr, ytr)
            out.append(model.score(Xte, yte))
    assert abs(numpy.mean(ours) - numpy.mean(theirs)) < 0.05, (ours, theirs)


@pytest.mark.parametrize("params, match", [
    ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
    ({"max_iter": 0}, "max_iter"),
    ({"batch_size": "big"}, "batch_size"),
    ({"validation_fraction": 1.5}, "validation_fraction"),
    ({"dtype": "float16"}, "dtype"),
    ({"solver": "adamw"}, "solver"),
    ({"activation": "swishy"}, "activation"),
    ({"learning_rate": 0.01}, "learning_rate"),
])
def test_bad_parameters_name_themselves(iris, params, match):
    X, y = iris
    with pytest.raises((TypeError, ValueError), match=match):
        MLPClassifier(**{**FAST, **params}).fit(X, y)


def test_backends_agree_and_accept_their_own_arrays(iris, backend_name, net_kwargs):
    """Fit on each backend from that backend's arrays; predictions match NumPy's."""
    X, y = iris
    params = dict(hidden_layer_sizes=(8,), max_iter=20, learning_rate_init=0.01,
                  random_state=0, dtype="float64")
    if backend_name == "numpy_readonly":
        pytest.skip("a test namespace: its networks are not picklable by name")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = MLPClassifier(**params).fit(X, y)
        backend = pm.resolve_backend(**net_kwargs)
        Xb = backend.asarray(X)
        clf = MLPClassifier(**params, **net_kwargs).fit(Xb, backend.asarray(y))
        lbfgs = MLPClassifier(**{**params, "solver": "lbfgs"}, **net_kwargs).fit(X, y)
        lbfgs_ref = MLPClassifier(**{**params, "solver": "lbfgs"}).fit(X, y)
    assert array_backend_name(clf.network_.theta) == array_backend_name(Xb)
    if net_kwargs.get("device") is not None:
        assert clf.network_.theta.device == backend.device
    numpy.testing.assert_allclose(clf.predict_proba(Xb), reference.predict_proba(X),
                                  atol=testing.atol_for("float64") * 100)
    numpy.testing.assert_allclose(lbfgs.predict_proba(X), lbfgs_ref.predict_proba(X),
                                  atol=1e-6)
    assert clf.score(Xb, backend.asarray(y)) == reference.score(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    numpy.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
