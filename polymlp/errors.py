"""Exception types raised by polymlp."""


class PolymlpError(Exception):
    """Base class of polymlp's own exceptions."""


class BackendError(PolymlpError, ValueError):
    """A backend or device is unknown, not installed, or lacks what was asked (e.g. float64)."""


class PluginError(PolymlpError, RuntimeError):
    """A plugin could not be imported or does not satisfy its kind's protocol."""


class NotBuiltError(PolymlpError, RuntimeError):
    """The network has no output layer yet (call ``output()`` first)."""


class TrainingDivergedError(PolymlpError, FloatingPointError):
    """Training produced a non-finite loss or weight."""


class ModelFileError(PolymlpError, ValueError):
    """A model file is missing, truncated, corrupted, tampered with or unsupported."""
