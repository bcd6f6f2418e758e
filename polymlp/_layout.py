"""Where each parameter lives in the network's one flat vector.

Every parameter of every layer is a slice of one flat array ``theta``; each
layer sees its parameters as reshaped views of that slice.  A
:class:`ParamLayout` holds those slices (a :class:`Slot` per parameter:
offset, size, shape, its name ``layers.<i>.<name>`` and fan-in/fan-out),
draws the initial values on the host, and cuts flat vectors into per-layer
views (on the backend) or named copies (on the host).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import data
from .layers import check_param_spec


@dataclass(frozen=True)
class Slot:
    """One parameter's place in the flat vector."""

    layer: int
    name: str  # the ParamSpec's name, e.g. "W"
    offset: int
    size: int
    shape: tuple
    spec: object  # the layer's ParamSpec

    @property
    def key(self):
        """``layers.<i>.<name>``: the parameter's name in saved files."""
        return f"layers.{self.layer}.{self.name}"

    @property
    def fan_in(self):
        return self.shape[0] if self.shape else 1

    @property
    def fan_out(self):
        if len(self.shape) > 1:
            return self.shape[1]
        return self.shape[0] if self.shape else 1


class ParamLayout:
    """The slots of every layer's parameters, in order (layer by layer, spec by spec).

    Parameters
    ----------
    layers : list of Layer
        Built layers; their :meth:`~polymlp.Layer.parameter_specs` are checked
        here (see :func:`polymlp.layers.check_param_spec`).
    """

    def __init__(self, layers):
        self.per_layer = []
        offset = 0
        for i, layer in enumerate(layers):
            slots = []
            for spec in layer.parameter_specs():
                spec = check_param_spec(spec, layer, i)
                size = math.prod(spec.shape)
                slots.append(Slot(i, spec.name, offset, size, tuple(spec.shape), spec))
                offset += size
            self.per_layer.append(tuple(slots))
        self.size = offset

    @property
    def slots(self):
        """Every slot, in flat order."""
        return [s for slots in self.per_layer for s in slots]

    @property
    def shapes(self):
        return [s.shape for s in self.slots]

    @property
    def keys(self):
        """``["layers.0.W", "layers.0.b", ...]``."""
        return [s.key for s in self.slots]

    def initial_host(self, rng, dtype_name):
        """Initial values drawn on the host from `rng`: one flat NumPy vector."""
        host = [s.spec.initializer(s.shape, rng=rng, fan_in=s.fan_in, fan_out=s.fan_out)
                for s in self.slots]
        return data.flat_host(host, dtype_name)

    def penalty_mask_host(self, dtype_name):
        """1 where the L2 penalty applies (``ParamSpec.penalized``), else 0: a flat host
        vector, or None when no parameter is penalized."""
        mask = data.flat_host([[float(s.spec.penalized)] * s.size for s in self.slots],
                              dtype_name)
        return mask if mask.any() else None

    def views(self, theta, xp):
        """Per-layer tuples of parameter arrays: reshaped slices of `theta` (views on NumPy)."""
        return [tuple(xp.reshape(theta[s.offset:s.offset + s.size], s.shape) for s in slots)
                for slots in self.per_layer]

    def split_host(self, flat):
        """Copies of each parameter from a flat host vector, in order."""
        return [flat[s.offset:s.offset + s.size].reshape(s.shape).copy() for s in self.slots]

    def flat_from_host(self, weights, dtype_name):
        """One flat host vector from ``[W1, b1, ...]`` (``get_weights()``'s shape), checked."""
        shapes = self.shapes
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"`weights` must be a list of arrays; got {type(weights).__name__}.")
        if len(weights) != len(shapes):
            raise ValueError(f"`weights` has {len(weights)} arrays but the network has "
                             f"{len(shapes)} parameters (shapes {shapes}); pass a list shaped "
                             f"like get_weights(): [W1, b1, W2, b2, ...].")
        host = []
        for i, (w, shape) in enumerate(zip(weights, shapes)):
            arr = data.host_array(w, f"weights[{i}]")
            if tuple(arr.shape) != shape:
                raise ValueError(f"`weights[{i}]` has shape {tuple(arr.shape)}; expected {shape} "
                                 f"(W is (inputs, outputs), b is (outputs,)).")
            host.append(arr)
        flat = data.flat_host(host, dtype_name)
        if not bool((abs(flat) < float("inf")).all()):
            raise ValueError("`weights` contain NaN or infinite values (or values too large "
                             f"for {dtype_name}); pass finite weights.")
        return flat

    def named_host(self, flat):
        """``{"layers.0.W": array, ...}`` from a flat host vector (views of it)."""
        return {s.key: flat[s.offset:s.offset + s.size].reshape(s.shape) for s in self.slots}
