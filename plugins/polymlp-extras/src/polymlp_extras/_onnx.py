"""ONNX export helpers of the ``to_onnx`` mappings (used only by ``polymlp.onnx``).

onnxruntime has no float64 ``Erf`` kernel, so the exact GELU of a float64
network is exported by running the very functions of :mod:`._special` on a
symbolic namespace whose arrays are names in the graph: the exported graph is
then the same Chebyshev evaluation polymlp runs, operation for operation.
Only what those functions use is defined here.
"""


class _Value:
    """A value of the graph being built; Python operators add nodes."""

    def __init__(self, ns, name):
        self.ns, self.name = ns, name

    def _binary(self, op, other, reverse=False):
        a, b = self.name, self.ns.name_of(other)
        return _Value(self.ns, self.ns.builder.node(op, [b, a] if reverse else [a, b]))

    def __add__(self, other):
        return self._binary("Add", other)

    def __radd__(self, other):
        return self._binary("Add", other, reverse=True)

    def __sub__(self, other):
        return self._binary("Sub", other)

    def __rsub__(self, other):
        return self._binary("Sub", other, reverse=True)

    def __mul__(self, other):
        return self._binary("Mul", other)

    def __rmul__(self, other):
        return self._binary("Mul", other, reverse=True)

    def __truediv__(self, other):
        return self._binary("Div", other)

    def __rtruediv__(self, other):
        return self._binary("Div", other, reverse=True)

    def __neg__(self):
        return _Value(self.ns, self.ns.builder.node("Neg", [self.name]))

    def __lt__(self, other):
        return self._binary("Less", other)

    def __le__(self, other):
        return self._binary("LessOrEqual", other)

    def __gt__(self, other):
        return self._binary("Greater", other)

    def __ge__(self, other):
        return self._binary("GreaterOrEqual", other)


class GraphNamespace:
    """The few ``xp`` functions :mod:`._special` calls, as ONNX nodes of `builder`."""

    def __init__(self, builder):
        self.builder = builder

    def value(self, name):
        return _Value(self, name)

    def name_of(self, x):
        return x.name if isinstance(x, _Value) else self.builder.constant(float(x), "c")

    def _unary(self, op, x):
        return _Value(self, self.builder.node(op, [self.name_of(x)]))

    def abs(self, x):
        return self._unary("Abs", x)

    def exp(self, x):
        return self._unary("Exp", x)

    def minimum(self, a, b):
        return _Value(self, self.builder.node("Min", [self.name_of(a), self.name_of(b)]))

    def maximum(self, a, b):
        return _Value(self, self.builder.node("Max", [self.name_of(a), self.name_of(b)]))

    def where(self, cond, a, b):
        return _Value(self, self.builder.node("Where", [cond.name, self.name_of(a),
                                                        self.name_of(b)]))

    def zeros_like(self, x):
        return 0.0 * x
