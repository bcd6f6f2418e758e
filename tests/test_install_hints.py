"""Install hints that fit a source checkout or an installed package; the plugin-autoload hint."""

import textwrap

import pytest

import polymlp as pm
from polymlp import _install, registry


def _checkout(tmp_path, project="polymlp"):
    root = tmp_path / "checkout"
    (root / "polymlp").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{project}"\nversion = "0.1.0"\n')
    return root


def test_checkout_is_detected_from_the_package_directory(tmp_path):
    root = _checkout(tmp_path)
    assert _install.checkout_root(str(root / "polymlp")) == str(root)
    other = _checkout(tmp_path / "other", project="not-polymlp")
    assert _install.checkout_root(str(other / "polymlp")) is None
    site = tmp_path / "site-packages" / "polymlp"  # an installed wheel: no pyproject.toml
    site.mkdir(parents=True)
    assert _install.checkout_root(str(site)) is None


def test_install_hint_in_a_checkout_and_for_a_package(tmp_path):
    assert _install.install_hint("torch", root=None) == "pip install 'polymlp[torch]'"
    here = _install.install_hint("torch", root=str(tmp_path))
    assert "pip install '.[torch]'" in here and str(tmp_path) in here
    assert "pip install 'polymlp[torch]'" in here  # and the released package's command


def test_plugin_hint_prefers_the_local_package(tmp_path):
    assert (_install.plugin_hint("polymlp-extras", "0.1.0", root=None)
            == "pip install 'polymlp-extras==0.1.0'")
    assert _install.plugin_hint("polymlp-extras", root=None) == "pip install polymlp-extras"
    assert (_install.plugin_hint("polymlp-extras", "0.1.0", root=str(tmp_path))
            == "pip install 'polymlp-extras==0.1.0'")  # the checkout has no such plugin
    local = tmp_path / "plugins" / "polymlp-extras"
    local.mkdir(parents=True)
    (local / "pyproject.toml").write_text('[project]\nname = "polymlp-extras"\n')
    hint = _install.plugin_hint("polymlp-extras", "0.1.0", root=str(tmp_path))
    assert hint.startswith("pip install ./plugins/polymlp-extras ") and str(tmp_path) in hint


@pytest.mark.parametrize("root", [None, "/src/polymlp"])
def test_missing_backend_error_uses_the_hint(monkeypatch, root):
    from polymlp import _array_api

    monkeypatch.setattr(_install, "_root", lambda: root)

    def not_installed(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(_array_api, "_namespace_for", not_installed)
    with pytest.raises(pm.BackendError) as info:
        pm.resolve_backend("torch")
    message = str(info.value)
    assert "pip install 'polymlp[torch]'" in message
    assert ("pip install '.[torch]' from the polymlp source checkout (/src/polymlp)" in message) \
        == (root is not None)


def test_history_plot_hint_without_matplotlib(monkeypatch):
    import sys

    monkeypatch.setattr(_install, "_root", lambda: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install 'polymlp\[plot\]'"):
        pm.History().plot()


def test_load_with_plugin_autoload_off_says_so(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "polymlp_fakeauto").mkdir(parents=True)
    (site / "polymlp_fakeauto" / "__init__.py").write_text(textwrap.dedent("""
        import polymlp


        class AutoDense(polymlp.Dense):
            name = "auto_dense"
    """))
    info = site / "polymlp_fakeauto-0.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: polymlp-fakeauto\n"
                                   "Version: 0.2.0\n")
    (info / "entry_points.txt").write_text("[polymlp.layers]\n"
                                           "auto_dense = polymlp_fakeauto:AutoDense\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(registry.DISABLE_ENV, raising=False)
    registry.refresh()
    try:
        net = pm.Network(4, seed=0).stack(pm.Dense(5, "relu"))
        net.output(registry.load("layers", "auto_dense")(3, "softmax"))
        path = net.save(tmp_path / "m.polymlp")
        monkeypatch.setenv(registry.DISABLE_ENV, "1")
        registry.refresh()
        with pytest.raises(pm.ModelFileError) as err:
            pm.load(path)
        message = str(err.value)
        assert "plugin autoload is off" in message and registry.DISABLE_ENV in message
        assert "Unset" in message and "does not provide it" not in message
        monkeypatch.setenv(registry.DISABLE_ENV, "0")  # turned back on: the file loads
        registry.refresh()
        assert type(pm.load(path).layers[-1]).__name__ == "AutoDense"
    finally:
        monkeypatch.undo()
        import sys

        sys.modules.pop("polymlp_fakeauto", None)
        registry.refresh()


@pytest.mark.parametrize("module, extra", [("polymlp.sklearn", "sklearn"),
                                           ("polymlp.distributed", "mpi")])
def test_optional_dependency_hints(monkeypatch, module, extra):
    import importlib
    import sys

    monkeypatch.setattr(_install, "_root", lambda: "/src/polymlp")
    missing = {"sklearn": "sklearn", "mpi": "mpi4py"}[extra]
    for name in [m for m in sys.modules if m.split(".")[0] == missing] + [missing]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    if module == "polymlp.sklearn":
        monkeypatch.delitem(sys.modules, module, raising=False)
        with pytest.raises(ImportError) as info:
            importlib.import_module(module)
    else:
        from polymlp import distributed

        with pytest.raises(ImportError) as info:
            distributed._mpi()
    message = str(info.value)
    assert f"pip install '.[{extra}]' from the polymlp source checkout" in message
    assert f"pip install 'polymlp[{extra}]'" in message
