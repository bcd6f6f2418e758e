"""Every Python example of CONTRIBUTING.md's "Questions plugin authors ask" runs as written."""

import os
import re
import subprocess
import sys

import pytest

from polymlp import testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

numpy_session = pytest.mark.skipif(
    "numpy" not in testing.selected_backends(),
    reason="the examples run on NumPy: tested in the numpy session")


def _section():
    with open(os.path.join(ROOT, "CONTRIBUTING.md")) as fh:
        text = fh.read()
    start = text.index("### 5. Questions plugin authors ask")
    return text[start:text.index("\n### ", start + 1)]


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", _section(), re.S)


@numpy_session
def test_the_section_answers_each_question():
    questions = re.findall(r"^\*\*(.+?)\*\*", _section(), re.M | re.S)
    for topic in ("initializer by name", "ParamSpec", "fan_in", "get_weights()",
                  "polymlp plugins --json", "general (not element-wise) activation",
                  "not registered", "stack()", "step size", "float64 on JAX",
                  "compile on JAX", "argument checks"):
        assert any(topic in q for q in questions), topic
    assert len(_blocks("python")) == 10


@numpy_session
@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_example_runs(index):
    code = _blocks("python")[index]
    # A fresh process each: examples register classes and must not depend on each other.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, f"example {index}:\n{code}\n{out.stderr[-3000:]}"


@pytest.mark.backend("jax")
def test_float64_on_jax_command():
    pytest.importorskip("jax")
    (command,) = [b.strip() for b in _blocks("bash") if "JAX_ENABLE_X64" in b]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    command = command.replace(" python -c ", f" {sys.executable} -c ", 1)  # this interpreter
    out = subprocess.run(command, shell=True, capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "float64", out.stderr[-2000:]
