"""The hypercube data set follows its specification to the letter."""

import math

import numpy

import polymlp as pm


def test_hypercube_spec():
    x_train, y_train, x_test, y_test = pm.datasets.hypercube()
    assert x_train.shape == (13107, 14) and x_test.shape == (3277, 14)
    assert x_train.dtype == numpy.float32 and y_train.dtype == numpy.int64
    assert numpy.bincount(y_train).tolist() == [3355, 3102, 3262, 3388]
    # Rebuild independently from the written specification.
    codes = numpy.arange(16384)
    x = numpy.array([[1.0 if (i >> j) & 1 else -1.0 for j in range(14)] for i in codes])
    rng = numpy.random.default_rng(12345)
    A = rng.standard_normal((14, 16)) * 0.5 / math.sqrt(14)
    a = 0.1 * rng.standard_normal(16)
    B = rng.standard_normal((16, 4))
    y = numpy.argmax(numpy.tanh(x @ A + a) @ B, axis=1)
    perm = rng.permutation(16384)
    numpy.testing.assert_array_equal(x_train, x[perm[:13107]])
    numpy.testing.assert_array_equal(y_test, y[perm[13107:]])
    # Every vertex appears exactly once across the split.
    all_x = numpy.concatenate([x_train, x_test])
    assert len({row.tobytes() for row in all_x}) == 16384


def test_hypercube_seed_changes_split():
    a = pm.datasets.hypercube(seed=1)[1]
    b = pm.datasets.hypercube()[1]
    assert not numpy.array_equal(a, b)
