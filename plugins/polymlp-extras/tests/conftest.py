"""Fixtures for polymlp-extras' tests.

The kit tests import the classes directly and run from a source checkout;
tests that use the plugins *by name* need the package installed (its entry
points are the only way polymlp finds them) and skip cleanly otherwise.
"""

import importlib.metadata

import pytest

import polymlp as pm


@pytest.fixture
def installed():
    """Skip unless polymlp-extras is installed, so that its entry points are visible."""
    try:
        dist = importlib.metadata.distribution("polymlp-extras")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("polymlp-extras is not installed (pip install ./plugins/polymlp-extras)")
    pm.registry.refresh()
    return dist


@pytest.fixture(scope="session")
def hypercube():
    return pm.datasets.hypercube()
