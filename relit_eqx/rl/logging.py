"""Metrics: the CSV file, the learning-curve plot and the progress bar."""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["METRIC_COLUMNS", "MetricsWriter", "read_metrics", "plot_learning_curve", "Progress"]

METRIC_COLUMNS = (
    "update",
    "env_steps",
    "episodes",
    "mean_return",
    "success_rate",
    "mean_length",
    "loss",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_frac",
    "grad_norm",
    "lr",
)


def _fmt(x) -> str:
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return repr(float(x))  # shortest exact round trip of the float32 value


class MetricsWriter:
    """Appends one row per update to a CSV file (columns `METRIC_COLUMNS`).

    **Arguments:**

    - `path`: the CSV file.
    - `keep_updates`: when resuming, rows beyond this update (written after the last
      checkpoint) are dropped first; `None` starts a new file.
    """

    def __init__(self, path: str | os.PathLike, keep_updates: int | None = None):
        self.path = Path(path)
        if keep_updates is None or not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(METRIC_COLUMNS)
        else:
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            header, body = rows[0], rows[1:]
            body = [r for r in body if int(r[0]) <= keep_updates]
            with open(self.path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(body)

    def append(self, rows: Sequence[Mapping[str, object]]) -> None:
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            for row in rows:
                w.writerow([_fmt(row[c]) for c in METRIC_COLUMNS])


def read_metrics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Columns of a metrics CSV as float arrays."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: np.array([float(r[c]) for r in rows], dtype=np.float64) for c in METRIC_COLUMNS}


def nan_moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Moving average ignoring NaNs (updates with no finished episode)."""
    ok = np.isfinite(y)
    kernel = np.ones(window)
    num = np.convolve(np.where(ok, y, 0.0), kernel, mode="same")
    den = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def plot_learning_curve(
    csv_path: str | os.PathLike, png_path: str | os.PathLike, title: str = ""
) -> None:
    """Mean episode return and success rate against environment steps (nothing is
    written while the CSV holds no row, e.g. a run interrupted before its first chunk)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    m = read_metrics(csv_path)
    x = m["env_steps"]
    if len(x) == 0:
        return
    window = max(1, len(x) // 50)
    # Environments that report no success (gymnax, Gymnasium) get the return panel only.
    panels = [("mean_return", "mean episode return")]
    if not np.all(np.isnan(m["success_rate"])):
        panels.append(("success_rate", "success rate"))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 3.6), constrained_layout=True, squeeze=False
    )
    for ax, (col, label) in zip(axes[0], panels, strict=True):
        y = m[col]
        ax.plot(x, y, color="C0", alpha=0.3, lw=0.8)
        ax.plot(x, nan_moving_average(y, window), color="C0", lw=1.8)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel("environment steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if col == "success_rate":
            ax.set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


class Progress:
    """A tqdm bar over environment steps showing env-steps/s, mean return and success
    rate; a plain line per chunk when stderr is not a terminal (or tqdm is missing)."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True):
        self.total = total
        self.enabled = enabled
        self._bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True
                )
            except ImportError:
                pass

    def update(self, steps: int, done: int, mean_return: float, success: float, sps: float) -> None:
        if not self.enabled:
            return
        ret = "nan" if math.isnan(mean_return) else f"{mean_return:.2f}"
        # A return without a success rate: the environment reports none; say nothing.
        no_success = math.isnan(success) and not math.isnan(mean_return)
        succ = (
            ""
            if no_success
            else ", success " + ("nan" if math.isnan(success) else f"{success:.0%}")
        )
        if self._bar is not None:
            self._bar.set_postfix_str(f"return {ret}{succ}", refresh=False)
            self._bar.update(steps)
        else:
            print(
                f"step {done}/{self.total}  {sps:,.0f} steps/s  return {ret}{succ}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
