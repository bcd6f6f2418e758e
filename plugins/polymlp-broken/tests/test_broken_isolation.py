"""With polymlp-broken installed, polymlp still imports, lists and trains.

Each broken entry point is reported (RuntimeWarning naming the entry point
and the distribution) and raises PluginError carrying the original error
when used by name; the shadowed one leaves the built-in in charge.
Skipped unless polymlp-broken is installed.
"""

import importlib.metadata
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import polymlp as pm


@pytest.fixture(autouse=True)
def installed():
    try:
        importlib.metadata.distribution("polymlp-broken")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("polymlp-broken is not installed (pip install ./plugins/polymlp-broken)")
    pm.registry.refresh()
    yield
    pm.registry.refresh()


BROKEN = [
    ("activations", "broken_import", ModuleNotFoundError, "polymlp_broken_dependency"),
    ("activations", "missing_derivative", pm.PluginError, "does not implement derivative"),
    ("activations", "not_a_class", pm.PluginError, "must be a subclass of polymlp.Activation"),
    ("losses", "wrong_base", pm.PluginError, "must be a subclass of polymlp.Loss"),
    ("optimizers", "crashes_on_import", RuntimeError, "refuses to be imported"),
    ("layers", "no_xp", pm.PluginError, "does not accept the keyword argument"),
    ("initializers", "missing_attr", AttributeError, "DoesNotExist"),
]


def test_import_and_training_with_builtins_do_not_touch_it():
    code = (
        "import sys, polymlp as pm\n"
        "x, y, xt, yt = pm.datasets.hypercube()\n"
        "net = pm.Network(14, seed=0).stack(pm.Dense(16, activation='relu'))\n"
        "net.output(pm.Dense(4, activation='softmax'), loss='cross_entropy')\n"
        "net.fit(x[:2000], y[:2000], epochs=2, batch_size=32, optimizer='adam')\n"
        "print(net.evaluate(xt, yt)['accuracy'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('polymlp_broken')))\n")
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    accuracy, imported = out.stdout.splitlines()
    assert float(accuracy) > 0.5
    assert imported == "[]"  # lazy: nothing of the broken package was imported


@pytest.mark.parametrize("kind, name, cause, text", BROKEN, ids=[b[1] for b in BROKEN])
def test_using_a_broken_plugin_raises_with_the_original_error(kind, name, cause, text):
    with pytest.warns(RuntimeWarning, match=rf"{name}.*polymlp-broken|polymlp-broken.*{name}"):
        with pytest.raises(pm.PluginError, match=text) as info:
            pm.registry.load(kind, name)
    assert isinstance(info.value.__cause__, cause)
    assert "polymlp-broken" in str(info.value)
    # Reported once; later uses raise the same error without a new warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(pm.PluginError):
            pm.registry.load(kind, name)


def test_shadowed_builtin_and_the_user_facing_entry_points():
    with pytest.warns(RuntimeWarning, match="shadowed"):
        assert "broken_import" in pm.registry.names("activations")
    assert pm.registry.load("activations", "relu") is pm.activations.ReLU
    with pytest.raises(pm.PluginError, match="broken_import"):
        pm.Dense(3, activation="broken_import")
    with pytest.raises(pm.PluginError, match="crashes_on_import"):
        pm.Network(2).output(pm.Dense(2, "softmax")).fit(
            np.zeros((4, 2)), [0, 1, 0, 1], epochs=1, optimizer="crashes_on_import")
    # The shadowing plugin can still be picked explicitly.
    shadow = pm.registry.load("activations", "polymlp-broken:relu")
    assert shadow.__name__ == "ShadowReLU"


def test_cli_reports_each_status():
    out = subprocess.run([sys.executable, "-m", "polymlp", "plugins", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(out.stdout)
            if r["source"] == "polymlp-broken"}
    for kind, name, _, _ in BROKEN:
        assert rows[(kind, name)]["status"].startswith("broken: "), rows[(kind, name)]
    assert rows[("activations", "relu")]["status"].startswith("shadowed by built-in")
    backends = subprocess.run([sys.executable, "-m", "polymlp", "backends", "--json"],
                              capture_output=True, text=True, check=True).stdout
    row = next(r for r in json.loads(backends) if r["name"] == "broken_backend")
    assert not row["usable"] and "polymlp_broken_dependency" in row["why"]
