"""Shared fixtures and backend selection.

Tests that take `backend_name` (or `net_kwargs`) run once per selected backend.
Tests about one backend carry ``@pytest.mark.backend("torch")`` and run in that
backend's session; all other tests run in the session that selects NumPy, so
that each nox session only adds what is specific to its backend.
"""

import os

import numpy
import pytest

from polymlp import testing


def pytest_configure(config):
    config.addinivalue_line("markers", "backend(name): run only where backend `name` is selected")
    config.addinivalue_line("markers", "slow: a long test (the kill soak); runs only with "
                                       "POLYMLP_RUN_SLOW=1, as CI's numpy session does")


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", testing.selected_backends())


def pytest_collection_modifyitems(config, items):
    selected = testing.selected_backends()
    narrowed = bool(os.environ.get("POLYMLP_TEST_BACKENDS", "").strip())
    run_slow = os.environ.get("POLYMLP_RUN_SLOW", "") == "1"
    for item in items:
        if item.get_closest_marker("slow") is not None and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: set POLYMLP_RUN_SLOW=1 (CI's numpy "
                                                    "session does)"))
        marker = item.get_closest_marker("backend")
        if marker is not None:
            name = marker.args[0]
            if name not in selected:
                item.add_marker(pytest.mark.skip(reason=f"runs in the {name} session"))
        elif "backend_name" not in item.fixturenames and narrowed and "numpy" not in selected:
            item.add_marker(pytest.mark.skip(reason="backend-independent: runs in the numpy session"))


@pytest.fixture
def net_kwargs(backend_name):
    """``backend=``/``device=`` keyword arguments for a Network on this test's backend."""
    if not testing.available(backend_name):
        reason = "no CUDA device" if backend_name == "cupy" else "not installed"
        pytest.skip(f"backend {backend_name}: {reason}")
    return testing.network_kwargs(backend_name)


@pytest.fixture
def rng():
    return numpy.random.default_rng(0)


@pytest.fixture(scope="session")
def hypercube():
    import polymlp as pm

    return pm.datasets.hypercube()
