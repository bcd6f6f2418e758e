"""Every script in examples/ (and the API comparison) runs in quick mode and says what it should."""

import os
import re
import subprocess
import sys

import pytest

from polymlp import testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    "numpy" not in testing.selected_backends(),
    reason="the examples run on NumPy: they are tested in the numpy session")


def run(script, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads only add overhead
    out = subprocess.run([sys.executable, os.path.join(ROOT, script), "--quick", *args],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def numbers(pattern, text):
    return [float(v) for v in re.findall(pattern, text)]


def test_seed_experiment():
    out = run("examples/seed_experiment.py")
    (accuracy,) = numbers(r"test accuracy (\d\.\d+)", out)
    assert accuracy > 0.85  # one epoch; ten reach about 0.97


def test_digits_against_scikit_learn():
    pytest.importorskip("sklearn")
    out = run("examples/digits.py")
    ours, theirs = numbers(r"test accuracy (\d\.\d+)", out)
    assert ours > 0.9 and theirs > 0.9
    assert "polymlp - scikit-learn" in out


def test_diabetes_regression_against_scikit_learn():
    pytest.importorskip("sklearn")
    out = run("examples/diabetes_regression.py")
    ours, theirs, linear = numbers(r"R\^2 (-?\d\.\d+) \(", out)
    assert ours > 0.1 and linear > 0.3


def test_gpu_example_runs_or_skips_cleanly():
    out = run("examples/gpu_cupy.py")
    if testing.available("cupy"):
        assert re.search(r"cupy .* test accuracy 0\.\d+", out)
    else:
        assert out.startswith("Skipping the GPU example: cupy is not usable here")


def test_plugin_example_gradient_matches_finite_differences():
    out = run("examples/plugin.py")
    assert "swish + huber on numpy" in out
    backprop, finite = numbers(r"(?:backprop|differences) (-?\d+\.\d+)", out)
    assert backprop == pytest.approx(finite, rel=1e-5, abs=1e-8)


def test_save_load_example():
    out = run("examples/save_load.py")
    # No leftover development text; the file and what it holds are named plainly.
    assert "no pm.load yet" not in out and "Skipping" not in out
    assert re.search(r"^saved network '14-100-40-4' \(5,704 parameters, trained on numpy\) "
                     r"to seed-net\.polymlp \([\d,]+ bytes\)$", out, re.M), out
    (diff,) = numbers(r"max \|difference\| of probabilities (\S+)", out)
    assert diff < 1e-5


def test_compare_apis_writes_the_table(tmp_path):
    target = tmp_path / "comparison.md"
    out = run("benchmarks/compare_apis.py", "--out", str(target))
    text = target.read_text()
    assert text in out
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split("|")[1].strip() for r in rows[1:]] == [
        "polymlp", "polymlp, scikit-learn API", "PyTorch", "scikit-learn"]
    for row in rows[1:]:
        lines_of_code = int(row.split("|")[3])
        assert 3 <= lines_of_code <= 40


def test_onnx_example_matches_polymlp():
    pytest.importorskip("onnxruntime")
    out = run("examples/onnx_export.py")
    (accuracy,) = numbers(r"test accuracy (\d\.\d+)", out)
    assert accuracy > 0.85
    diffs = numbers(r"max \|(?:onnxruntime - polymlp|difference)\| of probabilities "
                    r"([0-9.e+-]+)", out)
    assert diffs and all(d < 1e-5 for d in diffs)
    assert out.count("labels equal: True") == (2 if "skipping the pipeline" not in out else 1)
