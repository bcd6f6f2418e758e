"""In-place kernels: faster forms of a component's pure methods, declared by the component.

A component offers an in-place kernel by defining a method of one of the
names below; the engine uses it where the backend's arrays may be written
(``Backend.writable``: NumPy, PyTorch) and the pure methods everywhere else.
A kernel must give the numbers its pure methods give (the tests check each
one).  A subclass that overrides a pure method but inherits the kernel
would train with its parent's rule, so a kernel counts only when the class
defining it is the class (or a subclass of the class) defining each pure
method it mirrors.

=====================  ==========================================  =====================
kernel                 what it does                                mirrors
=====================  ==========================================  =====================
``forward_inplace``    layer/activation forward into new or its     ``forward``, ``value``
                       own arrays (may overwrite the
                       pre-activations it made)
``backward_inplace``   layer: writes the parameter gradients into   ``backward``,
                       the views it is given; activation: may       ``backward_delta``,
                       overwrite ``grad``                           ``derivative``
``linear_inplace``     a layer's pre-activations ``z`` only         ``forward``
``output_inplace``     loss fused with the output activation,       ``output_value``,
                       overwriting ``z``                            ``output_delta``
``update_inplace``     optimizer step into the parameters/state     ``update``
=====================  ==========================================  =====================
"""

from __future__ import annotations

import functools

MIRRORS = {
    "forward_inplace": ("forward", "value"),
    "backward_inplace": ("backward", "backward_delta", "derivative"),
    "linear_inplace": ("forward",),
    "output_inplace": ("output_value", "output_delta"),
    "update_inplace": ("update",),
}


def _owner(cls, attribute):
    """The class in `cls`'s MRO that defines `attribute` (None if none does)."""
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return klass
    return None


@functools.cache
def _valid(cls, name):
    owner = _owner(cls, name)
    if owner is None or vars(owner)[name] is None:
        return False
    for pure in MIRRORS[name]:
        defined = _owner(cls, pure)
        if defined is not None and not issubclass(owner, defined):
            return False
    return True


def kernel(obj, name):
    """`obj`'s bound in-place kernel `name`, or None when it does not offer one (validly).

    A pure method replaced on the instance itself (a test double, a patch)
    also turns the kernel off.
    """
    if obj is None or not _valid(type(obj), name):
        return None
    own = getattr(obj, "__dict__", None)
    if own and any(pure in own for pure in MIRRORS[name]):
        return None
    return getattr(obj, name)
