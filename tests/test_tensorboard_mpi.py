"""Under `mpiexec -n 2`, only rank 0 writes TensorBoard events, and they are the global ones."""

import glob
import os
import shutil
import subprocess
import sys

import numpy
import pytest

pytest.importorskip("mpi4py")
pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec: pip install 'polymlp[mpi]'")
SCRIPT = os.path.join(os.path.dirname(__file__), "mpi", "tensorboard.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def test_only_rank_0_writes(tmp_path):
    log_dir = tmp_path / "run"
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, SCRIPT, str(log_dir),
                             str(tmp_path / "hist")], capture_output=True, text=True,
                            timeout=120, env=ENV)
    assert result.returncode == 0, result.stderr
    files = glob.glob(str(log_dir / "events.out.tfevents.*"))
    assert len(files) == 1, files  # one writer: rank 0's
    acc = event_accumulator.EventAccumulator(str(log_dir))
    acc.Reload()
    batch = [(e.step, e.value) for e in acc.Scalars("batch_loss")]
    hist = numpy.load(tmp_path / "hist.rank0.npz")
    # 10 global batches per epoch, 2 epochs: iterations 3, 6, ..., 18.
    assert [s for s, _ in batch] == [3, 6, 9, 12, 15, 18]
    # The batch loss of the whole global batch (summed over ranks), as in the history.
    numpy.testing.assert_allclose([v for _, v in batch], hist["loss"][[s - 1 for s, _ in batch]],
                                  rtol=1e-6)
    assert [e.step for e in acc.Scalars("loss")] == [0, 1]
    numpy.testing.assert_allclose([e.value for e in acc.Scalars("val_loss")],
                                  hist["val_loss"][[9, 19]], rtol=1e-6)
