"""Fails to import: it needs a module that does not exist."""

import polymlp_broken_dependency_that_does_not_exist  # noqa: F401

Cube = xp = None
