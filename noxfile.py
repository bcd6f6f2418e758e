"""Test sessions, one per backend: `nox -s numpy`, `nox -s torch`, ... or plain `nox`.

The CPU sessions pin what they install, so a fresh machine gets the same
wheels (torch 2.13.0 is a CPU-only build); the cupy session first looks for
a CUDA device and skips cleanly without one.
"""

import shutil
import subprocess

import nox

nox.options.sessions = ["numpy", "array_api_strict", "torch", "jax", "cupy"]
nox.options.reuse_existing_virtualenvs = True

PINS = {
    "array_api_strict": ["array-api-strict==2.6.1"],
    "torch": ["torch==2.13.0"],
    "jax": ["jax[cpu]==0.10.2"],
    "cupy": ["cupy-cuda12x"],
}
TEST_DEPS = [".[test,plot]"]


def _run_tests(session, backends):
    session.install(*TEST_DEPS)
    session.run("pytest", *session.posargs, env={"POLYMLP_TEST_BACKENDS": backends})


@nox.session
def numpy(session):
    """NumPy, and the read-only NumPy namespace that catches in-place writes."""
    _run_tests(session, "numpy,numpy_readonly")


@nox.session
def array_api_strict(session):
    """array-api-strict on its non-default device1 (plus its no-float64 device)."""
    session.install(*PINS["array_api_strict"])
    _run_tests(session, "array_api_strict")


@nox.session
def torch(session):
    """PyTorch on the CPU; also the autograd and torch.optim.Adam oracle tests."""
    session.install(*PINS["torch"])
    _run_tests(session, "torch")


@nox.session
def jax(session):
    """JAX on the CPU (immutable arrays, x64 switched on for float64 tests)."""
    session.install(*PINS["jax"])
    _run_tests(session, "jax")


def _has_cuda():
    if shutil.which("nvidia-smi") is None:
        return False
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return result.returncode == 0 and "GPU" in result.stdout


@nox.session
def cupy(session):
    """CuPy on a CUDA GPU; skipped (before installing anything) where there is none."""
    if not _has_cuda():
        session.skip("no CUDA device here (nvidia-smi finds no GPU): cupy session skipped")
    session.install(*PINS["cupy"])
    _run_tests(session, "cupy")


@nox.session
def bench(session):
    """The benchmark suite in quick mode (one epoch, one round): keeps benchmarks/ working.

    Not in the default sessions: CI calls it explicitly. Pass options through, e.g.
    ``nox -s bench -- --sections w1,w2``; the full suite is
    ``python benchmarks/run.py`` (see benchmarks/README.md).
    """
    session.install(".", "scikit-learn==1.9.1", *PINS["torch"], *PINS["jax"], *PINS["array_api_strict"])
    session.run("python", "benchmarks/run.py", "--quick",
                "--out", f"{session.create_tmp()}/bench-quick.json", *session.posargs)
