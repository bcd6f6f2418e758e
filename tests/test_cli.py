"""The command line: reproduce (one epoch), backends, help, version, closed pipes."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "polymlp", *args], capture_output=True,
                          text=True, timeout=300)


def test_reproduce_one_epoch(tmp_path):
    out = run("reproduce", "--epochs", "1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for net in ("14-100-40-4", "14-28x6-4", "14-14x28-4"):
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
    assert "batch 32, 1 epoch)" in out.stdout and "1 epochs" not in out.stdout
    # Every file written is listed, under a name a shell takes unquoted.
    listed = out.stdout.split("\nWrote:\n", 1)[1].split()
    assert sorted(listed) == sorted(str(p) for p in tmp_path.iterdir())
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in tmp_path.iterdir())
    assert str(tmp_path / "reproduce.json") in listed
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


def test_version_and_bare_command_prints_help():
    import polymlp as pm

    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"polymlp {pm.__version__}"
    bare = run()
    assert bare.returncode == 0 and bare.stderr == ""
    assert bare.stdout.startswith("usage: polymlp")
    for command in ("reproduce", "backends", "plugins"):
        assert command in bare.stdout
    assert "``" not in bare.stdout and ":class:" not in bare.stdout  # no reST markup


def test_reproduce_help_documents_every_option():
    text = run("reproduce", "--help").stdout
    options = re.findall(r"^  (--[a-z-]+)", text, re.M)
    assert options == ["--backend", "--device", "--dtype", "--epochs", "--seed",
                       "--validation-freq", "--out", "--tensorboard"]
    # Each option's help states its default.
    blocks = re.split(r"^  --", text.split("options:", 1)[1], flags=re.M)[1:]
    assert len(blocks) == len(options)
    assert all("default:" in " ".join(b.split()) for b in blocks)
    assert "./results" in text and "reproduce.json" in text
    assert "default: 10" in " ".join(text.split())


def test_a_closed_pipe_ends_quietly():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written (`| head` after exiting)
    try:
        proc = subprocess.run([sys.executable, "-m", "polymlp", "plugins", "--json"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == 1
