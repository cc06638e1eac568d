"""Figures: a run's learning curve, a sweep's curves per corridor length, and
MemoryChain's final success against memory length.

matplotlib (the `rl` extra) is imported when a figure is drawn.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .run_dir import read_metrics

__all__ = ["nan_moving_average", "plot_learning_curve", "plot_sweep_length", "plot_memorychain"]


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


def plot_sweep_length(L: int, by_model: dict[str, list[dict[str, np.ndarray]]], path: Path) -> Path:
    """Success rate and return against env steps: mean over seeds, min–max band.

    Runs of different lengths are all drawn in full: at each step, the mean and the band
    are over the seeds that reached it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for i, (model, runs) in enumerate(by_model.items()):
        longest = max(runs, key=lambda r: len(r["env_steps"]))
        n = len(longest["env_steps"])
        if n == 0:
            continue
        x = longest["env_steps"]
        window = max(1, n // 25)
        for ax, col in zip(axes, ("success_rate", "mean_return"), strict=True):
            ys = np.full((len(runs), n), np.nan)
            for j, r in enumerate(runs):
                m = len(r[col])
                ys[j, :m] = nan_moving_average(r[col], max(1, min(window, m)))
            with warnings.catch_warnings():  # all-NaN stretches (no episode ended)
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(ys, axis=0)
                lo, hi = np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
            seeds = f"{len(runs)} seed{'s' * (len(runs) > 1)}"
            lengths = {len(r["env_steps"]) for r in runs}
            upto = "" if len(lengths) == 1 else "up to "
            label = f"{model} ({seeds}, {upto}{x[-1] / 1e6:.3g}M steps)"
            ax.plot(x, mean, color=f"C{i}", lw=1.6, label=label)
            if len(runs) > 1:
                ax.fill_between(x, lo, hi, color=f"C{i}", alpha=0.2, lw=0)
    for ax, ylabel in zip(axes, ("success rate", "mean episode return"), strict=True):
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel("environment steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"T-Maze, corridor length {L}")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_memorychain(rows: list[dict], path: Path) -> Path:
    """Final success against memory length (log scale), one line per model: the mean
    over seeds with a min–max band; chance (0.5) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for i, model in enumerate(models):
        by_len: dict[int, list[float]] = {}
        for r in rows:
            if r["model"] == model:
                by_len.setdefault(r["memory_length"], []).append(r["final_success"])
        xs = sorted(by_len)
        ys = [np.asarray(by_len[x], float) for x in xs]
        style = "-" if not model.startswith("memax-") else "--"
        ax.plot(xs, [y.mean() for y in ys], style, marker="o", ms=3, color=f"C{i}", label=model)
        if any(len(y) > 1 for y in ys):
            lo, hi = [y.min() for y in ys], [y.max() for y in ys]
            ax.fill_between(xs, lo, hi, color=f"C{i}", alpha=0.15, lw=0)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    lengths = sorted({r["memory_length"] for r in rows})
    ax.set_xticks(lengths, [str(m) for m in lengths])
    ax.minorticks_off()
    ax.set_xlabel("memory length")
    ax.set_ylabel("final success (fraction answered right)")
    ax.set_ylim(0.4, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("bsuite MemoryChain (gymnax), PPO")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
