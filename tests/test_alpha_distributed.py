"""The L2 penalty under data-parallel training equals single-process training."""

import os
import shutil
import subprocess
import sys

import numpy
import pytest

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec: pip install 'polymlp[mpi]'")

SCRIPT = '''
import sys
import numpy
import polymlp as pm

out, distributed = sys.argv[1], sys.argv[2] == "1"
rng = numpy.random.default_rng(0)
x, y = rng.normal(size=(50, 4)), rng.integers(0, 3, size=50)
net = pm.Network(4, dtype="float64", seed=0, alpha=0.7).stack(pm.Dense(6, "tanh"))
net.output(pm.Dense(3, "softmax"))
hist = net.fit(x, y, epochs=2, batch_size=8, optimizer=pm.Momentum(0.05), distributed=distributed)
rank = 0
if distributed:
    from mpi4py import MPI
    rank = MPI.COMM_WORLD.Get_rank()
numpy.savez(f"{out}.rank{rank}.npz", loss=numpy.array(hist.loss), *net.get_weights())
'''


def test_penalty_counts_once_over_ranks(tmp_path):
    script = tmp_path / "train_alpha.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "single"), "0"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run([MPIEXEC, "-n", "3", sys.executable, str(script),
                            str(tmp_path / "multi"), "1"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert multi.returncode == 0, multi.stderr
    ref = numpy.load(tmp_path / "single.rank0.npz")
    for rank in range(3):
        got = numpy.load(tmp_path / f"multi.rank{rank}.npz")
        for key in ref.files:
            numpy.testing.assert_allclose(got[key], ref[key], rtol=1e-10, atol=1e-12,
                                          err_msg=f"rank {rank}, {key}")
