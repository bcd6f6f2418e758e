"""polymlp-extras: activations, losses, optimizers, layer types and initializers for polymlp.

Installed, it registers its objects by name through entry points (see
``pyproject.toml``), so ``pm.Dense(64, activation="swish")``,
``net.output(..., loss="huber")``, ``net.fit(..., optimizer="lion")`` and
``net.stack("layer_norm")`` just work, on every backend.  Nothing here is
imported until a name is first used.
"""

__version__ = "0.1.0"

from .activations import GELU, Mish, SiLU, Softplus, Swish
from .initializers import LeCunNormal, LeCunUniform, Orthogonal
from .layers import Dropout, LayerNorm
from .losses import Hinge, Huber
from .optimizers import AdamW, Lion, RMSprop

__all__ = ["GELU", "AdamW", "Dropout", "Hinge", "Huber", "LayerNorm", "LeCunNormal",
           "LeCunUniform", "Lion", "Mish", "Orthogonal", "RMSprop", "SiLU", "Softplus", "Swish"]
