"""Shared fixtures: every test that takes `backend_name` runs on each selected backend."""

import numpy
import pytest

from polymlp import testing


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", testing.selected_backends())


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
