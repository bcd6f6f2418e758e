"""History: columns, CSV round trip, plot."""

import math

import pytest

from polymlp import History


def test_csv_round_trip(tmp_path):
    h = History("iteration")
    for i in range(1, 4):
        h.append(iteration=i, loss=1.0 / i, accuracy=0.5, val_loss=math.nan if i == 2 else 2.0)
    path = h.to_csv(tmp_path / "h.csv")
    assert path.read_text().splitlines()[0] == "iteration,loss,accuracy,val_loss"
    back = History.from_csv(path)
    assert back.loss == h.loss and back.iteration == [1, 2, 3]
    assert math.isnan(back.val_loss[1]) and back.last("val_loss") == 2.0
    with pytest.raises(AttributeError, match="no column 'val_accuracy'"):
        back.val_accuracy


def test_concat_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    a = History("iteration")
    a.append(iteration=1, loss=1.0, accuracy=0.3, val_loss=1.1, val_accuracy=0.2)
    b = History("iteration")
    b.append(iteration=2, loss=0.5, accuracy=0.6, val_loss=math.nan, val_accuracy=math.nan)
    both = a.concat(b)
    assert both.iteration == [1, 2] and len(both) == 2
    both.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 5000
