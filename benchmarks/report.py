"""The suite's results as Markdown: the tables, the targets, and the README's Performance block.

Everything here reads the JSON that ``run.py`` writes, so a block can be
regenerated from a saved run (``python benchmarks/readme.py RESULTS.json README.md``).
"""

import os

from stats import compile_overhead, paired_ratio

#: Display names of the implementations.
LABELS = {
    "reference": "reference (hand-written NumPy)",
    "polymlp-numpy": "polymlp, NumPy",
    "polymlp-torch": "polymlp, PyTorch backend",
    "polymlp-jax": "polymlp, JAX backend",
    "polymlp-jax-plugins": "polymlp, JAX backend, net with plugin layers",
    "polymlp-strict": "polymlp, array-api-strict",
    "polymlp-cupy": "polymlp, CuPy",
    "jax-scan": "hand-written JAX, one jitted epoch (lax.scan)",
    "jax-step": "hand-written JAX, one jitted step per batch",
    "keras-epoch": "Keras 3 on JAX, steps_per_execution = one epoch",
    "keras-default": "Keras 3 on JAX, default steps_per_execution",
    "torch": "PyTorch eager, Adam",
    "torch-fused": "PyTorch eager, Adam(fused=True)",
    "torch-cuda": "PyTorch CUDA eager, Adam",
    "torch-cuda-fused": "PyTorch CUDA eager, Adam(fused=True)",
    "sklearn": "scikit-learn MLPClassifier",
}

FIT_SUFFIX = {"first": ", first fit", "steady": ", second fit (steady state)"}


def label(row_name, row):
    return LABELS[row_name.split(":")[0]] + FIT_SUFFIX.get(row.get("fit"), "")


def _epochs(n):
    return f"{n} epoch" + ("" if n == 1 else "s")


def _net(part):
    sizes = part["spec"]["sizes"]
    hidden = sizes[1:-1]
    if len(hidden) > 2 and len(set(hidden)) == 1:
        return f"{sizes[0]}-({hidden[0]}x{len(hidden)})-{sizes[-1]}"
    return "-".join(map(str, sizes))


# --- targets --------------------------------------------------------------------------

def targets(res):
    """The issues' speed targets, each with its direction, limit, measured value and verdict."""
    out = []

    def add(text, value, direction, limit, unit="x", note=None):
        met = None
        if value is not None:
            met = value <= limit if direction == "at most" else value >= limit
        out.append({"target": text, "direction": direction, "limit": limit, "unit": unit,
                    "measured": value, "met": met, "note": note})

    w1 = res.get("w1", {}).get("w1")
    if w1:
        runs, rows = w1["runs"], w1["rows"]
        add("W1 14-100-40-4: polymlp NumPy / reference", rows["polymlp-numpy"]["ratio_train"],
            "at most", 1.05)
        if "torch" in runs:
            add("W1: PyTorch eager / polymlp NumPy",
                paired_ratio(runs, "torch", "polymlp-numpy", "train_s"), "at least", 5.0)
        if "sklearn" in runs:
            add("W1: scikit-learn / polymlp NumPy",
                paired_ratio(runs, "sklearn", "polymlp-numpy", "train_s"), "at least", 3.0)
        if "polymlp-jax:steady" in rows:
            add("W1: polymlp JAX steady state (second fit) / reference",
                rows["polymlp-jax:steady"]["ratio_train"], "at most", 0.40)
        if "jax-scan" in runs and "polymlp-jax:steady" in rows:
            add("W1: polymlp JAX steady state / hand-written JAX scan",
                paired_ratio(runs, "polymlp-jax", "jax-scan", "train_s"), "at most", 1.25)
            add("W1: polymlp JAX compile overhead (first fit - second) / hand-written scan's "
                "compile time", paired_ratio(runs, "polymlp-jax", "jax-scan", compile_overhead,
                                             "compile_s"), "at most", 1.5)
    deep = res.get("w1", {}).get("w1-28x14")
    if deep:
        rows = deep["rows"]
        add("14-(14x28)-4: polymlp NumPy / reference", rows["polymlp-numpy"]["ratio_train"],
            "at most", 1.2)
        if "polymlp-jax:steady" in rows:
            add("14-(14x28)-4: polymlp JAX steady state / reference",
                rows["polymlp-jax:steady"]["ratio_train"], "at most", 0.50)
    jax = res.get("jax", {})
    cache = jax.get("cache")
    if cache:
        row = cache["rows"].get("polymlp")
        add("W1 JAX, a second process with polymlp's compilation cache: compile overhead / "
            "the first process's", row and row["warm_over_cold"], "at most", 0.5,
            note=None if row else "polymlp has no persistent-cache setting")
    rec = jax.get("recording")
    if rec and "polymlp-jax" in rec["runs"]:
        add("W1 recorded as `polymlp reproduce` records (per-iteration loss, validation every "
            "10 iterations), steady state: polymlp JAX / polymlp NumPy",
            paired_ratio(rec["runs"], "polymlp-jax", "polymlp-numpy", "train_s"), "at most", 0.5)
    plug = jax.get("plugins")
    if plug and "polymlp-jax-plugins" in plug["runs"]:
        add("W1 with plugin layers (per-feature affine, layer_norm) / Dense only: polymlp JAX "
            "time per iteration, steady state",
            paired_ratio(plug["runs"], "polymlp-jax-plugins", "polymlp-jax", "train_s"),
            "at most", 1.3)
    w2 = res.get("w2")
    if w2:
        runs, rows = w2["runs"], w2["rows"]
        add("W2 784-1024-1024-10: polymlp NumPy / reference", rows["polymlp-numpy"]["ratio_train"],
            "at most", 1.05)
        add("W2: polymlp NumPy fraction of the measured GEMM peak (6P FLOPs)",
            rows["polymlp-numpy"]["peak_fraction"], "at least", 0.70, unit="")
        if "torch-fused" in runs:
            add("W2: polymlp NumPy / PyTorch eager with fused Adam",
                paired_ratio(runs, "polymlp-numpy", "torch-fused", "train_s"), "at most", 1.0)
        if "polymlp-torch" in runs:
            add("W2: polymlp PyTorch backend / PyTorch eager",
                paired_ratio(runs, "polymlp-torch", "torch", "train_s"), "at most", 1.25)
    mem = res.get("memory")
    if mem:
        add("W2 peak memory: polymlp / reference", mem["rows"]["polymlp-numpy"]["ratio"],
            "at most", 1.25)
    st = res.get("startup")
    if st:
        add("`python -c 'import polymlp'`, whole process", st["import polymlp"]["wall_s"],
            "at most", 0.3, unit=" s")
        heavy = st["import polymlp"].get("heavy_modules")
        if heavy is not None:
            out.append({"target": "`import polymlp` imports no array library but NumPy, and no "
                                  "optional extra", "direction": "exactly", "limit": "none",
                        "unit": "", "measured": ", ".join(heavy) or "none", "met": not heavy,
                        "note": None})
        if not res.get("quick"):
            add("`polymlp reproduce` (NumPy), whole process", st["polymlp reproduce"]["wall_s"],
                "at most", 15.0, unit=" s")
    gpu = res.get("gpu", {})
    for workload in ("w2", "gpu-4096"):
        rows = gpu.get(workload, {}).get("rows", {})
        if "polymlp-cupy" in rows and "torch-cuda" in rows:
            add(f"GPU {workload}: polymlp CuPy / PyTorch CUDA eager training time",
                rows["polymlp-cupy"]["ratio_vs_torch"], "at most", 1.0)
    return out


def _value(v, unit, fmt="%.3g"):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return (fmt % v) + unit


def targets_table(items):
    lines = ["| target | goal | measured | met |", "| --- | --- | ---: | --- |"]
    for t in items:
        goal = f"{t['direction']} {_value(t['limit'], t['unit'], '%.2f')}"
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        measured = _value(t["measured"], t["unit"])
        if t.get("note"):
            measured += f" ({t['note']})"
        lines.append(f"| {t['target']} | {goal} | {measured} | {met} |")
    return lines


# --- tables ---------------------------------------------------------------------------

def _fmt(v, fmt="%.3g"):
    return "-" if v is None else fmt % v


def _training_table(title, part, gflops=False, names=None):
    head = ("| implementation | train s | us/iter | samples/s | ratio | compile s | whole s | "
            "ratio whole | test acc |")
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if gflops:
        head += " GFLOP/s | % of peak |"
        rule += " ---: | ---: |"
    lines = ["", f"### {title}", "", head, rule]
    for name, row in part["rows"].items():
        text = (names or {}).get(name) or label(name, row)
        line = (f"| {text} | {row['train_s']:.3f} | {row['us_per_iter']:,.0f} | "
                f"{row['samples_per_s']:,.0f} | {_fmt(row['ratio_train'], '%.2f')} | "
                f"{_fmt(row.get('compile_s'), '%.2f')} | {_fmt(row.get('wall_s'), '%.2f')} | "
                f"{_fmt(row.get('ratio_wall'), '%.2f')} | {row['test_acc']:.4f} |")
        if gflops:
            line += f" {row['gflops']:.1f} | {100 * row['peak_fraction']:.1f}% |"
        lines.append(line)
    return lines


COMPILE_NOTE = ("*compile s*: hand-written JAX, tracing plus XLA compilation timed on its own; "
                "Keras, its untimed first epoch (compilation included); polymlp, first fit minus "
                "second fit in the same process. *ratio*: training loop / the reference's, "
                "within each round.")


def tables(res, with_targets=True):
    lines = []
    engine = res.get("engine") or {}
    if engine:
        lines += ["", "polymlp engine detected: `fit(steps_per_execution=...)` "
                  f"{'yes' if engine.get('steps_per_execution') else 'no'}; persistent "
                  f"compilation cache setting: {engine.get('compilation_cache') or 'none'}."]
    check = res.get("reference_check")
    if check and check.get("max_abs_diff"):
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in check["max_abs_diff"].items())
        lines += ["", f"Hand-written JAX against the NumPy reference "
                  f"(`benchmarks/check_references.py`, W1, one epoch): largest weight difference "
                  f"{diffs} (tolerance {check['atol']:g}): "
                  f"{'the same training' if check['ok'] else '**they part**'}."]
    for part in res.get("w1", {}).values():
        lines += _training_table(f"W1 nets (hypercube, batch 32): {_net(part)}, "
                                 f"{_epochs(part['spec']['epochs'])}", part)
    if any("compile_s" in row for part in res.get("w1", {}).values()
           for row in part["rows"].values()):
        lines += ["", COMPILE_NOTE]
    lines += _jax_tables(res.get("jax"))
    if "w2" in res:
        part = res["w2"]
        lines += _training_table(f"W2 784-1024-1024-10, batch 256, {_epochs(part['spec']['epochs'])} "
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
    lines += _gpu_table(res.get("gpu"))
    if res.get("targets") and with_targets:
        lines += ["", "### Targets", ""] + targets_table(res["targets"])
    return "\n".join(lines)


def _jax_tables(jax):
    if not jax:
        return []
    if "skipped" in jax:
        return ["", "### polymlp on JAX", "", f"Skipped: {jax['skipped']}."]
    lines = []
    rec = jax.get("recording")
    if rec:
        lines += _training_table(
            f"W1 recorded as `polymlp reproduce` records: per-iteration training loss, the test "
            f"set validated every 10 iterations ({_epochs(rec['spec']['epochs'])})", rec)
        lines += ["", "The reference records nothing; its row is the usual yardstick."]
    plug = jax.get("plugins")
    if plug:
        runs = plug["runs"]
        kinds = (runs.get("polymlp-jax-plugins") or [{}])[0].get("plugins", [])
        lines += _training_table(
            f"Plugin layers on JAX: W1 (Dense only) against 14-100-affine-40-layer_norm-4 "
            f"({_epochs(plug['spec']['epochs'])} a fit)", plug,
            names={"polymlp-jax-plugins": "polymlp, JAX, plugin net, first fit",
                   "polymlp-jax-plugins:steady": "polymlp, JAX, plugin net, second fit (steady state)"})
        if kinds:
            lines += ["", "Plugin layers: " + "; ".join(kinds) + "."]
    cache = jax.get("cache")
    if cache:
        lines += ["", "### Persistent compilation cache (W1 on JAX, a cold process then a second "
                  "one sharing the cache folder)", "",
                  "| cache | cold: first fit s | cold: compile overhead s | second process: first "
                  "fit s | second process: compile overhead s | steady fit s | overhead second / "
                  "cold |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        names = {"polymlp": f"polymlp's setting ({cache['setting']})",
                 "jax": "JAX's own cache set directly (thresholds 0)"}
        for mode, row in cache["rows"].items():
            lines.append(f"| {names[mode]} | {row['cold_first_s']:.3f} | "
                         f"{row['cold_overhead_s']:.3f} | {row['warm_first_s']:.3f} | "
                         f"{row['warm_overhead_s']:.3f} | {row['train_s']:.3f} | "
                         f"{_fmt(row['warm_over_cold'], '%.2f')} |")
        if "polymlp" not in cache["rows"]:
            lines += ["", "This polymlp has no persistent-cache setting (n/a); the JAX row shows "
                      "what JAX's cache gives the current code."]
    return lines


def _gpu_table(gpu):
    if gpu is None:
        return []
    lines = ["", "### GPU"]
    if "skipped" in gpu:
        return lines + ["", f"Skipped: {gpu['skipped']}."]
    lines += ["", "GEMM peak (float32): " + ", ".join(
        f"{k} {v:,.0f} GFLOP/s" for k, v in gpu["gemm_gflops"].items()), "",
        "| workload | implementation | train s | samples/s | % of GEMM peak | time / PyTorch CUDA |",
        "| --- | --- | ---: | ---: | ---: | ---: |"]
    for workload in ("w2", "gpu-4096"):
        for impl, row in gpu[workload]["rows"].items():
            lines.append(f"| {workload} | {LABELS[impl]} | {row['train_s']:.3f} | "
                         f"{row['samples_per_s']:,.0f} | {100 * row['peak_fraction']:.1f}% | "
                         f"{_fmt(row['ratio_vs_torch'], '%.2f')} |")
    return lines


# --- the README block -----------------------------------------------------------------

def readme_block(res, json_path):
    """The README's Performance block: how the run was made, then every table."""
    m = res["machine"]
    load = lambda v: "-" if not v else "%.1f" % v[0]  # noqa: E731
    seconds = res.get("seconds")
    parts = ", ".join(f"{k} {v / 60:.1f} min" for k, v in res.get("section_seconds", {}).items())
    text = [
        f"`{res.get('command', 'python benchmarks/run.py')}`, started {res.get('started_utc', '?')} "
        f"UTC on {m.get('cpus')} cores ({m.get('processor')}), Python {m.get('python')}, numpy "
        f"{m.get('numpy', '-')}, torch {m.get('torch', '-')}, jax {m.get('jax', '-')}, keras "
        f"{m.get('keras', '-')}. {res['repeats']} timed round(s)"
        f"{'' if res.get('quick') else ' after a warm-up round'}, alternating order, medians; a ratio is taken within each round against the reference measured "
        f"in that round. One BLAS/OpenMP thread for the small nets (W1 and the JAX section), "
        f"{'%d thread(s)' % res['threads'] if res.get('threads') else 'each library its default threads'} "
        f"for W2, memory and W3.",
        "",
        f"**The machine is shared: other work ran alongside this run** (load average "
        f"{load(res.get('load_before'))} at the start, {load(res.get('load_after'))} at the "
        f"end): absolute times are noisy, the within-round ratios are what count. The whole "
        f"run took {seconds / 60:.0f} minutes ({parts}). Raw numbers: "
        f"`benchmarks/{os.path.basename(json_path)}`; method and commands: "
        f"[benchmarks/README.md](benchmarks/README.md)." if seconds else "",
    ]
    targets = ["", "### Targets", ""] + targets_table(res.get("targets", []))
    return "\n".join(text + targets) + "\n" + tables(res, with_targets=False)
