"""Deliberately broken polymlp plugins (see pyproject.toml); used by isolation tests."""

__version__ = "0.0.1"
