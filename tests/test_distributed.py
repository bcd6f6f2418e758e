"""Data-parallel training under `mpiexec -n N` equals single-process training."""

import os
import shutil
import subprocess
import sys

import numpy
import pytest

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec: pip install 'polymlp[mpi]'")
HERE = os.path.join(os.path.dirname(__file__), "mpi")
# One BLAS thread per rank, as recommended for data parallelism on one machine.
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _run(args, ranks=None, timeout=120):
    cmd = [sys.executable, *args] if ranks is None else [MPIEXEC, "-n", str(ranks),
                                                          sys.executable, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-4)])
def test_ranks_match_single_process(tmp_path, ranks, dtype, rtol):
    single = _run([os.path.join(HERE, "train.py"), str(tmp_path / "single"), dtype, "0"])
    assert single.returncode == 0, single.stderr
    multi = _run([os.path.join(HERE, "train.py"), str(tmp_path / "multi"), dtype, "1"], ranks)
    assert multi.returncode == 0, multi.stderr
    ref = numpy.load(tmp_path / "single.rank0.npz")
    # Checkpoints are written by rank 0 only, and load as the single-process ones.
    assert [int(numpy.load(tmp_path / f"multi.rank{r}.npz")["checkpoints"])
            for r in range(ranks)] == [3] + [0] * (ranks - 1)
    import polymlp as pm

    for a, b in zip(pm.load(tmp_path / "multi.ckpt3.polymlp").get_weights(),
                    pm.load(tmp_path / "single.ckpt3.polymlp").get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=rtol, atol=rtol / 10)
    for rank in range(ranks):
        got = numpy.load(tmp_path / f"multi.rank{rank}.npz")
        for key in (k for k in ref.files if k != "checkpoints"):
            numpy.testing.assert_allclose(got[key], ref[key], rtol=rtol, atol=rtol / 10,
                                          err_msg=f"rank {rank}, {key}")


@pytest.mark.parametrize("where", ["during", "before"])
def test_a_failing_rank_ends_the_job(where):
    result = _run([os.path.join(HERE, "fail.py"), where], ranks=2, timeout=60)
    assert result.returncode != 0
    assert "finished" not in result.stdout
    # The failure is reported (the launcher may cut the abort notice of a killed rank).
    expected = "simulated failure on rank 1" if where == "during" else "features"
    assert expected in result.stderr


def test_shards_cover_the_batch_and_weigh_exactly():
    from polymlp.distributed import DataParallel

    dp = DataParallel()
    for size in (1, 2, 3, 5):
        dp.size = size
        for start, stop in ((0, 64), (960, 1000), (0, 2)):
            parts = []
            for rank in range(size):
                dp.rank = rank
                parts.append(dp.shard(start, stop))
            assert parts[0][0] == start and parts[-1][1] == stop
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            assert sum(p[2] for p in parts) == pytest.approx(1.0)
