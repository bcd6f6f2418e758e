"""The 14-100-40-4 seed network with polymlp's scikit-learn estimator."""
from polymlp.sklearn import MLPClassifier


def train(x_train, y_train, x_test, y_test, epochs=10):
    clf = MLPClassifier(hidden_layer_sizes=(100, 40), learning_rate_init=0.002, batch_size=32,
                        max_iter=epochs, alpha=0.0, tol=0.0, n_iter_no_change=epochs,
                        random_state=0)
    clf.fit(x_train, y_train)
    return clf.score(x_test, y_test)
