"""The plugin registry: discovery, laziness, isolation of broken plugins, names and conflicts.

Fake plugin distributions are written to a temporary directory (a
``*.dist-info`` with METADATA and entry_points.txt, plus the plugin's module)
and the registry's discovery is pointed at them, so these tests see exactly
the plugins they declare whatever is installed.  A subprocess test puts the
repository's deliberately broken package, ``plugins/polymlp-broken``, on
``sys.path`` with its metadata, as pip would install it.
"""

import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import uuid
import warnings

import numpy
import pytest

import polymlp as pm
from polymlp import _kinds, cli, registry

REPO = pathlib.Path(__file__).resolve().parents[1]

PLUGIN_MODULE = '''
import polymlp as pm


class Cube(pm.ElementwiseActivation):
    def value(self, z, /, *, xp):
        return z * z * z

    def derivative(self, z, /, *, xp):
        return 3.0 * z * z


class HalfSquare(pm.Loss):
    def value(self, y_hat, y, /, *, xp):
        d = y_hat - y
        return 0.5 * xp.mean(d * d)

    def gradient(self, y_hat, y, /, *, xp):
        return (y_hat - y) / (y.shape[0] * y.shape[1])


class HalfStep(pm.Optimizer):
    def __init__(self, learning_rate=0.02):
        self.learning_rate = learning_rate

    def update(self, params, grads, state, /, *, xp):
        return params - self.learning_rate * grads, {"t": state["t"] + 1}


class Scale(pm.Layer):
    """y = x * s with one learnt scale per feature."""

    def parameter_specs(self):
        return [pm.ParamSpec("s", (self.input_size,), pm.registry.get_initializer("ones_demo"))]

    def forward(self, params, x, /, *, xp, training=False, rng=None):
        (s,) = params
        return x * s, x

    def backward(self, params, cache, grad, /, *, xp, need_input_grad=True):
        (s,) = params
        return (grad * s if need_input_grad else None), (xp.sum(grad * cache, axis=0),)


class Ones(pm.Initializer):
    def __call__(self, shape, *, rng, fan_in, fan_out):
        import numpy
        return numpy.ones(shape)
'''


class FakeSite:
    """Fake installed distributions and plugin modules for one test."""

    def __init__(self, root):
        self.root = root
        self.prefix = "fakeplug_" + uuid.uuid4().hex[:8]
        self.src = root / "src"
        self.site = root / "site"
        self.src.mkdir()
        self.site.mkdir()
        self.distributions = []
        self.loose = []  # EntryPoint objects without a distribution

    def module(self, name, code):
        """Write a plugin module; returns its (unique) import name."""
        full = f"{self.prefix}_{name}"
        (self.src / f"{full}.py").write_text(code)
        return full

    def dist(self, name, entry_points, version="1.0"):
        """Declare an installed distribution with ``{group: {name: value}}`` entry points."""
        info = self.site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{k} = {v}" for k, v in eps.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        self.distributions.append(importlib.metadata.PathDistribution(info))
        registry.refresh()

    def entry_point(self, name, value, group):
        """Add a bare ``importlib.metadata.EntryPoint`` (no distribution behind it)."""
        self.loose.append(importlib.metadata.EntryPoint(name, value, group))
        registry.refresh()

    def discover(self, group):
        found = [ep for d in self.distributions for ep in d.entry_points if ep.group == group]
        return found + [ep for ep in self.loose if ep.group == group]

    def imported(self, name):
        return f"{self.prefix}_{name}" in sys.modules


@pytest.fixture
def fake(tmp_path, monkeypatch):
    site = FakeSite(tmp_path)
    monkeypatch.syspath_prepend(str(site.src))
    monkeypatch.setattr(registry, "_discover", site.discover)
    monkeypatch.delenv(registry.DISABLE_ENV, raising=False)
    registry.refresh()
    yield site
    registry.refresh()
    for mod in [m for m in sys.modules if m.startswith(site.prefix)]:
        del sys.modules[mod]


@pytest.fixture
def good(fake):
    """One distribution, ``fake-dist 1.2``, with a plugin of every kind."""
    mod = fake.module("good", PLUGIN_MODULE)
    fake.dist("fake-dist", {
        "polymlp.activations": {"cube": f"{mod}:Cube"},
        "polymlp.losses": {"half_square": f"{mod}:HalfSquare"},
        "polymlp.optimizers": {"half_step": f"{mod}:HalfStep"},
        "polymlp.layers": {"scale": f"{mod}:Scale"},
        "polymlp.initializers": {"ones_demo": f"{mod}:Ones"},
    }, version="1.2")
    return fake


def test_builtins_satisfy_their_own_protocol():
    for kind in registry.KINDS:
        for cls in _kinds.builtins(kind).values():
            assert registry.check_protocol(kind, cls) is cls


def test_found_plugins_are_usable_by_name_everywhere(good):
    assert {"cube"} <= set(registry.names("activations"))
    assert "half_step" in registry.names("optimizers")
    net = pm.Network(3, seed=0).stack(pm.Dense(4, activation="cube")).stack("scale")
    net.output(pm.Dense(2, activation="identity"), loss="half_square")
    x = 0.5 * numpy.random.default_rng(0).standard_normal((16, 3))
    y = x[:, :2] * 0.5
    before = net.loss(x, y)
    net.fit(x, y, epochs=5, batch_size=8, optimizer="half_step", record=None)
    assert net.loss(x, y) < before
    act, layer = net.layers[0].activation, net.layers[1]
    assert type(act).__name__ == "Cube" and act.name == "cube"
    assert type(layer).__name__ == "Scale" and type(net.optimizer).__name__ == "HalfStep"
    assert registry.provenance(act) == ("fake-dist", "1.2")
    assert registry.provenance(pm.Dense(2)) == ("polymlp", pm.__version__)
    assert registry.to_config(act) == {"name": "cube", "config": {}}
    # A config names the class; get() rebuilds it, as saving and Network.to() will.
    rebuilt = registry.get("optimizers", registry.to_config(net.optimizer))
    assert type(rebuilt) is type(net.optimizer)
    entry = next(e for e in registry.entries("activations") if e.name == "cube")
    assert (entry.source, entry.version, entry.status) == ("fake-dist", "1.2", "ok")
    # Qualified names pick the distribution, spelt as pip or as an import name.
    for spelling in ("fake-dist:cube", "fake_dist:Cube", "Fake.Dist:cube"):
        assert registry.load("activations", spelling) is type(act)


def test_discovery_is_lazy(good):
    names = registry.names("activations") + registry.names("layers")
    assert "cube" in names and "scale" in names
    registry.entries("losses")
    pm.Network(2, seed=0).output(pm.Dense(2, activation="softmax"), loss="cross_entropy")
    assert not good.imported("good"), "listing names or using built-ins imported a plugin"
    pm.Dense(3, activation="cube")
    assert good.imported("good")


def test_import_polymlp_scans_nothing():
    code = ("import importlib.metadata as m\n"
            "calls = []\n"
            "real = m.entry_points\n"
            "m.entry_points = lambda *a, **k: calls.append(k) or real(*a, **k)\n"
            "import polymlp as pm\n"
            "net = pm.Network(2, seed=0).stack(pm.Dense(3, activation='relu'))\n"
            "net.output(pm.Dense(2, activation='softmax'), loss='cross_entropy')\n"
            "net.fit([[0.0, 1.0], [1.0, 0.0]], [0, 1], epochs=1, optimizer='adam')\n"
            "print(len(calls))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env_with_repo())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"  # built-ins resolve without a scan


def test_broken_import_is_reported_and_isolated(good):
    bad = good.module("bad", "import a_module_that_is_not_installed_anywhere\n")
    good.dist("bad-dist", {"polymlp.activations": {"bad_act": f"{bad}:Thing"}}, version="0.3")
    assert "bad_act" in registry.names("activations")  # listed: nothing imported yet
    with pytest.warns(RuntimeWarning) as record:
        with pytest.raises(pm.PluginError) as info:
            pm.Dense(3, activation="bad_act")
    message = str(record[0].message)
    for part in ("'bad_act'", f"{bad}:Thing", "bad-dist 0.3", "ModuleNotFoundError",
                 "a_module_that_is_not_installed_anywhere"):
        assert part in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert "bad-dist" in str(info.value) and "a_module_that_is_not_installed" in str(info.value)
    entry = next(e for e in registry.entries("activations") if e.name == "bad_act")
    assert entry.status.startswith("broken: ModuleNotFoundError")
    # Other plugins and built-ins are unaffected.
    assert pm.Dense(3, activation="cube").activation.name == "cube"
    assert pm.Dense(3, activation="relu").activation.name == "relu"


def test_import_time_exception_is_isolated(fake):
    mod = fake.module("crash", "raise RuntimeError('boom at import')\n")
    fake.dist("crash-dist", {"polymlp.optimizers": {"crash": f"{mod}:Opt"}})
    with pytest.warns(RuntimeWarning, match="crash-dist.*boom at import"):
        with pytest.raises(pm.PluginError, match="boom at import") as info:
            registry.get_optimizer("crash")
    assert isinstance(info.value.__cause__, RuntimeError)


WRONG = {
    "not_a_subclass": ("activations", "class Obj:\n"
                       "    def forward(self, z, /, *, xp): return z\n"
                       "    def backward(self, z, a, g, /, *, xp): return g\n",
                       "must be a subclass of polymlp.Activation"),
    "not_a_class": ("activations", "def Obj(z):\n    return z\n", "got an instance of function"),
    "no_derivative": ("activations", "class Obj(pm.ElementwiseActivation):\n"
                      "    def value(self, z, /, *, xp): return z\n",
                      "does not implement derivative"),
    "no_backward": ("activations", "class Obj(pm.Activation):\n"
                    "    def forward(self, z, /, *, xp): return z\n",
                    "does not implement backward"),
    "loss_without_xp": ("losses", "class Obj(pm.Loss):\n"
                        "    def value(self, y_hat, y): return 0\n"
                        "    def gradient(self, y_hat, y, /, *, xp): return y_hat\n",
                        r"value\(\) does not accept the keyword argument\(s\) xp"),
    "optimizer_without_update": ("optimizers", "class Obj(pm.Optimizer):\n    pass\n",
                                 "does not implement update"),
    "layer_without_rng": ("layers", "class Obj(pm.Layer):\n"
                          "    def forward(self, params, x, /, *, xp): return x, None\n"
                          "    def backward(self, p, c, g, /, *, xp, need_input_grad=True):\n"
                          "        return g, ()\n",
                          "does not accept the keyword argument.s. training, rng"),
    "initializer_no_rng": ("initializers", "class Obj(pm.Initializer):\n"
                           "    def __call__(self, shape): return None\n",
                           "does not accept the keyword argument.s. rng, fan_in, fan_out"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_wrong_protocol_is_reported_and_isolated(fake, case):
    kind, code, match = WRONG[case]
    mod = fake.module(case, "import polymlp as pm\n" + code)
    fake.dist("wrong-dist", {f"polymlp.{kind}": {"wrong": f"{mod}:Obj"}})
    with pytest.warns(RuntimeWarning, match=match):
        with pytest.raises(pm.PluginError, match=match):
            registry.load(kind, "wrong")
    entry = next(e for e in registry.entries(kind) if e.name == "wrong")
    assert entry.status.startswith("broken: ") and "wrong-dist" not in entry.status
    # The same class registered in-process is refused by the same check.
    obj = sys.modules[mod].Obj
    with pytest.raises(pm.PluginError, match=match):
        pm.register(kind, "wrong_registered")(obj)


def test_duplicate_names_between_plugins(fake):
    a = fake.module("a", PLUGIN_MODULE)
    b = fake.module("b", PLUGIN_MODULE.replace("z * z * z", "z * z * z * 2.0"))
    fake.dist("dist-a", {"polymlp.activations": {"cube": f"{a}:Cube"}}, version="1.0")
    fake.dist("dist-b", {"polymlp.activations": {"cube": f"{b}:Cube"}}, version="2.0")
    with pytest.warns(RuntimeWarning, match="several distributions: dist-a, dist-b"):
        assert "cube" in registry.names("activations")
    with pytest.raises(pm.PluginError, match=r"dist-a 1\.0, dist-b 2\.0.*'dist-a:cube'"):
        pm.Dense(3, activation="cube")
    from_a = pm.Dense(3, activation="dist-a:cube").activation
    from_b = pm.Dense(3, activation="dist_b:cube").activation
    z = numpy.array([[2.0]])
    assert from_a.value(z, xp=numpy)[0, 0] == 8.0 and from_b.value(z, xp=numpy)[0, 0] == 16.0
    # Passing the class itself always works, and configs name the right provider.
    assert pm.Dense(3, activation=type(from_b)).activation.value(z, xp=numpy)[0, 0] == 16.0
    assert registry.to_config(from_b)["name"] == "dist-b:cube"
    assert type(registry.get_activation(registry.to_config(from_b))) is type(from_b)
    statuses = {e.source: e.status for e in registry.entries("activations") if e.name == "cube"}
    assert "conflicts with dist-b" in statuses["dist-a"] and "dist-a" in statuses["dist-b"]
    with pytest.raises(ValueError, match="No activation 'cube' from distribution 'dist-c'"):
        registry.load("activations", "dist-c:cube")


def test_builtins_shadow_plugins(fake):
    mod = fake.module("shadow", PLUGIN_MODULE)
    fake.dist("shadow-dist", {"polymlp.activations": {"relu": f"{mod}:Cube"}})
    assert registry.load("activations", "relu") is pm.activations.ReLU  # no scan needed
    with pytest.warns(RuntimeWarning, match="'relu' from shadow-dist is shadowed.*built-in"):
        registry.names("activations")
    assert not fake.imported("shadow")
    entry = next(e for e in registry.entries("activations") if e.source == "shadow-dist")
    assert entry.status.startswith("shadowed by built-in 'relu'")
    assert registry.load("activations", "shadow-dist:relu").__name__ == "Cube"
    assert registry.load("activations", "polymlp:relu") is pm.activations.ReLU


def test_unknown_name_lists_suggests_and_names_the_group(good):
    with pytest.raises(ValueError) as info:
        pm.Dense(3, activation="reluu")
    text = str(info.value)
    assert "Unknown activation 'reluu'" in text and "Did you mean 'relu'" in text
    assert "cube" in text and "'polymlp.activations' entry-point group" in text
    with pytest.raises(ValueError, match="Did you mean 'cube'"):
        pm.Dense(3, activation="cubee")
    with pytest.raises(ValueError, match="Did you mean 'mse'.*polymlp.losses"):
        registry.get_loss("msee")
    with pytest.raises(ValueError, match="'adam' is an optimizer"):
        pm.Dense(3, activation="adam")
    # Names are case- and dash-insensitive, and common aliases work.
    assert registry.load("activations", "Leaky-ReLU") is pm.activations.LeakyReLU
    assert registry.load("optimizers", "sgd") is pm.GradientDescent


def test_autoload_can_be_disabled(good, monkeypatch):
    monkeypatch.setenv(registry.DISABLE_ENV, "1")
    registry.refresh()
    assert "cube" not in registry.names("activations")
    with pytest.raises(ValueError, match=registry.DISABLE_ENV):
        pm.Dense(3, activation="cube")
    assert registry.describe_plugins() and registry.backend_names() == []
    monkeypatch.setenv(registry.DISABLE_ENV, "0")
    registry.refresh()
    assert "cube" in registry.names("activations")


def test_refresh_rescans(fake):
    assert "late" not in registry.names("activations")
    mod = fake.module("late", PLUGIN_MODULE)
    # Installed after the first scan (written by hand: FakeSite.dist would refresh).
    info = fake.site / "late-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[polymlp.activations]\nlate = {mod}:Cube\n")
    fake.distributions.append(importlib.metadata.PathDistribution(info))
    assert "late" not in registry.names("activations")  # cached scan
    registry.refresh()
    assert "late" in registry.names("activations")


def test_bare_entry_points_without_a_distribution(fake):
    mod = fake.module("bare", PLUGIN_MODULE)
    fake.entry_point("bare_cube", f"{mod}:Cube", "polymlp.activations")
    cls = registry.load("activations", "bare_cube")
    assert cls.__name__ == "Cube" and cls.name == "bare_cube"
    entry = next(e for e in registry.entries("activations") if e.name == "bare_cube")
    assert entry.source == mod  # named after its module when no distribution is known


def test_register_decorator(good):
    @pm.register("activations", "double_it")
    class Double(pm.ElementwiseActivation):
        def value(self, z, /, *, xp):
            return 2.0 * z

        def derivative(self, z, /, *, xp):
            return 2.0 * xp.ones_like(z)

    try:
        assert Double.name == "double_it"
        assert isinstance(pm.Dense(2, activation="double_it").activation, Double)
        assert "double_it" in registry.names("activations")
        with pytest.raises(ValueError, match="built-in name"):
            pm.register("activations", "relu")(Double)
        with pytest.raises(ValueError, match="already registered"):
            pm.register("activations", "double_it")(type("Other", (Double,), {}))
        pm.register("activations", "double_it", override=True)(type("Other", (Double,), {}))
        with pytest.raises(ValueError, match="identifier"):
            pm.register("activations", "two words")(Double)
        # Registered in-process wins over an installed plugin of the same name.
        pm.register("activations", "cube", override=True)(Double)
        assert registry.load("activations", "cube") is Double
        plugin = next(e for e in registry.entries("activations") if e.source == "fake-dist")
        assert plugin.status.startswith("shadowed by registered 'cube'")
        assert registry.load("activations", "fake-dist:cube").__name__ == "Cube"
    finally:
        registry.unregister("activations", "double_it")
        registry.unregister("activations", "cube")
    assert "double_it" not in registry.names("activations")
    assert registry.load("activations", "cube").__name__ == "Cube"


def test_get_checks_classes_and_instances():
    class Incomplete(pm.ElementwiseActivation):
        def value(self, z, /, *, xp):
            return z

    with pytest.raises(pm.PluginError, match="does not implement derivative"):
        pm.Dense(2, activation=Incomplete)
    with pytest.raises(pm.PluginError, match="does not implement derivative"):
        pm.Dense(2, activation=Incomplete())
    with pytest.raises(TypeError, match="Expected an activation name.*got 3"):
        pm.Dense(2, activation=3)


def test_backends_from_entry_points(fake, monkeypatch):
    mod = fake.module("xp", "import numpy as xp_module\nbroken = None\n")
    bad = fake.module("badxp", "import not_an_array_library_anywhere\n")
    fake.dist("np-plugin", {"polymlp.backends": {"plugged_numpy": f"{mod}:xp_module",
                                                "not_a_namespace": f"{mod}:broken",
                                                "broken_xp": f"{bad}:xp"}})
    fake.dist("std-plugin", {"array_api": {"std_numpy": "numpy",
                                           "plugged_numpy": f"{bad}:xp"}})
    assert {"plugged_numpy", "std_numpy", "broken_xp"} <= set(registry.backend_names())
    net = pm.Network(2, backend="plugged_numpy", seed=0)  # polymlp.backends wins the clash
    assert net.xp is numpy
    assert pm.Network(2, backend="std_numpy").xp is numpy
    with pytest.raises(pm.PluginError, match="broken_xp.*np-plugin.*not_an_array_library"):
        pm.Network(2, backend="broken_xp")
    with pytest.raises(pm.PluginError, match="not an Array API namespace"):
        pm.Network(2, backend="not_a_namespace")
    rows = {r["name"]: r for r in pm.describe_backends()}
    assert rows["plugged_numpy"]["usable"] and not rows["broken_xp"]["usable"]
    assert "not_an_array_library" in rows["broken_xp"]["why"]


def test_cli_lists_every_name_with_provider_and_status(good, capsys):
    bad = good.module("bad", "import a_module_that_is_not_installed_anywhere\n")
    good.dist("bad-dist", {"polymlp.losses": {"bad_loss": f"{bad}:Thing",
                                              "mse": f"{bad}:Thing"}}, version="0.3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert cli.main(["plugins"]) == 0
        text = capsys.readouterr().out
        assert cli.main(["plugins", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
    lines = {tuple(line.split()[:2]): line for line in text.splitlines()}
    relu = lines[("activations", "relu")]
    assert "built-in" in relu and relu.endswith("ok")
    assert "fake-dist 1.2" in lines[("activations", "cube")]
    assert "broken: ModuleNotFoundError" in lines[("losses", "bad_loss")]
    by_key = {(r["kind"], r["name"], r["source"]): r for r in rows}
    assert by_key[("losses", "mse", "bad-dist")]["status"].startswith("shadowed by built-in")
    assert by_key[("layers", "scale", "fake-dist")]["status"] == "ok"
    assert by_key[("losses", "bad_loss", "bad-dist")]["version"] == "0.3"
    kinds = {r["kind"] for r in rows}
    assert set(registry.KINDS) <= kinds
    assert {"kind", "name", "source", "version", "status", "value"} <= set(rows[0])


def _env_with_repo(*extra):
    env = dict(os.environ)
    paths = [str(pathlib.Path(pm.__file__).resolve().parents[1]), *map(str, extra)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop(registry.DISABLE_ENV, None)
    return env


def _fake_install(pyproject, site):
    """Write the dist-info pip would write for the package of `pyproject` into `site`."""
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads(pyproject.read_text())["project"]
    info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = []
    for group, eps in meta["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_a_broken_installed_plugin_cannot_take_polymlp_down(tmp_path):
    package = REPO / "plugins" / "polymlp-broken"
    if not package.is_dir():
        pytest.skip("plugins/polymlp-broken is not in this checkout")
    _fake_install(package / "pyproject.toml", tmp_path)
    env = _env_with_repo(package / "src", tmp_path)
    code = (
        "import sys, warnings\n"
        "import polymlp as pm\n"
        "x, y, xt, yt = pm.datasets.hypercube()\n"
        "net = pm.Network(14, seed=0).stack(pm.Dense(16, activation='relu'))\n"
        "net.output(pm.Dense(4, activation='softmax'), loss='cross_entropy')\n"
        "net.fit(x[:2000], y[:2000], epochs=2, batch_size=32, optimizer='adam')\n"
        "print('accuracy', net.evaluate(xt, yt)['accuracy'])\n"
        "print('imported', sorted(m for m in sys.modules if m.startswith('polymlp_broken')))\n"
        "print('listed', 'broken_import' in pm.registry.names('activations'))\n"
        "try:\n"
        "    pm.Dense(3, activation='broken_import')\n"
        "except pm.PluginError as exc:\n"
        "    print('error', type(exc.__cause__).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert float(lines["accuracy"]) > 0.5
    assert lines["imported"] == "[]"
    assert lines["listed"] == "True" and lines["error"] == "ModuleNotFoundError"
    # The warning names the entry point, the distribution and the error.
    assert "RuntimeWarning" in out.stderr
    assert "'broken_import'" in out.stderr and "polymlp-broken 0.0.1" in out.stderr
    assert "polymlp_broken_dependency_that_does_not_exist" in out.stderr
    assert "shadowed" in out.stderr  # its 'relu' lost to the built-in
    cli_out = subprocess.run([sys.executable, "-m", "polymlp", "plugins"], capture_output=True,
                             text=True, env=env)
    assert cli_out.returncode == 0, cli_out.stderr
    assert "polymlp-broken 0.0.1" in cli_out.stdout and "broken: " in cli_out.stdout


def test_the_real_extras_package_when_installed():
    try:
        dist = importlib.metadata.distribution("polymlp-extras")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("polymlp-extras is not installed (pip install ./plugins/polymlp-extras)")
    registry.refresh()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # other plugins may be installed
            act = pm.Dense(4, activation="polymlp-extras:swish").activation
            assert registry.provenance(act) == ("polymlp-extras", dist.version)
            for kind, name in (("activations", "gelu"), ("losses", "huber"),
                               ("optimizers", "lion"), ("layers", "layer_norm"),
                               ("initializers", "orthogonal")):
                assert registry.load(kind, f"polymlp_extras:{name}").name == name
    finally:
        registry.refresh()
