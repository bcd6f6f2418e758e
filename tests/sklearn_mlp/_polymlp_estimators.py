"""polymlp's estimators bound to the backend of the running test session.

scikit-learn's MLP tests import ``MLPClassifier`` and ``MLPRegressor`` from
here: calling them builds :mod:`polymlp.sklearn` estimators with
``backend=``/``device=`` of the test's backend (set by this directory's
conftest from ``POLYMLP_TEST_BACKENDS``), unless the test passes its own.
"""

from polymlp import sklearn as _sk
from polymlp import testing

_current = {"name": "numpy"}


def bind(name):
    _current["name"] = name


def _kwargs(kwargs):
    for key, value in testing.network_kwargs(_current["name"]).items():
        kwargs.setdefault(key, value)
    return kwargs


def MLPClassifier(*args, **kwargs):  # noqa: N802 - stands in for the class
    return _sk.MLPClassifier(*args, **_kwargs(kwargs))


def MLPRegressor(*args, **kwargs):  # noqa: N802 - stands in for the class
    return _sk.MLPRegressor(*args, **_kwargs(kwargs))
