"""fit(validation_data=...): once per epoch by default, every N iterations on request."""

import math

import pytest

import polymlp as pm


def _net():
    net = pm.Network(14, seed=0).stack(pm.Dense(8, "relu"))
    return net.output(pm.Dense(4, "softmax"))


def _evaluated(column):
    return [not math.isnan(v) for v in column]


def test_default_validates_once_per_epoch_at_its_end(hypercube):
    x, y = hypercube[0][:100], hypercube[1][:100]
    net = _net()
    hist = net.fit(x, y, epochs=3, batch_size=32, validation_data=(x, y))
    # 4 batches per epoch (32, 32, 32, 4): only each epoch's last iteration is evaluated.
    assert hist.iteration == list(range(1, 13))
    assert _evaluated(hist.val_loss) == [False, False, False, True] * 3
    assert _evaluated(hist.val_accuracy) == [False, False, False, True] * 3
    # The last value is the validation loss of the trained network.
    assert hist.val_loss[-1] == pytest.approx(net.loss(x, y), rel=1e-5)


def test_validation_freq_counts_iterations_and_keeps_epoch_ends(hypercube):
    x, y = hypercube[0][:100], hypercube[1][:100]
    hist = _net().fit(x, y, epochs=2, batch_size=32, validation_data=(x, y), validation_freq=3)
    # Iterations 1..8; evaluated at 3, 6 (multiples of 3) and 4, 8 (epoch ends).
    assert [i for i, e in zip(hist.iteration, _evaluated(hist.val_loss)) if e] == [3, 4, 6, 8]


def test_epoch_records_validate_every_epoch(hypercube):
    x, y = hypercube[0][:100], hypercube[1][:100]
    hist = _net().fit(x, y, epochs=3, batch_size=32, record="epoch", validation_data=(x, y),
                      validation_freq=2)
    assert hist.epoch == [1, 2, 3] and all(_evaluated(hist.val_loss))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_validation_freq_must_be_a_positive_int(hypercube, bad):
    x, y = hypercube[0][:10], hypercube[1][:10]
    with pytest.raises((TypeError, ValueError), match="validation_freq"):
        _net().fit(x, y, epochs=1, validation_data=(x, y), validation_freq=bad)


def test_reproduce_keeps_its_per_ten_iteration_curve(monkeypatch):
    import polymlp.cli as cli

    seen = {}
    monkeypatch.setattr(cli, "reproduce", lambda args: seen.update(vars(args)) or 0)
    assert cli.main(["reproduce"]) == 0
    assert seen["validation_freq"] == 10
