"""fit() keeps its per-batch-size slicer across calls (compiled once on JAX)."""

import pickle

import numpy

import polymlp as pm


def test_batch_slicer_is_reused_across_fits_and_dropped_by_pickle(net_kwargs):
    rng = numpy.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)
    net = pm.Network(3, seed=0, **net_kwargs).output(pm.Dense(2, "softmax"))
    net.fit(x, y, epochs=1, batch_size=8)
    first = net._slicers[8]
    net.fit(x, y, epochs=1, batch_size=8)
    assert net._slicers[8] is first
    net.fit(x, y, epochs=1, batch_size=5)
    assert set(net._slicers) == {8, 5}
    if "numpy_readonly" not in repr(net_kwargs.get("backend")):
        again = pickle.loads(pickle.dumps(net))
        assert again._slicers == {}
        again.fit(x, y, epochs=1, batch_size=8)
