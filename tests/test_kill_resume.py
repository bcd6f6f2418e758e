"""SIGKILL a training job anywhere (inside epochs, during saves), run it again: nothing is lost.

Each relaunch of tests/faults/job.py restores its BackupAndRestore backup; the
run that finishes must equal an uninterrupted one bitwise (weights and every
History column: no gap, no duplicate), and leave no temporary file behind.
The soak test (many random kills) is marked slow: it runs in CI's numpy
session only (``POLYMLP_RUN_SLOW=1``), not in every local run.
"""

import json
import os
import random
import signal
import subprocess
import sys

import pytest

import polymlp as pm

JOB = os.path.join(os.path.dirname(__file__), "faults", "job.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _start(workdir, *args):
    proc = subprocess.Popen([sys.executable, JOB, str(workdir), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _finish(proc):
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _result(workdir):
    with open(os.path.join(workdir, "result.json")) as fh:
        return json.load(fh)


def _temporaries(workdir):
    return [os.path.join(d, f) for d, _, files in os.walk(workdir) for f in files
            if f.endswith(".tmp")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    code, err = _finish(_start(workdir))
    assert code == 0, err
    result = _result(workdir)
    assert not result["restored"] and result["iterations"] == 80
    return result


def _assert_same_run(workdir, reference):
    result = _result(workdir)
    assert result["restored"]
    assert result["weights"] == reference["weights"]  # bitwise: floats compare exactly
    assert result["history"] == reference["history"]
    assert result["history"]["iteration"] == list(range(1, 81))  # no gap, no duplicate
    assert _temporaries(workdir) == []
    assert not os.path.exists(os.path.join(workdir, "backup"))  # deleted when training completed


def _die_in_save(workdir, k, may_finish=False):
    """Run the job until it SIGKILLs itself in its k-th file write: a kill during a save.

    Returns whether it died. With `may_finish`, a job resumed so near its end
    that fewer than `k` writes were left may finish instead (the soak's random
    kills can land late): then it must have finished exactly like any other run.
    """
    code, err = _finish(_start(workdir, "--die-in-save", str(k)))
    if may_finish and code == 0 and os.path.exists(os.path.join(workdir, "result.json")):
        return False
    assert code == -signal.SIGKILL, err
    # The killed save's half-written temporary file; those of earlier kills were removed
    # when this run started.
    assert len(_temporaries(workdir)) == 1
    backup = os.path.join(workdir, "backup", "backup.polymlp")
    if os.path.exists(backup):  # the previous complete backup is intact
        assert pm.load(backup).iterations % 3 == 0
    return True


def _kill_at_random(workdir, rnd, longest=0.25, pace="0.004"):
    """Start the job, SIGKILL it after a random delay; whether the kill landed."""
    proc = _start(workdir, "--pace", pace)
    try:
        proc.wait(timeout=rnd.uniform(0.0, longest))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        return True
    proc.communicate(timeout=60)
    assert proc.returncode == 0, proc.stderr
    return False


def test_kills_during_saves_and_resume_bitwise(tmp_path, reference):
    # Different save counts: the backup (every 3 iterations) or a checkpoint (every 4) dies.
    for k in (4, 9, 2):
        _die_in_save(tmp_path, k)
    code, err = _finish(_start(tmp_path))
    assert code == 0, err
    _assert_same_run(tmp_path, reference)


def test_random_kills_and_resume_bitwise(tmp_path, reference):
    rnd = random.Random(1)
    landed = sum(_kill_at_random(tmp_path, rnd) for _ in range(3))
    assert landed >= 1
    _die_in_save(tmp_path, 3)
    code, err = _finish(_start(tmp_path))
    assert code == 0, err
    _assert_same_run(tmp_path, reference)


@pytest.mark.slow
def test_soak_many_kills(tmp_path, reference):
    """Many kills at random points (some inside saves); every completed job is exact."""
    rnd = random.Random(2026)
    landed = completed = 0
    workdir = tmp_path / "job0"
    workdir.mkdir()
    while landed < 60 or completed < 2:
        if landed % 6 == 5:
            landed += _die_in_save(workdir, rnd.randint(1, 4), may_finish=True)
        else:
            landed += _kill_at_random(workdir, rnd)
        assert len(_temporaries(workdir)) <= 1  # stale ones never accumulate
        if os.path.exists(workdir / "result.json"):  # a run finished: check it, start anew
            _assert_same_run(workdir, reference)
            completed += 1
            workdir = tmp_path / f"job{completed}"
            workdir.mkdir()
        assert landed + completed < 200
    print(f"soak: {landed} kills survived, {completed} jobs completed exactly")
