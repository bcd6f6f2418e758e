"""The 14-100-40-4 seed network with polymlp."""
import polymlp as pm


def train(x_train, y_train, x_test, y_test, epochs=10):
    net = pm.Network(14, seed=0)
    net.stack(pm.Dense(100, "relu")).stack(pm.Dense(40, "relu"))
    net.output(pm.Dense(4, "softmax"), loss="cross_entropy")
    net.fit(x_train, y_train, epochs=epochs, batch_size=32, optimizer=pm.Adam(0.002),
            record=None)
    return net.test(x_test, y_test)[2]
