"""BackupAndRestore under `mpiexec -n 2`: kill one rank, relaunch, the job resumes exactly."""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec: pip install 'polymlp[mpi]'")
JOB = os.path.join(os.path.dirname(__file__), "mpi", "backup_job.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _mpiexec(workdir, *args, ranks=2):
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, JOB, str(workdir), *args],
                          capture_output=True, text=True, timeout=120, env=ENV)


def _results(workdir, ranks=2):
    out = []
    for rank in range(ranks):
        with open(os.path.join(workdir, f"result.rank{rank}.json")) as fh:
            out.append(json.load(fh))
    return out


@pytest.mark.parametrize("kill_rank", [1, 0])
def test_kill_one_rank_relaunch_and_resume(tmp_path, kill_rank):
    whole = _mpiexec(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    reference = _results(tmp_path / "whole")

    job = tmp_path / "job"
    killed = _mpiexec(job, "--kill-rank", str(kill_rank), "--at", "14")  # inside epoch 2
    assert killed.returncode != 0
    assert not any(os.path.exists(job / f"result.rank{r}.json") for r in range(2))
    import polymlp as pm

    assert pm.load(job / "backup" / "backup.polymlp").iterations == 12  # rank 0's last backup
    relaunched = _mpiexec(job)
    assert relaunched.returncode == 0, relaunched.stderr
    results = _results(job)
    for rank, (got, want) in enumerate(zip(results, reference)):
        assert got["restored"], f"rank {rank} did not restore"  # every rank, from one file
        assert got["weights"] == want["weights"], f"rank {rank}"  # the same result, bitwise
        assert got["iteration"] == want["iteration"] == list(range(1, 31))
        assert got["loss"] == want["loss"]
    assert not (job / "backup").exists()  # deleted by rank 0 once training completed
