"""polymlp-extras checks its hyperparameters with polymlp's public checks."""

import pytest

from polymlp import checks
from polymlp_extras import AdamW, Dropout, Huber, LayerNorm, Orthogonal, RMSprop, Swish


def _message(make):
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    return str(info.value)


@pytest.mark.parametrize("make, same_as", [
    (lambda: Huber(delta=-1), lambda: checks.positive_float("delta", -1)),
    (lambda: LayerNorm(epsilon=-1), lambda: checks.positive_float("epsilon", -1)),
    (lambda: AdamW(weight_decay=-0.1), lambda: checks.non_negative_float("weight_decay", -0.1)),
    (lambda: RMSprop(centered=1), lambda: checks.boolean("centered", 1)),
    (lambda: RMSprop(epsilon=-1), lambda: checks.positive_float("epsilon", -1)),
    (lambda: Swish(beta="1"), lambda: checks.positive_float("beta", "1")),
    (lambda: Orthogonal(gain=float("nan")), lambda: checks.finite_float("gain", float("nan"))),
])
def test_messages_come_from_polymlp_checks(make, same_as):
    assert _message(make) == _message(same_as)


def test_dropout_rate_says_what_it_means():
    assert _message(lambda: Dropout(rate=1.0)).endswith(
        "It is the fraction of inputs dropped in training.")


def test_no_private_polymlp_imports():
    import pathlib

    import polymlp_extras

    for path in pathlib.Path(polymlp_extras.__file__).parent.glob("*.py"):
        assert "polymlp._" not in path.read_text(), path
