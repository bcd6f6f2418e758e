"""The command line: reproduce (one epoch) and backends."""

import csv
import json
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "polymlp", *args], capture_output=True,
                          text=True, timeout=300)


def test_reproduce_one_epoch(tmp_path):
    out = run("reproduce", "--epochs", "1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for net in ("14-100-40-4", "14-(28x6)-4", "14-(14x28)-4"):
        assert net in out.stdout
        with open(tmp_path / f"{net}.csv") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["iteration", "loss", "accuracy", "val_loss", "val_accuracy"]
        assert len(rows) == 1 + 410
    assert "0.9774" in out.stdout and "collapses" in out.stdout
    report = json.loads((tmp_path / "reproduce.json").read_text())
    assert [n["parameters"] for n in report["nets"]] == [5704, 4596, 5940]
    assert report["collapse_max_abs_diff"] < 1e-3
    # One epoch already learns something on every net.
    assert all(n["test_accuracy"] > 0.5 for n in report["nets"])
    pytest.importorskip("matplotlib")
    assert (tmp_path / "14-100-40-4.png").stat().st_size > 10_000


def test_backends_command():
    out = run("backends", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["numpy"]["usable"] is True
    text = run("backends").stdout
    assert "numpy" in text and "cupy" in text


def test_bad_backend_is_a_clear_cli_error(tmp_path):
    out = run("reproduce", "--backend", "nopy", "--out", str(tmp_path))
    assert out.returncode == 1 and "Unknown `backend='nopy'`" in out.stderr
