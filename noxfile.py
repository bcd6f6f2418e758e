"""Test sessions, one per backend: `nox -s numpy`, `nox -s torch`, ... or plain `nox`.

The CPU sessions pin what they install, so a fresh machine gets the same
wheels (torch 2.13.0 is a CPU-only build); the cupy session first looks for
a CUDA device and skips cleanly without one.
"""

import pathlib
import shutil
import subprocess

import nox

# Plain `nox` (the README's test command, and CI) runs all of these.
nox.options.sessions = ["numpy", "array_api_strict", "torch", "jax", "cupy", "mpi", "plugins",
                        "bench"]
nox.options.reuse_existing_virtualenvs = True

PINS = {
    "array_api_strict": ["array-api-strict==2.6.1"],
    "torch": ["torch==2.13.0"],
    "jax": ["jax[cpu]==0.10.2"],
    "cupy": ["cupy-cuda12x"],
    "mpi": ["mpi4py==4.1.2", "mpich==5.0.2"],
    # The `onnx` and `tensorboard` extras, pinned (the tests read events with TensorBoard's
    # own EventAccumulator, and check every ONNX export in onnxruntime).
    "onnx": [".[onnx]", "onnx==1.23.2", "onnxruntime==1.32.0", "skl2onnx==1.20.0"],
    "tensorboard": [".[tensorboard]", "tensorboardX==2.6.5", "tensorboard==2.21.0"],
}
TEST_DEPS = [".[test,plot,sklearn]"]
# Tests train tiny nets: one BLAS/OpenMP thread is faster there, and steadier on a busy machine.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run_tests(session, backends, extra=(), **env):
    session.install(*TEST_DEPS, *extra)
    session.run("pytest", *session.posargs,
                env={"POLYMLP_TEST_BACKENDS": backends, **ONE_THREAD, **env})


@nox.session
def numpy(session):
    """NumPy, and the read-only NumPy namespace that catches in-place writes.

    The slow tests (the kill-and-resume soak, about 15 s) run here, and so once in CI.
    """
    # Keras (on its NumPy backend) is the reference for EarlyStopping's `patience`.
    session.install("keras==3.15.1")
    _run_tests(session, "numpy,numpy_readonly",
               extra=[*PINS["onnx"], *PINS["tensorboard"]], POLYMLP_RUN_SLOW="1")


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


PLUGINS_DIR = pathlib.Path(__file__).parent / "plugins"


@nox.session
def plugins(session):
    """Every package under plugins/ installed beside polymlp: their own tests, and the registry's.

    The CPU backends come too, so the conformance kit runs on each and the
    torch oracles run; plugins/polymlp-broken proves that a broken plugin
    installed for real cannot take polymlp down.
    """
    packages = sorted(p for p in PLUGINS_DIR.iterdir() if (p / "pyproject.toml").is_file())
    session.install(*TEST_DEPS, *PINS["array_api_strict"], *PINS["torch"], *PINS["jax"],
                    *PINS["onnx"])  # polymlp-extras' ONNX mappings are tested too
    session.install(*(str(p) for p in packages))
    session.run("pytest", "tests/test_registry.py", *session.posargs)
    for package in packages:
        if (package / "tests").is_dir():
            session.run("pytest", str(package / "tests"), *session.posargs)



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
def mpi(session):
    """Data-parallel training under `mpiexec -n 2` and `-n 3` (MPI from wheels), the
    TensorBoard callback's rank-0-only writing, and BackupAndRestore across a killed rank."""
    session.install(*TEST_DEPS, *PINS["mpi"], *PINS["tensorboard"])
    session.run("pytest", "tests/test_distributed.py", "tests/test_tensorboard_mpi.py",
                "tests/test_distributed_backup.py",
                *session.posargs,
                env={"POLYMLP_TEST_BACKENDS": "numpy"})


@nox.session
def bench(session):
    """The benchmark suite in quick mode (one epoch, one round): keeps benchmarks/ working.

    Timings here are not checked (speed is never a test). Pass options through, e.g.
    ``nox -s bench -- --sections w1,w2``; the full suite is
    ``python benchmarks/run.py`` (see benchmarks/README.md).
    """
    session.install(".", "scikit-learn==1.9.1", *PINS["torch"], *PINS["jax"], *PINS["array_api_strict"],
                    "keras==3.15.1", "plugins/polymlp-extras")
    session.run("python", "benchmarks/run.py", "--quick",
                "--out", f"{session.create_tmp()}/bench-quick.json", *session.posargs)
