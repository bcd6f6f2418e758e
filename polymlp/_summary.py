"""``Network.summary()``: a table of layers, shapes, activations and parameter counts."""

from __future__ import annotations

import math

_HEAD = ("#", "layer", "shape", "activation", "params")


def summary_text(network):
    """The summary table of `network` as one string (columns sized to their contents)."""
    rows = []
    width = network.input_size
    for i, layer in enumerate(network.layers):
        count = sum(math.prod(s.shape) for s in layer.parameter_specs())
        act = getattr(getattr(layer, "activation", None), "name", "-")
        rows.append((str(i + 1), str(layer.name), f"{width} -> {layer.output_size}", str(act),
                     f"{count:,}"))
        width = layer.output_size
    # Each column as wide as its longest entry (long plugin layer names included).
    widths = [max(len(r[c]) for r in rows + [_HEAD]) for c in range(len(_HEAD))]
    widths[0], widths[4] = max(widths[0], 3), max(widths[4], 9)
    widths[1], widths[2], widths[3] = max(widths[1], 10), max(widths[2], 14), max(widths[3], 12)

    def line(r):
        return (f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}} {r[2]:<{widths[2]}} "
                f"{r[3]:<{widths[3]}} {r[4]:>{widths[4]}}").rstrip()

    loss = network.loss_fn.name if network.loss_fn else "(no output layer yet)"
    return "\n".join([f"Network {network.name!r} (backend {network.backend.name}, device "
                      f"{network.device}, {network.dtype_name})", line(_HEAD)]
                     + [line(r) for r in rows]
                     + [f"loss: {loss}; total parameters: {network.n_parameters:,}"])


def summary(network, print_fn=print):
    """Print the table with `print_fn` and return None, or return it when `print_fn` is None."""
    text = summary_text(network)
    if print_fn is None:
        return text
    print_fn(text)
    return None
