"""Fails at import time with an error of its own."""

raise RuntimeError("polymlp_broken.raises_on_import refuses to be imported")
