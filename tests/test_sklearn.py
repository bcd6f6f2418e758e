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
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import polymlp as pm  # noqa: E402
from polymlp import testing  # noqa: E402
from polymlp._array_api import array_backend_name  # noqa: E402
from polymlp.sklearn import MLPClassifier, MLPRegressor, expected_failed_checks  # noqa: E402

FAST = dict(hidden_layer_sizes=(16,), epochs=50, learning_rate=0.01, random_state=0)


@pytest.fixture(autouse=True)
def _numpy_session_only(request):
    """Tests that do not take `backend_name` run on NumPy: once, in the numpy session."""
    if "backend_name" not in request.fixturenames and "numpy" not in testing.selected_backends():
        pytest.skip("backend-independent: runs in the numpy session")


@parametrize_with_checks([MLPClassifier(**FAST), MLPRegressor(**FAST)],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_expected_failures_only_for_float32():
    assert set(expected_failed_checks(MLPClassifier())) == {
        "check_methods_subset_invariance", "check_methods_sample_order_invariance"}
    assert expected_failed_checks(MLPRegressor(dtype="float64")) == {}


@pytest.mark.parametrize("check", ["check_methods_subset_invariance",
                                   "check_methods_sample_order_invariance"])
def test_float64_passes_the_checks_float32_is_excused_from(check):
    from sklearn.utils import estimator_checks

    for est in (MLPClassifier(**FAST, dtype="float64"), MLPRegressor(**FAST, dtype="float64")):
        getattr(estimator_checks, check)(type(est).__name__, est)


def test_import_polymlp_does_not_import_sklearn():
    code = "import sys, polymlp; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_string_labels_and_attributes(iris):
    X, y = iris
    names = numpy.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(**FAST).fit(X, names)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    pred = clf.predict(X)
    assert pred.dtype == names.dtype and set(pred) <= set(names)
    assert clf.score(X, names) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and numpy.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    numpy.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.n_iter_ == len(clf.loss_curve_) <= 50
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert isinstance(clf.network_, pm.Network) and clf.network_.output_size == 3
    # network_ is the real model: its outputs are the estimator's probabilities.
    numpy.testing.assert_allclose(pm.to_numpy(clf.network_.predict_proba(X)), proba, rtol=1e-6)


def test_pipeline_grid_search_and_cross_val_score(iris):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
                               "mlpclassifier__activation": ["relu", "tanh"]}, cv=3)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.85
    assert isinstance(grid.best_estimator_[-1].network_, pm.Network)


def test_clone_and_pickle_keep_predictions(iris):
    X, y = iris
    clf = MLPClassifier(**FAST).fit(X, y)
    fresh = clone(clf)
    assert not hasattr(fresh, "network_") and fresh.get_params() == clf.get_params()
    again = pickle.loads(pickle.dumps(clf))
    numpy.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    # The unpickled model keeps training where the original stopped.
    again.partial_fit(X, y)
    assert again.n_iter_ == clf.n_iter_ + 1


def test_same_seed_same_model_and_refit_is_fresh(iris):
    X, y = iris
    a = MLPClassifier(**FAST).fit(X, y)
    b = MLPClassifier(**FAST).fit(X, y)
    numpy.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    first = a.loss_curve_[:]
    a.fit(X, y)  # without warm_start, fit starts over
    assert a.loss_curve_ == first


def test_warm_start_and_partial_fit_continue(iris):
    X, y = iris
    clf = MLPClassifier(**{**FAST, "epochs": 5, "tol": 0.0}, warm_start=True).fit(X, y)
    loss_after_5 = clf.loss_curve_[-1]
    clf.fit(X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[-1] < loss_after_5
    # Switching the stopping rule between warm starts restarts it cleanly.
    clf.set_params(early_stopping=True).fit(X, y)
    assert len(clf.validation_scores_) == 5
    clf.set_params(early_stopping=False).fit(X, y)
    assert clf.n_iter_ == 20 and clf.best_loss_ == min(clf.loss_curve_[-5:])
    inc = MLPClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be passed"):
        inc.partial_fit(X[:10], y[:10])
    for start in range(0, 150, 50):
        inc.partial_fit(X[start:start + 50], y[start:start + 50], classes=[0, 1, 2])
    assert inc.n_iter_ == 3 and inc.t_ == 150
    assert inc.classes_.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="not in classes_"):
        inc.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="5 features, but MLPClassifier is expecting"):
        inc.partial_fit(numpy.ones((3, 5)), [0, 1, 2])


def test_early_stopping_keeps_best_weights(iris):
    X, y = iris
    clf = MLPClassifier((8,), epochs=200, learning_rate=0.05, early_stopping=True,
                        validation_fraction=0.3, n_iter_no_change=5, random_state=3).fit(X, y)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # The split is scikit-learn's stratified one with the same seed: rescoring the
    # held-out rows with the final weights gives the best score, not the last one.
    _, val = train_test_split(numpy.arange(150), test_size=0.3, random_state=3, stratify=y)
    assert clf.score(X[val], y[val]) == pytest.approx(clf.best_validation_score_)


def test_multilabel_targets(iris):
    X, y = iris
    Y = numpy.stack([y == 0, y == 2, X[:, 0] > 0], axis=1).astype(int)
    clf = MLPClassifier(**FAST).fit(X, Y)
    assert clf.loss_ == "binary_cross_entropy" and clf.out_activation_ == "sigmoid"
    pred = clf.predict(X)
    assert pred.shape == (150, 3) and set(numpy.unique(pred)) <= {0, 1}
    assert (pred == Y).mean() > 0.85


def test_regressor_shapes_and_losses():
    rng = numpy.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 3))
    Y = numpy.stack([X[:, 0] - 2 * X[:, 1], numpy.sin(3 * X[:, 2])], axis=1)
    for loss in ("mse", "mae"):
        reg = MLPRegressor((32,), activation="tanh", loss=loss, epochs=150, learning_rate=0.01,
                           batch_size=32, random_state=0).fit(X, Y)
        assert reg.predict(X).shape == (300, 2) and reg.predict(X).dtype == numpy.float64
        assert reg.score(X, Y) > 0.8, loss
        assert reg.network_.loss_fn.name == loss
    single = MLPRegressor((32,), activation="tanh", epochs=150, learning_rate=0.01,
                          batch_size=32, random_state=0).fit(X, Y[:, 0])
    assert single.predict(X).shape == (300,) and single.score(X, Y[:, 0]) > 0.9


def test_diabetes_regression_matches_scikit_learn():
    """Reference: scikit-learn's MLPRegressor, same architecture and training budget."""
    X, y = load_diabetes(return_X_y=True)
    ours, theirs = [], []
    for seed in range(2):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed)
        for out, reg in ((ours, MLPRegressor((16,), epochs=200, random_state=seed)),
                         (theirs, SkMLPRegressor(hidden_layer_sizes=(16,), max_iter=200,
                                                 random_state=seed))):
            model = make_pipeline(StandardScaler(), TransformedTargetRegressor(
                reg, transformer=StandardScaler()))
            with warnings.catch_warnings():
                # scikit-learn says 200 iterations did not converge: expected here.
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Xtr, ytr)
            out.append(model.score(Xte, yte))
    # scikit-learn gets about 0.35 test R^2 here (a linear model about 0.45).
    assert numpy.mean(ours) > 0.25
    assert numpy.mean(ours) >= numpy.mean(theirs) - 0.05, (ours, theirs)


@pytest.mark.parametrize("params, match", [
    ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes"),
    ({"epochs": 0}, "epochs"),
    ({"batch_size": "big"}, "batch_size"),
    ({"validation_fraction": 1.5}, "validation_fraction"),
    ({"dtype": "float16"}, "dtype"),
    ({"optimizer": "adamw"}, "adamw"),
    ({"activation": "swishy"}, "swishy"),
])
def test_bad_parameters_name_themselves(iris, params, match):
    X, y = iris
    with pytest.raises((TypeError, ValueError), match=match):
        MLPClassifier(**{**FAST, **params}).fit(X, y)


def test_single_class_is_refused(iris):
    X, _ = iris
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier(**FAST).fit(X, numpy.ones(150))


def test_backends_agree_and_accept_their_own_arrays(iris, backend_name, net_kwargs):
    """Fit on each backend from that backend's arrays; predictions match NumPy's."""
    X, y = iris
    params = dict(hidden_layer_sizes=(8,), epochs=20, learning_rate=0.01, random_state=0,
                  dtype="float64")
    if backend_name == "numpy_readonly":
        pytest.skip("a test namespace: its networks are not picklable by name")
    reference = MLPClassifier(**params).fit(X, y)
    backend = pm.resolve_backend(**net_kwargs)
    Xb = backend.asarray(X)
    clf = MLPClassifier(**params, **net_kwargs).fit(Xb, backend.asarray(y))
    assert array_backend_name(clf.network_.theta) == array_backend_name(Xb)
    numpy.testing.assert_allclose(clf.predict_proba(Xb), reference.predict_proba(X),
                                  atol=testing.atol_for("float64") * 100)
    assert clf.score(Xb, backend.asarray(y)) == reference.score(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    numpy.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
