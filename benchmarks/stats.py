"""Medians and within-round ratios: how the suite turns runs into figures."""

import statistics


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def paired_ratio(runs, a, b, key, key_b=None):
    """Median over rounds of runs[a][i][key] / runs[b][i][key_b or key].

    Taking the ratio within each round, then the median, cancels drift in the
    machine's speed between rounds.  A key may also be a function of one
    run's result (e.g. a difference of two keys).
    """
    kb = key_b or key
    get_a = key if callable(key) else (lambda r: r.get(key))
    get_b = kb if callable(kb) else (lambda r: r.get(kb))
    pairs = [(get_a(x), get_b(y)) for x, y in zip(runs.get(a, []), runs.get(b, []))]
    pairs = [(p, q) for p, q in pairs if p is not None and q]
    return statistics.median(p / q for p, q in pairs) if pairs else None


def compile_overhead(run):
    """polymlp's first fit minus its steady state (the second fit) in one process."""
    if run.get("first_s") is None:
        return None
    return run["first_s"] - run["train_s"]
