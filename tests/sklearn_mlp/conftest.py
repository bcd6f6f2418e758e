"""scikit-learn's MLP tests: each runs once per selected backend (see _polymlp_estimators)."""

import os
import sys

import pytest

from polymlp import testing

sys.path.insert(0, os.path.dirname(__file__))
pytest.importorskip("sklearn")

import _polymlp_estimators  # noqa: E402


@pytest.fixture(autouse=True)
def _session_backend(backend_name):
    if not testing.available(backend_name):
        pytest.skip(f"backend {backend_name}: not available")
    _polymlp_estimators.bind(backend_name)
    yield
    _polymlp_estimators.bind("numpy")


def _seeds():
    # scikit-learn's global_random_seed fixture: SKLEARN_TESTS_GLOBAL_RANDOM_SEED, default 42.
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", "42")
    if value == "all":
        return list(range(100))
    if "-" in value:
        lo, hi = value.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(value)]


def pytest_generate_tests(metafunc):
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", _seeds())
