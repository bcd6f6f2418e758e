"""``Network.export``: the format from the argument or the path's suffix, then the writer.

Kept apart from :mod:`polymlp._onnx_export` so that an ``.npz`` export never imports onnx.
"""

from __future__ import annotations

import os

from . import _modelfile  # the file format (serialization, which builds Networks, is above)

FORMATS = ("npz", "onnx")


def export_format(path, format=None):
    """``"onnx"`` or ``"npz"``: `format` when given, else ``"onnx"`` for a ``.onnx`` path."""
    if format is None:
        name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
        name = os.fsdecode(name) if isinstance(name, bytes) else name
        return "onnx" if name.lower().endswith(".onnx") else "npz"
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {list(FORMATS)} (or None: 'onnx' for a "
                         f"'.onnx' path, 'npz' otherwise); got {format!r}.")
    return format


def export(network, path, format=None, **options):
    """Write `network` to `path` as ``.npz`` weights or an ONNX model; return the path."""
    if export_format(path, format) == "onnx":
        from . import _onnx_export

        return _onnx_export.export(network, path, **options)
    if options:
        raise TypeError(f"Options {sorted(options)} apply to format='onnx' only; the .npz "
                        f"export takes none.")
    return _modelfile.export(network, path)
