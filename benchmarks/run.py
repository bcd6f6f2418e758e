"""polymlp benchmark suite: polymlp against a hand-written NumPy loop, PyTorch and scikit-learn.

    python benchmarks/run.py                 # the full suite (about 20 minutes on 2 cores)
    python benchmarks/run.py --quick         # one epoch, one round: a smoke test for CI
    python benchmarks/run.py --out results.json --repeats 5 --sections w1,w2

Every timed run is its own process (benchmarks/worker.py), so each one pays the
same start-up and none inherits another's caches or thread pools. Runs are
alternated (round 1: A B C ..., round 2: ... C B A), the first round is a
warm-up and is discarded, and the figures are medians; a ratio is the median
over rounds of the two runs' ratio within a round, so that drift in machine
speed cancels. Training time is measured inside the process around the
training loop only; whole-process time is measured from outside.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import workloads as wl  # noqa: E402  (after the path set-up)

SECTIONS = ("w1", "w2", "memory", "w3", "startup", "gpu")

#: Display names of the implementations.
LABELS = {
    "reference": "reference (hand-written NumPy)",
    "polymlp-numpy": "polymlp, NumPy",
    "polymlp-torch": "polymlp, PyTorch backend",
    "polymlp-jax": "polymlp, JAX backend",
    "polymlp-strict": "polymlp, array-api-strict",
    "polymlp-cupy": "polymlp, CuPy",
    "torch": "PyTorch eager, Adam",
    "torch-fused": "PyTorch eager, Adam(fused=True)",
    "torch-cuda": "PyTorch CUDA eager, Adam",
    "torch-cuda-fused": "PyTorch CUDA eager, Adam(fused=True)",
    "sklearn": "scikit-learn MLPClassifier",
}


def installed(module):
    return importlib.util.find_spec(module) is not None


def cpu_implementations(workload):
    impls = ["reference", "polymlp-numpy"]
    if installed("torch"):
        impls.append("polymlp-torch")
    if installed("jax"):
        impls.append("polymlp-jax")
    if installed("array_api_strict") and workload == "w1":
        impls.append("polymlp-strict")  # an overhead row: the strict namespace is slow by design
    if installed("torch"):
        impls += ["torch", "torch-fused"]
    if installed("sklearn"):
        impls.append("sklearn")
    return impls


# --- running workers ------------------------------------------------------------------

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_threads = None  # --threads: the same thread count for every library, or None (their defaults)


def _env():
    env = dict(os.environ)
    if _threads:
        env.update({name: str(_threads) for name in THREAD_VARIABLES})
    # Benchmark the polymlp of this checkout, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_process(args, timeout=3600):
    """Run a command; return (wall seconds, the JSON of its last JSON line or None, stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=_env(), cwd=ROOT,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return wall, (json.loads(lines[-1]) if lines else None), proc.stderr


def worker(*args):
    wall, out, _ = run_process([sys.executable, os.path.join(HERE, "worker.py"), *map(str, args)])
    out["wall_s"] = wall
    return out


def rounds(jobs, repeats, warmup, log):
    """Run every job `repeats` times, alternating; returns {name: [result per round]}.

    `jobs` is a list of ``(name, callable)``. Round 0 is a warm-up when `warmup`.
    """
    results = {name: [] for name, _ in jobs}
    total = repeats + (1 if warmup else 0)
    for r in range(total):
        order = jobs if r % 2 == 0 else jobs[::-1]
        for name, job in order:
            out = job()
            out["load"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            tag = "warm-up" if warmup and r == 0 else f"round {r + (0 if warmup else 1)}"
            log(f"  {tag:>8} {name:<18} " + _brief(out))
            if not (warmup and r == 0):
                results[name].append(out)
    return results


def _brief(out):
    keys = [("train_s", "train %.3fs"), ("wall_s", "whole %.2fs"), ("gflops", "%.1f GFLOP/s"),
            ("test_acc", "acc %.4f"), ("peak_bytes", "peak %.0f B")]
    return "  ".join(fmt % out[k] for k, fmt in keys if out.get(k) is not None)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def paired_ratio(runs, a, b, key):
    """Median over rounds of runs[a][i][key] / runs[b][i][key]."""
    pairs = [(x[key], y[key]) for x, y in zip(runs.get(a, []), runs.get(b, []))
             if x.get(key) and y.get(key)]
    return statistics.median(p / q for p, q in pairs) if pairs else None


# --- sections -------------------------------------------------------------------------

def training_section(workload, impls, args, log, with_gemm=False):
    spec = wl.spec(workload, args.epochs_for(workload))
    jobs = [(impl, (lambda impl=impl: worker("train", impl, workload, "--epochs",
                                              spec["epochs"]))) for impl in impls]
    if with_gemm:
        jobs.append(("gemm-numpy", lambda: worker("gemm", "numpy")))
    log(f"{workload}: {'-'.join(map(str, spec['sizes']))}, batch {spec['batch']}, "
        f"{spec['epochs']} epochs; {len(impls)} implementations x {args.repeats} rounds")
    runs = rounds(jobs, args.repeats, args.warmup, log)
    params = wl.n_params(spec["sizes"])
    rows = {}
    for impl in impls:
        rs = runs[impl]
        train = median(r["train_s"] for r in rs)
        iters = rs[0]["iterations"]
        n_samples = _samples(workload, spec)
        rows[impl] = {
            "train_s": train, "wall_s": median(r["wall_s"] for r in rs),
            "us_per_iter": 1e6 * train / iters, "samples_per_s": n_samples / train,
            "ratio_train": paired_ratio(runs, impl, "reference", "train_s"),
            "ratio_wall": paired_ratio(runs, impl, "reference", "wall_s"),
            "test_acc": median(r["test_acc"] for r in rs),
            "train_loss": median(r["train_loss"] for r in rs),
            "runs": rs,
        }
        rows[impl]["gflops"] = 6.0 * params * rows[impl]["samples_per_s"] / 1e9
    out = {"spec": spec, "params": params, "rows": rows, "runs": runs}
    if with_gemm:
        out["gemm_gflops"] = median(r["gflops"] for r in runs["gemm-numpy"])
        for row in rows.values():
            row["peak_fraction"] = row["gflops"] / out["gemm_gflops"]
    return out


def _samples(workload, spec):
    n = 13107 if wl.WORKLOADS[workload]["data"] == "hypercube" else (
        16384 if wl.WORKLOADS[workload]["data"] == "wide" else 65536)
    return spec["epochs"] * n


def memory_section(args, log):
    impls = ["reference", "polymlp-numpy"]
    epochs = wl.spec("w2", args.epochs_for("w2"))["epochs"]
    jobs = [(impl, (lambda impl=impl: worker("train", impl, "w2", "--epochs", epochs, "--memory")))
            for impl in impls]
    log("memory: peak traced memory of W2 training (tracemalloc), untimed runs")
    runs = rounds(jobs, 1 if args.quick else 2, False, log)
    rows = {impl: {"peak_mib": median(r["peak_bytes"] for r in runs[impl]) / 2 ** 20,
                   "max_rss_mib": median(r["max_rss_bytes"] for r in runs[impl]) / 2 ** 20}
            for impl in impls}
    rows["polymlp-numpy"]["ratio"] = rows["polymlp-numpy"]["peak_mib"] / rows["reference"]["peak_mib"]
    return {"rows": rows}


def predict_section(args, log):
    impls = ["reference", "polymlp-numpy"] + (["polymlp-torch"] if installed("torch") else []) + (
        ["polymlp-jax"] if installed("jax") else []) + (["torch"] if installed("torch") else []) + (
        ["sklearn"] if installed("sklearn") else [])
    rows_n = 10_000 if args.quick else 100_000
    out = {"rows": rows_n, "nets": {}}
    for workload in ("w1", "w2"):
        jobs = [(impl, (lambda impl=impl: worker("predict", impl, workload, "--rows", rows_n,
                                                  "--repeats", 2 if args.quick else 5)))
                for impl in impls]
        log(f"w3: predict on {rows_n:,} rows, {workload} net")
        runs = rounds(jobs, 1, False, log)
        ref = runs["reference"][0]["median_s"]
        out["nets"][workload] = {impl: {"seconds": runs[impl][0]["median_s"],
                                        "rows_per_s": runs[impl][0]["rows_per_s"],
                                        "ratio": runs[impl][0]["median_s"] / ref}
                                 for impl in impls}
    return out


def startup_section(args, log):
    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "import numpy": [py, "-c", "import numpy"],
        "import polymlp": [py, "-c", "import polymlp"],
    }
    n = 1 if args.quick else 7
    log(f"startup: whole-process time, {n} alternating runs after a warm-up")
    walls = {k: [] for k in commands}
    for r in range(n + 1):
        for name, cmd in commands.items():
            wall, _, _ = run_process(cmd)
            if r:
                walls[name].append(wall)
    out = {name: {"wall_s": median(v)} for name, v in walls.items()}
    epochs = 1 if args.quick else 10
    out_dir = tempfile.mkdtemp(prefix="polymlp-bench-")
    try:
        reps = []
        for r in range(1 if args.quick else 3):
            wall, _, _ = run_process([py, "-m", "polymlp", "reproduce", "--epochs", str(epochs),
                                      "--out", out_dir])
            log(f"  polymlp reproduce --epochs {epochs}: {wall:.2f}s")
            reps.append(wall)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    out["polymlp reproduce"] = {"wall_s": median(reps), "epochs": epochs}
    for name, row in out.items():
        log(f"  {name:<20} {row['wall_s']:.3f}s")
    return out


def gpu_section(args, log):
    check = ("import sys\n"
             "try:\n"
             "    import cupy\n"
             "    ok = cupy.cuda.runtime.getDeviceCount() > 0\n"
             "except Exception as exc:\n"
             "    print('{\"why\": \"cupy: %s\"}' % str(exc).splitlines()[0].replace('\"', \"'\"))\n"
             "    sys.exit(0)\n"
             "print('{\"ok\": %s}' % ('true' if ok else 'false'))\n")
    if not installed("cupy"):
        log("gpu: skipped (cupy is not installed)")
        return {"skipped": "cupy is not installed"}
    _, probe, _ = run_process([sys.executable, "-c", check])
    if not probe or not probe.get("ok"):
        why = (probe or {}).get("why", "no CUDA device")
        log(f"gpu: skipped ({why})")
        return {"skipped": why}
    impls = ["polymlp-cupy"] + (["torch-cuda", "torch-cuda-fused"] if installed("torch") else [])
    out = {"gemm_gflops": {}}
    out["gemm_gflops"]["cupy"] = worker("gemm", "cupy")["gflops"]
    if installed("torch"):
        out["gemm_gflops"]["torch-cuda"] = worker("gemm", "torch-cuda")["gflops"]
    peak = max(out["gemm_gflops"].values())
    for workload in ("w2", "gpu-4096"):
        spec = wl.spec(workload, args.epochs_for(workload))
        jobs = [(impl, (lambda impl=impl: worker("train", impl, workload, "--epochs",
                                                  spec["epochs"]))) for impl in impls]
        log(f"gpu {workload}: {'-'.join(map(str, spec['sizes']))}, batch {spec['batch']}")
        runs = rounds(jobs, args.repeats, args.warmup, log)
        params = wl.n_params(spec["sizes"])
        rows = {}
        for impl in impls:
            train = median(r["train_s"] for r in runs[impl])
            sps = _samples(workload, spec) / train
            rows[impl] = {"train_s": train, "samples_per_s": sps,
                          "gflops": 6.0 * params * sps / 1e9,
                          "peak_fraction": 6.0 * params * sps / 1e9 / peak,
                          "ratio_vs_torch": paired_ratio(runs, impl, "torch-cuda", "train_s"),
                          "test_acc": median(r["test_acc"] for r in runs[impl]), "runs": runs[impl]}
        out[workload] = {"spec": spec, "rows": rows}
    return out


# --- targets and tables ---------------------------------------------------------------

def targets(res, quick):
    """The issue's targets, each as (description, measured, limit, met)."""
    out = []

    def add(text, value, limit, ok):
        out.append({"target": text, "measured": value, "limit": limit,
                    "met": None if value is None else bool(ok(value, limit))})

    le = lambda v, lim: v <= lim  # noqa: E731
    ge = lambda v, lim: v >= lim  # noqa: E731
    w1 = res.get("w1", {}).get("w1")
    if w1:
        runs = w1["runs"]
        add("W1 14-100-40-4: polymlp/reference training time", w1["rows"]["polymlp-numpy"]["ratio_train"], 1.15, le)
        if "torch" in runs:
            add("W1: PyTorch eager / polymlp training time", paired_ratio(runs, "torch", "polymlp-numpy", "train_s"), 5.0, ge)
        if "sklearn" in runs:
            add("W1: scikit-learn / polymlp training time", paired_ratio(runs, "sklearn", "polymlp-numpy", "train_s"), 3.0, ge)
        if "polymlp-jax" in runs and "torch" in runs:
            add("W1: polymlp-JAX / PyTorch eager training time", paired_ratio(runs, "polymlp-jax", "torch", "train_s"), 1.0, le)
    deep = res.get("w1", {}).get("w1-28x14")
    if deep:
        add("W1 14-(14x28)-4: polymlp/reference training time", deep["rows"]["polymlp-numpy"]["ratio_train"], 1.2, le)
    w2 = res.get("w2")
    if w2:
        runs, rows = w2["runs"], w2["rows"]
        add("W2: polymlp/reference training time", rows["polymlp-numpy"]["ratio_train"], 1.05, le)
        add("W2: polymlp fraction of measured GEMM peak (6P FLOPs)", rows["polymlp-numpy"]["peak_fraction"], 0.70, ge)
        if "torch-fused" in runs:
            add("W2: polymlp / PyTorch fused-Adam training time", paired_ratio(runs, "polymlp-numpy", "torch-fused", "train_s"), 1.0, le)
        if "polymlp-torch" in runs:
            add("W2: polymlp-torch / PyTorch eager training time", paired_ratio(runs, "polymlp-torch", "torch", "train_s"), 1.25, le)
    mem = res.get("memory")
    if mem:
        add("W2 peak memory: polymlp/reference", mem["rows"]["polymlp-numpy"]["ratio"], 1.25, le)
    st = res.get("startup")
    if st:
        add("python -c 'import polymlp' whole process (s)", st["import polymlp"]["wall_s"], 0.3, le)
        if not quick:
            add("polymlp reproduce (NumPy) whole process (s)", st["polymlp reproduce"]["wall_s"], 15.0, le)
    gpu = res.get("gpu", {})
    for workload in ("w2", "gpu-4096"):
        rows = gpu.get(workload, {}).get("rows", {})
        if "polymlp-cupy" in rows and "torch-cuda" in rows:
            add(f"GPU {workload}: CuPy / PyTorch CUDA training time",
                rows["polymlp-cupy"]["ratio_vs_torch"], 1.0, le)
    return out


def _fmt(v, fmt="%.3g"):
    return "-" if v is None else fmt % v


def tables(res):
    lines = []
    for section, title in (("w1", "W1 seed nets (hypercube, batch 32)"),):
        for name, part in res.get(section, {}).items():
            lines += _training_table(f"{title}: {'-'.join(map(str, part['spec']['sizes']))}, "
                                     f"{part['spec']['epochs']} epochs", part, gflops=False)
    if "w2" in res:
        part = res["w2"]
        lines += _training_table(f"W2 784-1024-1024-10, batch 256, {part['spec']['epochs']} epochs "
                                 f"(GEMM peak measured in this run: {part['gemm_gflops']:.1f} GFLOP/s)",
                                 part, gflops=True)
    if "memory" in res:
        lines += ["", "### W2 peak memory (training call, tracemalloc)", "",
                  "| implementation | peak MiB | max RSS MiB | ratio |", "| --- | ---: | ---: | ---: |"]
        for impl, row in res["memory"]["rows"].items():
            lines.append(f"| {LABELS[impl]} | {row['peak_mib']:.1f} | {row['max_rss_mib']:.0f} | "
                         f"{_fmt(row.get('ratio', 1.0), '%.2f')} |")
    if "w3" in res:
        part = res["w3"]
        lines += ["", f"### W3 predict throughput ({part['rows']:,} rows, labels)", "",
                  "| implementation | W1 net rows/s | ratio | W2 net rows/s | ratio |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for impl in part["nets"]["w1"]:
            a, b = part["nets"]["w1"][impl], part["nets"]["w2"][impl]
            lines.append(f"| {LABELS[impl]} | {a['rows_per_s']:,.0f} | {a['ratio']:.2f} | "
                         f"{b['rows_per_s']:,.0f} | {b['ratio']:.2f} |")
    if "startup" in res:
        lines += ["", "### Whole-process times", "", "| command | seconds |", "| --- | ---: |"]
        for name, row in res["startup"].items():
            extra = f" --epochs {row['epochs']}" if "epochs" in row else ""
            lines.append(f"| `{name}{extra}` | {row['wall_s']:.3f} |")
    gpu = res.get("gpu")
    if gpu is not None:
        lines += ["", "### GPU"]
        if "skipped" in gpu:
            lines += ["", f"Skipped: {gpu['skipped']}."]
        else:
            lines += ["", "GEMM peak (float32): " + ", ".join(
                f"{k} {v:,.0f} GFLOP/s" for k, v in gpu["gemm_gflops"].items()), "",
                "| workload | implementation | train s | samples/s | % of GEMM peak | ratio vs torch |",
                "| --- | --- | ---: | ---: | ---: | ---: |"]
            for workload in ("w2", "gpu-4096"):
                for impl, row in gpu[workload]["rows"].items():
                    lines.append(f"| {workload} | {LABELS[impl]} | {row['train_s']:.3f} | "
                                 f"{row['samples_per_s']:,.0f} | {100 * row['peak_fraction']:.1f}% | "
                                 f"{_fmt(row['ratio_vs_torch'], '%.2f')} |")
    if res.get("targets"):
        lines += ["", "### Targets", "", "| target | measured | limit | met |", "| --- | ---: | ---: | --- |"]
        for t in res["targets"]:
            met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
            lines.append(f"| {t['target']} | {_fmt(t['measured'], '%.3g')} | {t['limit']} | {met} |")
    return "\n".join(lines)


def _training_table(title, part, gflops):
    head = "| implementation | train s | us/iter | samples/s | ratio | whole s | ratio whole | test acc |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if gflops:
        head += " GFLOP/s | % of peak |"
        rule += " ---: | ---: |"
    lines = ["", f"### {title}", "", head, rule]
    for impl, row in part["rows"].items():
        line = (f"| {LABELS[impl]} | {row['train_s']:.3f} | {row['us_per_iter']:,.0f} | "
                f"{row['samples_per_s']:,.0f} | {_fmt(row['ratio_train'], '%.2f')} | "
                f"{row['wall_s']:.2f} | {_fmt(row['ratio_wall'], '%.2f')} | {row['test_acc']:.4f} |")
        if gflops:
            line += f" {row['gflops']:.1f} | {100 * row['peak_fraction']:.1f}% |"
        lines.append(line)
    return lines


def machine():
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo") as fh:  # Linux: the CPU model name
            for line in fh:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for dist in ("numpy", "torch", "jax", "scikit-learn", "array-api-strict", "cupy-cuda12x"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="one epoch and one round per workload, no warm-up (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed rounds per workload (default 5; 1 with --quick)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"),
                    help="JSON file to write (default benchmarks/results/latest.json)")
    ap.add_argument("--threads", type=int, default=None,
                    help="set OMP/OpenBLAS/MKL thread counts for every run (default: leave "
                         "each library's default)")
    args = ap.parse_args(argv)
    global _threads
    _threads = args.threads
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.warmup = not args.quick
    args.epochs_for = lambda name: 1 if args.quick else None
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")

    def log(text):
        print(text, file=sys.stderr, flush=True)

    def save():  # after every section, so that a failure keeps what was measured
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)

    started = time.time()
    res = {"machine": machine(), "quick": args.quick, "repeats": args.repeats,
           "threads": args.threads,
           "load_before": os.getloadavg() if hasattr(os, "getloadavg") else None}
    if "w1" in sections:
        res["w1"] = {}
        for name in wl.W1_NETS:
            res["w1"][name] = training_section(name, cpu_implementations(name), args, log)
            save()
    steps = (("w2", lambda: training_section("w2", cpu_implementations("w2"), args, log,
                                              with_gemm=True)),
             ("memory", lambda: memory_section(args, log)),
             ("w3", lambda: predict_section(args, log)),
             ("startup", lambda: startup_section(args, log)),
             ("gpu", lambda: gpu_section(args, log)))
    for name, section in steps:
        if name in sections:
            res[name] = section()
            save()
    res["targets"] = targets(res, args.quick)
    res["seconds"] = time.time() - started
    res["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    save()
    print(tables(res))
    print(f"\n(results in {args.out}; suite took {res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
