"""Install hints that fit how polymlp was installed: from a source checkout or a package.

``pip install 'polymlp[torch]'`` fetches polymlp from the package index; in a
source checkout (an editable install, or ``PYTHONPATH`` pointing at it) the
extra is installed with ``pip install '.[torch]'`` from the checkout's root,
and local plugin packages such as ``plugins/polymlp-extras`` with
``pip install ./plugins/polymlp-extras``.  Error messages say the command that
applies here.
"""

from __future__ import annotations

import functools
import os
import re

_NAME = re.compile(r'^\s*name\s*=\s*["\']polymlp["\']\s*$', re.MULTILINE)


def checkout_root(package_dir=None):
    """The root of the polymlp source checkout this package runs from, or None.

    A checkout is recognised by a ``pyproject.toml`` naming the project
    ``polymlp`` next to the package directory (an installed wheel has none).
    """
    package_dir = package_dir or os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.abspath(package_dir))
    try:
        with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    return root if _NAME.search(text) else None


@functools.cache
def _root():
    return checkout_root()


def install_hint(extra=None, *, root=False):
    """The pip command that installs polymlp's `extra` here, e.g. ``pip install '.[torch]'``.

    `root` overrides the detection (tests): a path for a checkout, None for an
    installed package; False (the default) detects.
    """
    where = _root() if root is False else root
    spec = f"[{extra}]" if extra else ""
    if where is None:
        return f"pip install 'polymlp{spec}'"
    return (f"pip install '.{spec}' from the polymlp source checkout ({where}), or "
            f"pip install 'polymlp{spec}' for the released package")


def plugin_hint(package, version=None, *, root=False):
    """The pip command that installs plugin `package` (a local one from the checkout first)."""
    where = _root() if root is False else root
    pinned = f"'{package}=={version}'" if version else package
    if where is not None:
        local = os.path.join("plugins", package)
        if os.path.isfile(os.path.join(where, local, "pyproject.toml")):
            return (f"pip install ./{local} from the polymlp source checkout ({where}) "
                    f"(it is a local package there)")
    return f"pip install {pinned}"
