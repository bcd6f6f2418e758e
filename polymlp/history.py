"""Training history: per-iteration or per-epoch columns, CSV and plots."""

from __future__ import annotations

import csv
import math
import os


class History:
    """Columns recorded by :meth:`polymlp.Network.fit`.

    Columns are lists of floats, available as attributes (``history.loss``)
    or items (``history["val_accuracy"]``).  The first column is the step:
    ``iteration`` (1-based count of minibatches) or ``epoch``.
    """

    def __init__(self, step="iteration", columns=None):
        self.step = step
        self.columns = {step: []}
        for name in columns or ():
            self.columns[name] = []

    def append(self, **values):
        for key, value in values.items():
            self.columns.setdefault(key, []).append(float(value))

    def extend(self, key, values):
        self.columns.setdefault(key, []).extend(float(v) for v in values)

    def concat(self, other):
        """A new History with the rows of `other` after this one's."""
        out = History(self.step)
        for key in dict.fromkeys(list(self.columns) + list(other.columns)):
            out.columns[key] = list(self.columns.get(key, [])) + list(other.columns.get(key, []))
        return out

    def __getitem__(self, key):
        return self.columns[key]

    def __getattr__(self, key):
        columns = self.__dict__.get("columns", {})
        if key in columns:
            return columns[key]
        raise AttributeError(f"History has no column {key!r}; columns: {list(columns)}.")

    def __len__(self):
        return len(self.columns[self.step])

    def __contains__(self, key):
        return key in self.columns

    def keys(self):
        return list(self.columns)

    def last(self, key):
        """The last recorded value of column `key` (NaN when empty)."""
        col = [v for v in self.columns.get(key, []) if not math.isnan(v)] or [math.nan]
        return col[-1]

    def to_csv(self, path):
        """Write the columns to `path` with a header row."""
        keys = [k for k in self.columns if len(self.columns[k]) == len(self)]
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(keys)
            for row in zip(*(self.columns[k] for k in keys)):
                writer.writerow([int(row[0])] + [repr(v) for v in row[1:]])
        os.replace(tmp, path)  # never leave a half-written CSV behind
        return path

    @classmethod
    def from_csv(cls, path):
        """Read a history written by :meth:`to_csv`."""
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        hist = cls(step=rows[0][0], columns=rows[0][1:])
        for row in rows[1:]:
            hist.append(**dict(zip(rows[0], map(float, row))))
        return hist

    def plot(self, path=None, title=None):
        """Plot cost and metric (train and validation) against the step.

        Needs matplotlib (``pip install 'polymlp[plot]'``). Writes `path` if given
        and returns the figure.
        """
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("History.plot needs matplotlib: pip install 'polymlp[plot]'") from exc
        metric = "accuracy" if "accuracy" in self.columns else "r2"
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        x = self.columns[self.step]
        for ax, key, label in ((axes[0], "loss", "cost"), (axes[1], metric, metric)):
            for prefix, name in (("", "train"), ("val_", "test")):
                col = self.columns.get(prefix + key)
                if col and len(col) == len(x):
                    # Validation may be sparse (NaN between evaluations): plot its points only.
                    pts = [(s, v) for s, v in zip(x, col) if not math.isnan(v)]
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name,
                            linewidth=0.8, alpha=0.85)
            ax.set_xlabel(self.step)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig

    def __repr__(self):
        return f"History(step={self.step!r}, rows={len(self)}, columns={list(self.columns)})"
