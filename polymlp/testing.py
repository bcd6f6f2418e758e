"""Helpers for testing polymlp and its plugins on every installed backend.

``backend_params()`` lists the backends to test (narrowed by the
``POLYMLP_TEST_BACKENDS`` environment variable, a comma-separated list), as
keyword arguments for :class:`polymlp.Network`.  ``numpy_readonly`` is a
NumPy namespace whose arrays are read-only, which catches in-place writes
(that would break on JAX) without JAX; ``array_api_strict`` runs on its
non-default ``device1`` so that a forgotten ``device=`` shows up on CPU.
"""

from __future__ import annotations

from ._test_backends import (ALL_TEST_BACKENDS, atol_for, available, network_kwargs,  # noqa: F401
                             numpy_readonly, selected_backends)

# The conformance kit for plugin authors.
from ._conformance import (ConformanceError, check_activation, check_initializer,
                           check_layer, check_loss, check_optimizer)
