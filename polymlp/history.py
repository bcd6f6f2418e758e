"""Training history: per-iteration or per-epoch columns, CSV and plots."""

from __future__ import annotations

import csv
import math
import os

from ._install import install_hint


class History:
    """Columns recorded by :meth:`polymlp.Network.fit`.

    Columns are lists of floats, available as attributes (``history.loss``)
    or items (``history["val_accuracy"]``).  The first column is the step:
    ``iteration`` (1-based count of minibatches) or ``epoch``.

    Attributes
    ----------
    name : str or None
        The name of the network that was trained (the default plot title).
    epoch_ends : list of int
        With ``step="iteration"``: the iteration at which each epoch ended.
    """

    def __init__(self, step="iteration", columns=None, name=None):
        self.step = step
        self.name = name
        self.epoch_ends = []
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
        out = History(self.step, name=self.name if self.name is not None else other.name)
        out.epoch_ends = list(self.epoch_ends) + list(other.epoch_ends)
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

    def plot(self, path=None, title=None, smooth=None):
        """Plot cost and metric (train and test) against the step.

        Needs matplotlib (``pip install 'polymlp[plot]'``).

        Per-iteration training values are noisy (one value per minibatch): they
        are drawn faint, with their moving average on top; validation values
        are drawn as points joined by a line, and dotted vertical lines mark
        the ends of epochs.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Write the figure there (PNG, SVG, PDF... from the suffix).
        title : str, optional
            The figure title; by default the trained network's name.
        smooth : int, optional
            Window of the moving average, in steps; by default about one epoch
            (at most a twentieth of the curve), 1 to turn it off.

        Returns
        -------
        matplotlib.figure.Figure
        """
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(f"History.plot needs matplotlib: "
                              f"{install_hint('plot')}") from exc
        metric = "accuracy" if "accuracy" in self.columns else "r2"
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        x = self.columns[self.step]
        window = self._window(smooth)
        for ax, key, label in ((axes[0], "loss", "cost"), (axes[1], metric, metric)):
            train = self.columns.get(key)
            if train and len(train) == len(x):
                if window > 1:
                    ax.plot(x, train, color="C0", linewidth=0.5, alpha=0.25,
                            label="train (per batch)")
                    ax.plot(x, _moving_average(train, window), color="C0",
                            linewidth=1.4, label=f"train ({window}-{self.step} mean)")
                else:
                    ax.plot(x, train, color="C0", linewidth=1.0, label="train")
            test = self.columns.get("val_" + key)
            if test and len(test) == len(x):
                # Validation may be sparse (NaN between evaluations): plot its points only.
                pts = [(s, v) for s, v in zip(x, test) if not math.isnan(v)]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color="C1", linewidth=1.2,
                        marker="o" if len(pts) <= 60 else None, markersize=3, label="test")
            self._mark_epochs(ax)
            ax.set_xlabel(self.step + (" (dotted: end of an epoch)" if self._marks() else ""))
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        title = self.name if title is None else title
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig

    def _window(self, smooth):
        if smooth is not None:
            if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
                raise ValueError(f"`smooth` must be a positive int (a window in steps) or "
                                 f"None; got {smooth!r}.")
            return min(smooth, max(len(self), 1))
        if self.step != "iteration" or len(self) < 40:
            return 1
        ends = self.epoch_ends
        per_epoch = ends[0] - self.columns[self.step][0] + 1 if ends else len(self)
        return max(2, min(per_epoch, len(self) // 20))

    def _marks(self):
        # Every epoch end but the last (the curve's end), thinned out to about 30 lines.
        marks = [e for e in self.epoch_ends if self.columns[self.step]
                 and e < self.columns[self.step][-1]] if self.step == "iteration" else []
        return marks[::max(1, -(-len(marks) // 30))]

    def _mark_epochs(self, ax):
        for end in self._marks():
            ax.axvline(end + 0.5, color="0.5", linestyle=":", linewidth=0.8, alpha=0.7)

    def __repr__(self):
        return f"History(step={self.step!r}, rows={len(self)}, columns={list(self.columns)})"


def _moving_average(values, window):
    """Trailing means over `window` values (fewer at the start, where fewer exist)."""
    total, out = 0.0, []
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
