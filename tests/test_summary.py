"""Network.summary(): printed once (returns None) or returned, columns aligned."""

import polymlp as pm


class VeryLongNamedDenseLayer(pm.Dense):
    name = "very_long_named_dense_layer"


def _net():
    net = pm.Network(14, name="sum", seed=0).stack(pm.Dense(100, "relu"))
    net.stack(VeryLongNamedDenseLayer(40, "tanh"))
    return net.output(pm.Dense(4, "softmax"))


def test_prints_once_and_returns_none(capsys):
    net = _net()
    assert net.summary() is None  # a REPL shows nothing more
    out = capsys.readouterr().out
    assert out == net.summary(print_fn=None) + "\n"
    lines = []
    assert net.summary(print_fn=lines.append) is None and lines == [out[:-1]]


def test_columns_stay_aligned_with_long_layer_names():
    lines = _net().summary(print_fn=None).splitlines()
    head, rows = lines[1], lines[2:5]
    assert [r.split()[1] for r in rows] == ["dense", "very_long_named_dense_layer", "dense"]
    for column in ("shape", "activation"):
        start = head.index(column)
        for row, value in zip(rows, (("14 -> 100", "relu"), ("100 -> 40", "tanh"),
                                     ("40 -> 4", "softmax"))):
            # Every row's entry starts where the header's does.
            assert row[start:].startswith(value[0] if column == "shape" else value[1]), row
    ends = {len(line) for line in [head] + rows}
    assert len(ends) == 1  # right-aligned parameter counts end in the same column
    assert rows[0].endswith("1,500") and rows[1].endswith("4,040") and rows[2].endswith("164")
    assert lines[-1] == "loss: cross_entropy; total parameters: 5,704"
