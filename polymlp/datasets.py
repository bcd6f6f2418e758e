"""Data sets: the seed experiment's hypercube, exactly as specified."""

import math

import numpy

N_BITS = 14
N_CLASSES = 4
N_TRAIN = 13107


def hypercube(seed=12345):
    """All 16,384 vectors of {-1, 1}^14 with 4 classes from a fixed random teacher.

    Row ``i`` has ``x[i, j] = +1`` if bit ``j`` of ``i`` is set, else ``-1``
    (float32). Labels are ``argmax(tanh(x @ A + a) @ B)`` in float64 with
    ``A``, ``a``, ``B`` drawn from ``numpy.random.default_rng(seed)``, which
    then draws the 80/20 split.

    Returns
    -------
    x_train, y_train, x_test, y_test : NumPy arrays
        13,107 and 3,277 rows; labels are int64 in ``0..3``.
    """
    rng = numpy.random.default_rng(seed)
    codes = numpy.arange(2 ** N_BITS)[:, None]
    bits = (codes >> numpy.arange(N_BITS)[None, :]) & 1
    x = numpy.where(bits == 1, 1.0, -1.0).astype(numpy.float32)
    A = rng.standard_normal((N_BITS, 16)) * 0.5 / math.sqrt(N_BITS)
    a = 0.1 * rng.standard_normal(16)
    B = rng.standard_normal((16, N_CLASSES))
    y = numpy.argmax(numpy.tanh(x.astype(numpy.float64) @ A + a) @ B, axis=1).astype(numpy.int64)
    perm = rng.permutation(2 ** N_BITS)
    train, test = perm[:N_TRAIN], perm[N_TRAIN:]
    return x[train], y[train], x[test], y[test]
