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


def test_plot_titles_smooths_and_marks_epochs(tmp_path, hypercube):
    pytest.importorskip("matplotlib")
    import numpy

    import polymlp as pm

    x, y = hypercube[0][:320], hypercube[1][:320]
    net = pm.Network(14, name="demo 14-8-4", seed=0).stack(pm.Dense(8, "relu"))
    net.output(pm.Dense(4, "softmax"))
    hist = net.fit(x, y, epochs=4, batch_size=16, validation_data=(x, y), validation_freq=5)
    assert hist.name == "demo 14-8-4" and hist.epoch_ends == [20, 40, 60, 80]
    fig = hist.plot(tmp_path / "p.png")
    assert fig._suptitle.get_text() == "demo 14-8-4"  # the network's name by default
    cost = fig.axes[0]
    raw, mean, test = cost.get_lines()[:3]
    assert raw.get_alpha() < 0.5 < mean.get_linewidth()  # raw faint, the average on top
    window = min(20, 80 // 20)  # one epoch (20 steps), at most a 20th of the curve
    expected = [numpy.mean(hist.loss[max(0, i - window + 1):i + 1]) for i in range(80)]
    numpy.testing.assert_allclose(mean.get_ydata(), expected, rtol=1e-9)
    assert list(test.get_xdata()) == [i for i, v in zip(hist.iteration, hist.val_loss)
                                      if not math.isnan(v)]
    marks = [line.get_xdata()[0] for line in cost.get_lines()[3:]]
    assert marks == [20.5, 40.5, 60.5]  # epoch ends inside the curve
    assert hist.plot(title="mine")._suptitle.get_text() == "mine"
    with pytest.raises(ValueError, match="smooth"):
        hist.plot(smooth=0)
