"""polymlp benchmark suite: polymlp against hand-written NumPy and JAX loops, PyTorch, Keras, scikit-learn.

    python benchmarks/run.py                 # the full suite (see benchmarks/README.md for its length)
    python benchmarks/run.py --quick         # one epoch, one round: a smoke test for CI
    python benchmarks/run.py --out results.json --repeats 5 --sections w1,jax
    python benchmarks/run.py --out benchmarks/results-DATE.json --readme README.md

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
import subprocess
import sys
import tempfile
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import report  # noqa: E402  (after the path set-up)
from stats import compile_overhead, median, paired_ratio  # noqa: E402
import workloads as wl  # noqa: E402
from report import LABELS  # noqa: E402,F401  (re-exported: the labels live with the tables)

SECTIONS = ("w1", "jax", "w2", "memory", "w3", "startup", "gpu")

def installed(module):
    return importlib.util.find_spec(module) is not None


def cpu_implementations(workload, quick=False):
    """The jobs of a training section: ``(job name, implementation, extra worker arguments)``.

    On the W1 nets polymlp on JAX is fitted twice in one process (first fit and
    steady state); 14-100-40-4 and 14-(14x28)-4 also get the hand-written JAX
    loops and Keras 3 on JAX.
    """
    small = wl.WORKLOADS[workload]["data"] == "hypercube"
    compiled = workload in ("w1", "w1-28x14") and installed("jax")
    jobs = [("reference", "reference", ()), ("polymlp-numpy", "polymlp-numpy", ())]
    if installed("torch"):
        jobs.append(("polymlp-torch", "polymlp-torch", ()))
    if installed("jax"):
        jobs.append(("polymlp-jax", "polymlp-jax", ("--fits", 2) if small else ()))
    if installed("array_api_strict") and workload == "w1":
        jobs.append(("polymlp-strict", "polymlp-strict", ()))  # overhead row: slow by design
    if compiled:
        jobs += [("jax-scan", "jax-scan", ()), ("jax-step", "jax-step", ())]
        if installed("keras"):  # each run is its own process, with KERAS_BACKEND=jax
            jobs += [("keras-epoch", "keras-epoch", ()), ("keras-default", "keras-default", ())]
    if quick and not small:
        # The smoke test: the competitors' code already ran on the W1 nets; W2 is their
        # slowest section, so --quick keeps W2 to polymlp and the reference (CI's time budget).
        return jobs
    if installed("torch"):
        jobs += [("torch", "torch", ()), ("torch-fused", "torch-fused", ())]
    if installed("sklearn"):
        jobs.append(("sklearn", "sklearn", ()))
    return jobs


# --- running workers ------------------------------------------------------------------

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_threads = None  # --threads: the same thread count for every library, or None (their defaults)
#: Thread count of the small-net sections (W1 nets, jax) unless --threads says otherwise: one
#: BLAS/OpenMP thread is faster for them and steadier on a shared machine.
SMALL_NET_THREADS = 1


def _env(threads=None):
    env = dict(os.environ)
    threads = _threads or threads
    if threads:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    # Benchmark the polymlp of this checkout (and its polymlp-extras), whatever is installed.
    paths = [ROOT, os.path.join(ROOT, "plugins", "polymlp-extras", "src")]
    env["PYTHONPATH"] = os.pathsep.join([p for p in paths if os.path.isdir(p)]
                                        + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_process(args, timeout=3600, threads=None):
    """Run a command; return (wall seconds, the JSON of its last JSON line or None, stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=_env(threads), cwd=ROOT,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return wall, (json.loads(lines[-1]) if lines else None), proc.stderr


def worker(*args, threads=None):
    wall, out, _ = run_process([sys.executable, os.path.join(HERE, "worker.py"), *map(str, args)],
                               threads=threads)
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


# --- sections -------------------------------------------------------------------------

def training_section(workload, jobs, args, log, with_gemm=False, epochs=None, threads=None):
    """Time `jobs` (``(name, impl, extra args)``) on `workload` in alternating rounds."""
    spec = wl.spec(workload, epochs or args.epochs_for(workload))
    if threads is None and wl.WORKLOADS[workload]["data"] == "hypercube":
        threads = SMALL_NET_THREADS
    calls = [(name, (lambda impl=impl, extra=extra: worker(
        "train", impl, workload, "--epochs", spec["epochs"], *extra, threads=threads)))
        for name, impl, extra in jobs]
    if with_gemm:
        calls.append(("gemm-numpy", lambda: worker("gemm", "numpy", threads=threads)))
    log(f"{workload}: {'-'.join(map(str, spec['sizes']))}, batch {spec['batch']}, "
        f"{spec['epochs']} epochs; {len(jobs)} implementations x {args.repeats} rounds"
        f"{f', {threads} thread(s)' if threads or _threads else ''}")
    runs = rounds(calls, args.repeats, args.warmup, log)
    params = wl.n_params(spec["sizes"])
    n_samples = _samples(workload, spec)
    rows = {}
    for name, _, _ in jobs:
        rs = runs[name]
        iters = rs[0]["iterations"]
        # polymlp fitted twice: one row for the first fit (compilation included), one for the
        # steady state; the compile overhead is first - steady within each process.
        variants = [(name, "train_s")]
        if rs[0].get("first_s") is not None:
            variants = [(name, "first_s"), (name + ":steady", "train_s")]
        for row_name, key in variants:
            train = median(r[key] for r in rs)
            row = {"train_s": train, "us_per_iter": 1e6 * train / iters,
                   "samples_per_s": n_samples / train,
                   "ratio_train": paired_ratio(runs, name, "reference", key, "train_s"),
                   "test_acc": median(r["test_acc"] for r in rs),
                   "train_loss": median(r["train_loss"] for r in rs)}
            if key != "train_s" or row_name == name:
                row["wall_s"] = median(r["wall_s"] for r in rs)
                row["ratio_wall"] = paired_ratio(runs, name, "reference", "wall_s")
            row["fit"] = {"first_s": "first", "train_s": "steady"}[key] if len(variants) > 1 else None
            if key == "first_s":
                row["compile_s"] = median(compile_overhead(r) for r in rs)
            elif rs[0].get("compile_s") is not None:
                row["compile_s"] = median(r["compile_s"] for r in rs)
            elif rs[0].get("warmup_s") is not None:
                row["compile_s"] = median(r["warmup_s"] for r in rs)
            row["gflops"] = 6.0 * params * row["samples_per_s"] / 1e9
            rows[row_name] = row
    out = {"spec": spec, "params": params, "rows": rows, "runs": runs, "threads": _threads or threads}
    if with_gemm:
        out["gemm_gflops"] = median(r["gflops"] for r in runs["gemm-numpy"])
        for row in rows.values():
            row["peak_fraction"] = row["gflops"] / out["gemm_gflops"]
    return out


def jax_section(args, log):
    """polymlp on JAX where the training engine matters: recording, plugin layers, the cache."""
    if not installed("jax"):
        log("jax: skipped (jax is not installed)")
        return {"skipped": "jax is not installed"}
    out = {}
    # W1 recorded as `polymlp reproduce` records it, against polymlp-NumPy recording the same.
    rec = ("--fits", 2, "--recording")
    out["recording"] = training_section("w1", [
        ("reference", "reference", ()), ("polymlp-numpy", "polymlp-numpy", rec),
        ("polymlp-jax", "polymlp-jax", rec)], args, log)
    # Plugin layers against the Dense-only net; two epochs a fit keep today's eager path short.
    epochs = 1 if args.quick else 2
    out["plugins"] = training_section("w1", [
        ("reference", "reference", ()), ("polymlp-jax", "polymlp-jax", ("--fits", 2)),
        ("polymlp-jax-plugins", "polymlp-jax", ("--fits", 2, "--plugins"))],
        args, log, epochs=epochs)
    out["cache"] = cache_section(args, log)
    return out


def cache_section(args, log):
    """A persistent compilation cache: the first fit of a cold process, then of a second process."""
    sys.path.insert(0, ROOT)
    import compiled

    modes = ["jax"]
    setting = compiled.cache_setting()
    if setting is not None:
        modes.insert(0, "polymlp")
    spec = wl.spec("w1", args.epochs_for("w1"))

    def pair(mode):
        folder = tempfile.mkdtemp(prefix="polymlp-bench-cache-")
        try:
            common = ("train", "polymlp-jax", "w1", "--epochs", spec["epochs"], "--fits", 2,
                      "--cache", f"{mode}:{folder}")
            cold = worker(*common, threads=SMALL_NET_THREADS)
            warm = worker(*common, threads=SMALL_NET_THREADS)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"train_s": warm["train_s"], "cold_first_s": cold["first_s"],
                "cold_steady_s": cold["train_s"], "warm_first_s": warm["first_s"],
                "cold_overhead_s": cold["first_s"] - cold["train_s"],
                "warm_overhead_s": warm["first_s"] - warm["train_s"],
                "wall_s": cold["wall_s"] + warm["wall_s"], "test_acc": warm["test_acc"]}

    log(f"jax cache: W1 {spec['epochs']} epochs, a cold process then a second one sharing the "
        f"cache ({', '.join(modes)})")
    runs = rounds([(mode, lambda mode=mode: pair(mode)) for mode in modes], args.repeats,
                  args.warmup, log)
    rows = {mode: {k: median(r[k] for r in runs[mode])
                   for k in ("cold_first_s", "warm_first_s", "cold_overhead_s", "warm_overhead_s",
                             "train_s")} for mode in modes}
    for mode in modes:
        rows[mode]["warm_over_cold"] = paired_ratio(runs, mode, mode, "warm_overhead_s",
                                                    "cold_overhead_s")
    return {"setting": None if setting is None else " ".join(setting), "rows": rows, "runs": runs}


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


#: Modules `import polymlp` must not import (array libraries but NumPy, optional extras).
HEAVY_MODULES = ("torch", "jax", "cupy", "array_api_strict", "keras", "sklearn", "scipy", "onnx",
                 "onnxruntime", "tensorboardX", "tensorboard", "mpi4py", "matplotlib")


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
    # What `import polymlp` pulls in: no array library but NumPy, none of the optional extras.
    probe = ("import json, sys; import polymlp; print(json.dumps({'modules': sorted(m for m in "
             "%r if m in sys.modules)}))" % (HEAVY_MODULES,))
    _, found, _ = run_process([py, "-c", probe])
    out["import polymlp"]["heavy_modules"] = found["modules"]
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
    for dist in ("numpy", "torch", "jax", "keras", "scikit-learn", "array-api-strict",
                 "cupy-cuda12x", "cupy-cuda13x"):
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
                    help="set OMP/OpenBLAS/MKL thread counts for every run (default: one "
                         "thread for the small nets, each library's default for the others)")
    ap.add_argument("--readme", default=None, metavar="README.md",
                    help="regenerate the file's Performance block from this run (full runs only)")
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
    if args.readme and (args.quick or set(sections) != set(SECTIONS)):
        ap.error("--readme takes the tables of a full run: drop --quick and --sections")

    def log(text):
        print(text, file=sys.stderr, flush=True)

    def save():  # after every section, so that a failure keeps what was measured
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)

    started = time.time()
    res = {"machine": machine(), "quick": args.quick, "repeats": args.repeats,
           "threads": args.threads, "small_net_threads": args.threads or SMALL_NET_THREADS,
           "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
           "command": " ".join(["python", "benchmarks/run.py"] + list(
               argv if argv is not None else sys.argv[1:])),
           "load_before": os.getloadavg() if hasattr(os, "getloadavg") else None}
    res["engine"] = _engine_features(log)
    if "w1" in sections and installed("jax"):
        try:
            _, res["reference_check"], _ = run_process(
                [sys.executable, os.path.join(HERE, "check_references.py")],
                threads=SMALL_NET_THREADS)
        except RuntimeError as exc:  # it exits 1 when the loops part: keep its verdict
            res["reference_check"] = {"ok": False, "error": str(exc)[-500:]}
        log(f"hand-written JAX against the NumPy reference: {res['reference_check']}")
    if "w1" in sections:
        res["w1"] = {}
        t0 = time.time()
        for name in wl.W1_NETS:
            res["w1"][name] = training_section(name, cpu_implementations(name, args.quick),
                                               args, log)
            save()
        res["section_seconds"] = {"w1": time.time() - t0}
    steps = (("jax", lambda: jax_section(args, log)),
             ("w2", lambda: training_section("w2", cpu_implementations("w2", args.quick), args,
                                             log, with_gemm=True)),
             ("memory", lambda: memory_section(args, log)),
             ("w3", lambda: predict_section(args, log)),
             ("startup", lambda: startup_section(args, log)),
             ("gpu", lambda: gpu_section(args, log)))
    for name, section in steps:
        if name in sections:
            t0 = time.time()
            res[name] = section()
            res.setdefault("section_seconds", {})[name] = time.time() - t0
            save()
    res["targets"] = report.targets(res)
    res["seconds"] = time.time() - started
    res["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    save()
    print(report.tables(res))
    if args.readme:
        from readme import splice

        splice(args.readme, "performance", report.readme_block(res, args.out))
        print(f"\n(README block regenerated in {args.readme})")
    print(f"\n(results in {args.out}; suite took {res['seconds']:.0f} s)")
    if res.get("reference_check", {}).get("ok") is False:
        print("the hand-written JAX loops do not compute what the NumPy reference does "
              "(benchmarks/check_references.py): their rows are not comparable", file=sys.stderr)
        return 1
    return 0


def _engine_features(log):
    """The training-engine features of the polymlp being measured (detected in a subprocess)."""
    probe = ("import json, sys; sys.path.insert(0, %r); import compiled; "
             "print(json.dumps(compiled.engine_features()))" % HERE)
    try:
        _, found, _ = run_process([sys.executable, "-c", probe])
    except RuntimeError as exc:
        found = {"error": str(exc).splitlines()[-1]}
    log(f"polymlp engine: {found}")
    return found


if __name__ == "__main__":
    sys.exit(main())
