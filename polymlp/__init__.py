"""polymlp: multilayer perceptrons on any Array API library.

The same layers, losses and optimizers train on NumPy, CuPy, PyTorch, JAX
and array-api-strict; activations, losses, optimizers, layer types and
initializers are looked up by name in a plugin registry.
"""

__version__ = "0.1.0"

from . import activations, checks, datasets, initializers, layers, losses, optimizers, registry
from ._array_api import (Backend, describe_backends, enable_compilation_cache, resolve_backend,
                         to_numpy)
from .activations import Activation, ElementwiseActivation
from .errors import (BackendError, ModelFileError, NotBuiltError, PluginError, PolymlpError,
                     TrainingDivergedError)
from .history import History
from .initializers import Initializer
from .layers import Dense, Layer, ParamSpec
from .losses import Loss
from .network import Network
from .optimizers import Adam, GradientDescent, Momentum, Optimizer
from .lbfgs import LBFGS
from .registry import register
from . import callbacks, serialization  # noqa: E402 - after the classes they use
from .serialization import load

__all__ = [
    "Activation", "Adam", "Backend", "BackendError", "Dense", "ElementwiseActivation",
    "GradientDescent", "History", "Initializer", "LBFGS", "Layer", "Loss", "ModelFileError",
    "Momentum",
    "Network", "NotBuiltError", "Optimizer", "ParamSpec", "PluginError", "PolymlpError",
    "TrainingDivergedError", "activations", "checks", "datasets", "describe_backends",
    "enable_compilation_cache", "initializers", "layers", "losses", "optimizers", "register",
    "registry", "resolve_backend", "to_numpy",
]
__all__ += ["callbacks", "load", "serialization"]
