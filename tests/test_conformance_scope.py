"""The conformance kit: unregistered classes accepted, JAX's configuration left as it was."""

import os
import subprocess
import sys
import textwrap

import pytest

import polymlp as pm
from polymlp import testing
from polymlp.testing import ConformanceError, check_activation, check_layer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TestDense(pm.Dense):
    """A test double: a subclass of a registered layer, registered under no name."""

    __test__ = False


class TestRelu(type(pm.registry.get_activation("relu"))):
    __test__ = False


def test_kit_accepts_unregistered_subclasses():
    assert check_layer(TestDense, config={"units": 3}, backends=["numpy"]) == [
        "numpy float32", "numpy float64"]
    assert check_activation(TestRelu, backends=["numpy"])


def test_kit_accepts_an_unregistered_class_with_its_own_name():
    class Cube(pm.ElementwiseActivation):
        name = "cube_not_registered"

        def value(self, z, /, *, xp):
            return z * z * z

        def derivative(self, z, /, *, xp):
            return 3 * z * z

    assert "cube_not_registered" not in pm.registry.names("activations")
    assert check_activation(Cube, backends=["numpy"])


def test_kit_still_refuses_a_name_registered_to_an_unrelated_class():
    class NotRelu(pm.ElementwiseActivation):
        name = "relu"

        def value(self, z, /, *, xp):
            return z

        def derivative(self, z, /, *, xp):
            return z * 0 + 1

    with pytest.raises(ConformanceError, match="the registry resolves 'relu'"):
        check_activation(NotRelu, backends=["numpy"])


@pytest.mark.backend("jax")
def test_kit_does_not_leave_jax_x64_switched_on():
    pytest.importorskip("jax")
    code = textwrap.dedent("""
        import jax
        from polymlp.testing import check_activation, check_layer
        import polymlp as pm
        before = jax.config.jax_enable_x64
        ran = check_activation(type(pm.registry.get_activation("tanh")), backends=["jax"])
        ran += check_layer(pm.Dense, config={"units": 3}, backends=["jax"])
        print(before, jax.config.jax_enable_x64, sorted(set(ran)))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.pop("JAX_ENABLE_X64", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    # float64 was checked on JAX, and x64 is off again afterwards, as it was before.
    assert out.stdout.strip() == "False False ['jax float32', 'jax float64']"


@pytest.mark.backend("jax")
def test_network_kwargs_can_leave_jax_alone():
    pytest.importorskip("jax")
    code = ("import jax; from polymlp import testing; "
            "print(testing.network_kwargs('jax', enable_x64=False), jax.config.jax_enable_x64)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep
                                  + os.environ.get("PYTHONPATH", "")), timeout=300)
    assert out.stdout.strip() == "{'backend': 'jax'} False", out.stderr[-2000:]
    assert testing.network_kwargs("numpy") == {"backend": "numpy"}
