"""T-Maze sweeps: corridor lengths × models × seeds, resumable, with one aggregate.

`relit-eqx sweep --out DIR` trains every cell `(model, L, seed)` in its own run
directory `DIR/<model>-L<L>-s<seed>` with [`run_training`][relit_eqx.rl.train.run_training].
A cell whose directory holds a checkpoint is resumed, a finished one is skipped, so
rerunning the same command continues where the last one stopped. `--budget-minutes`
caps the wall time of each run over all invocations (kept in `DIR/<cell>/sweep.json`).

The aggregation writes `tmaze.csv` (one row per run: `CSV_COLUMNS`) and one figure per
corridor length, `tmaze-L<L>.png`: success rate and return against environment steps,
the mean over seeds with a min–max band, one line per model.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import inspect
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, load_config
from .config import (
    AlgoConfig,
    ConfigError,
    EnvConfig,
    ModelConfig,
    TrainConfig,
    config_to_dict,
    load_models,
    validate,
)
from .logging import nan_moving_average, read_metrics
from .presets import MODEL_SIZES, PAPER_TMAZE_SIZES, get_preset, paper_a2c, paper_agent

__all__ = [
    "ALGOS",
    "MODELS",
    "LENGTHS",
    "CSV_COLUMNS",
    "Cell",
    "cell_config",
    "run_cell",
    "aggregate",
    "final_rates",
    "sweep_command",
]

#: The models of the sweep (registry names; `gtrxl` is GTrXL with memory 128).
MODELS = ("arelit", "relit", "gtrxl", "gru", "lstm")
#: The paper's corridor lengths.
LENGTHS = (40, 80, 120, 160, 200)
#: Columns of the aggregate CSV, one row per run.
CSV_COLUMNS = (
    "model",
    "corridor_length",
    "seed",
    "final_success_rate",
    "final_return",
    "env_steps",
    "wall_seconds",
)
STATE_FILE = "sweep.json"
# "Final" figures are episode-weighted means over this last fraction of the updates.
FINAL_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the sweep."""

    model: str
    corridor_length: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model}-L{self.corridor_length}-s{self.seed}"


#: `--algo` choices of the sweep.
ALGOS = ("a2c", "a2c-uniform", "ppo")


def _model_kwargs(model: str, overrides: dict[str, Any], algo: str = "ppo") -> dict[str, Any]:
    """The sizes of `model` under `algo`, with the `overrides` its constructor takes."""
    from ..models import get_model

    load_models()
    params = inspect.signature(get_model(model)).parameters
    sizes = dict(MODEL_SIZES[model])
    if algo == "a2c":
        sizes.update(PAPER_TMAZE_SIZES.get(model, {}))
    return {**sizes, **{k: v for k, v in overrides.items() if k in params}}


def cell_config(
    cell: Cell,
    *,
    algo: str = "a2c",
    total_steps: int = 5_000_000,
    model_kwargs: dict[str, Any] | None = None,
    algo_kwargs: dict[str, Any] | None = None,
    log_interval: int | None = None,
) -> TrainConfig:
    """The configuration of one cell.

    - `algo="a2c"`: the authors' T-Maze setup for the cell's model: their A2C with the
      model's step size and entropy weight
      ([`paper_a2c(model)`][relit_eqx.rl.presets.paper_a2c]), their heads
      ([`paper_agent`][relit_eqx.rl.presets.paper_agent]), GRU and LSTM at their widths
      (`PAPER_TMAZE_SIZES`: 680 and 600); 10 updates per chunk.
    - `algo="a2c-uniform"`: the settings of this project's earlier sweep: AReLiT's A2C
      settings for every model with `vf_coef=0.5` (half the authors' value-loss weight),
      every model at `MODEL_SIZES`.
    - `algo="ppo"`: the `tmaze-<model>` preset's PPO and heads.

    Transformers are at the paper's size (`MODEL_SIZES`); `model_kwargs` overrides the
    arguments a model's constructor takes, `algo_kwargs` fields of the `AlgoConfig`
    (e.g. `{"lr": 5e-4}`).
    """
    if algo not in ALGOS:
        raise ConfigError(f"unknown algo {algo!r}; choices: {', '.join(ALGOS)}")
    kwargs = _model_kwargs(cell.model, model_kwargs or {}, algo)
    env = EnvConfig(name="tmaze", corridor_length=cell.corridor_length)
    if algo in ("a2c", "a2c-uniform"):
        cfg = TrainConfig(
            env=env,
            model=ModelConfig(name=cell.model, kwargs=kwargs),
            agent=paper_agent(),
            algo=paper_a2c(cell.model) if algo == "a2c" else paper_a2c(vf_coef=0.5),
            total_steps=total_steps,
            seed=cell.seed,
            log_interval=10,
        )
    else:
        base = get_preset(f"tmaze-{cell.model}")
        cfg = dataclasses.replace(
            base,
            env=dataclasses.replace(base.env, corridor_length=cell.corridor_length),
            model=ModelConfig(name=cell.model, kwargs=kwargs),
            total_steps=total_steps,
            seed=cell.seed,
        )
    if algo_kwargs:
        fields = {f.name for f in dataclasses.fields(AlgoConfig)}
        unknown = sorted(set(algo_kwargs) - fields)
        if unknown:
            raise ConfigError(
                f"--algo-kwargs: AlgoConfig has no field {unknown[0]!r}; fields: "
                f"{', '.join(sorted(fields))}"
            )
        cfg = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, **algo_kwargs))
    if log_interval is not None:
        cfg = dataclasses.replace(cfg, log_interval=log_interval)
    return cfg


def _read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE_FILE
    if path.exists():
        return json.loads(path.read_text())
    return {"wall_seconds": 0.0, "env_steps": 0, "complete": False}


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    tmp = run_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, run_dir / STATE_FILE)


def _same_run(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Fields other than `total_steps` in which `a` and `b` differ."""
    da, db = config_to_dict(a), config_to_dict(b)
    da.pop("total_steps")
    db.pop("total_steps")
    return sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))


def run_cell(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    budget_seconds: float | None = None,
    segment_seconds: float = 120.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or continue) one cell in `run_dir`; returns its `sweep.json` state.

    The run goes in segments of about `segment_seconds` (each a `run_training` call
    that ends with a checkpoint) until it is complete or its accumulated wall time
    reaches `budget_seconds`. Does nothing for a finished run or a spent budget.
    """
    from .train import run_training

    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).exists() and not (run_dir / CHECKPOINT_FILE).exists():
        # Stopped before its first checkpoint: nothing to keep.
        for f in (CONFIG_FILE, METRICS_FILE, STATE_FILE):
            (run_dir / f).unlink(missing_ok=True)
    resume = (run_dir / CHECKPOINT_FILE).exists()
    state = _read_state(run_dir) if resume else {"wall_seconds": 0.0, "env_steps": 0}
    if resume:
        diff = _same_run(load_config(run_dir), cfg)
        if diff:
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({', '.join(diff)}); use another --out"
            )
    before = dict(state)
    state["complete"] = state.get("env_steps", 0) >= cfg.num_updates * cfg.steps_per_update
    state["total_steps"] = cfg.total_steps
    rate: float | None = None
    while not state["complete"]:
        spent = state["wall_seconds"]
        if budget_seconds is not None and spent >= budget_seconds:
            break
        window = segment_seconds
        if budget_seconds is not None:
            window = min(window, budget_seconds - spent)
        done = int(state["env_steps"])
        # The first segment runs one chunk (to measure the rate); then ~window seconds.
        stop_after = done + 1 if rate is None else done + max(1, int(rate * window))
        t0 = time.perf_counter()
        result = run_training(cfg, run_dir, resume=resume, stop_after=stop_after, progress=progress)
        state["wall_seconds"] = spent + (time.perf_counter() - t0)
        state["env_steps"] = result.env_steps
        state["complete"] = result.complete
        if math.isfinite(result.steps_per_second):
            rate = result.steps_per_second
        resume = True
        _write_state(run_dir, state)
    if resume and state != before:
        _write_state(run_dir, state)
    return state


def final_rates(metrics: dict[str, np.ndarray], fraction: float = FINAL_FRACTION):
    """Episode-weighted mean success rate and return over the last `fraction` of the
    updates (at least one); NaN where no episode ended there."""
    n = len(metrics["update"])
    if n == 0:
        return math.nan, math.nan
    k = max(1, int(round(n * fraction)))
    w = metrics["episodes"][-k:]
    out = []
    for col in ("success_rate", "mean_return"):
        v = metrics[col][-k:]
        ok = (w > 0) & np.isfinite(v)
        out.append(float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else math.nan)
    return out[0], out[1]


def _find_runs(out: Path) -> list[tuple[Cell, Path]]:
    runs = []
    for d in sorted(out.iterdir()) if out.exists() else []:
        if not (d / CONFIG_FILE).exists() or not (d / METRICS_FILE).exists():
            continue
        cfg = load_config(d)
        runs.append((Cell(cfg.model.name, cfg.env.corridor_length, cfg.seed), d))
    order = {m: i for i, m in enumerate(MODELS)}
    runs.sort(key=lambda r: (r[0].corridor_length, order.get(r[0].model, 99), r[0].seed))
    return runs


def aggregate(out: Path, results: Path | None = None) -> tuple[Path, list[Path]]:
    """Write `tmaze.csv` and `tmaze-L<L>.png` (one per corridor length) into `results`
    (default `out`) from every run directory under `out`; returns their paths."""
    out = Path(out)
    results = Path(results) if results is not None else out
    results.mkdir(parents=True, exist_ok=True)
    runs = _find_runs(out)
    rows = []
    curves: dict[int, dict[str, list[dict[str, np.ndarray]]]] = {}
    for cell, d in runs:
        m = read_metrics(d / METRICS_FILE)
        succ, ret = final_rates(m)
        state = _read_state(d)
        rows.append(
            {
                "model": cell.model,
                "corridor_length": cell.corridor_length,
                "seed": cell.seed,
                "final_success_rate": succ,
                "final_return": ret,
                "env_steps": int(m["env_steps"][-1]) if len(m["env_steps"]) else 0,
                "wall_seconds": float(state["wall_seconds"]),
            }
        )
        curves.setdefault(cell.corridor_length, {}).setdefault(cell.model, []).append(m)
    csv_path = results / "tmaze.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    **r,
                    "final_success_rate": f"{r['final_success_rate']:.4f}",
                    "final_return": f"{r['final_return']:.4f}",
                    "wall_seconds": f"{r['wall_seconds']:.1f}",
                }
            )
    figures = [
        _plot_length(L, by_model, results / f"tmaze-L{L}.png") for L, by_model in curves.items()
    ]
    return csv_path, figures


def _plot_length(L: int, by_model: dict[str, list[dict[str, np.ndarray]]], path: Path) -> Path:
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


# ----------------------------------------------------------------------------- CLI


def _int_list(name: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name} must be comma-separated integers; got {text!r}") from None
    if not values:
        raise ConfigError(f"--{name} is empty")
    return values


def _json_object(name: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--{name} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--{name} must be a JSON object")
    return value


def _error(msg: str) -> int:
    print(f"relit-eqx sweep: error: {msg}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="relit-eqx sweep",
        description="T-Maze sweep: corridor lengths x models x seeds, one resumable run "
        "directory per cell (DIR/<model>-L<L>-s<seed>); rerun the same command to "
        "continue. Ends with the aggregate: tmaze.csv and tmaze-L<L>.png.",
    )
    p.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="corridor lengths")
    p.add_argument("--models", default=",".join(MODELS), help=f"models, from {MODELS}")
    p.add_argument("--seeds", default="0,1,2", help="seeds")
    p.add_argument("--total-steps", type=int, default=5_000_000, help="env steps per run")
    p.add_argument(
        "--algo",
        choices=ALGOS,
        default="a2c",
        help="a2c: the authors' A2C setup per model (paper_a2c(model), GRU/LSTM widths "
        "680/600); a2c-uniform: the earlier sweep's (AReLiT's A2C settings and vf_coef 0.5 "
        "for every model); ppo: the tmaze-<model> preset's PPO",
    )
    p.add_argument("--out", type=Path, default=Path("runs/sweep"), help="run directories")
    p.add_argument("--results", type=Path, default=None, help="CSV and figures (default --out)")
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="cap on each run's wall time over all invocations (resumable past it)",
    )
    p.add_argument(
        "--model-kwargs",
        default="{}",
        help="JSON object overriding model sizes, e.g. '{\"d_model\": 8}' (arguments a "
        "model does not take are ignored for it)",
    )
    p.add_argument(
        "--algo-kwargs",
        default="{}",
        help="JSON object overriding fields of the algorithm's configuration, e.g. "
        "'{\"lr\": 5e-4}'",
    )
    p.add_argument("--log-interval", type=int, default=None, help="updates per chunk")
    p.add_argument("--aggregate-only", action="store_true", help="only write CSV and figures")
    p.add_argument("--no-progress", action="store_true")
    return p


def sweep_command(argv: Sequence[str]) -> int:
    """`relit-eqx sweep [options]`; returns the exit code (2: bad input, reported before
    anything is trained)."""
    args = _parser().parse_args(list(argv))
    try:
        lengths = _int_list("lengths", args.lengths)
        seeds = _int_list("seeds", args.seeds)
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if not models:
            raise ConfigError("--models is empty")
        for m in models:
            if m not in MODELS:
                raise ConfigError(f"--models: unknown model {m!r}; choices: {', '.join(MODELS)}")
        for L in lengths:
            if L <= 0:
                raise ConfigError(f"--lengths: corridor lengths must be positive; got {L}")
        if args.total_steps <= 0:
            raise ConfigError(f"--total-steps must be positive; got {args.total_steps}")
        if args.budget_minutes is not None and not args.budget_minutes > 0:
            raise ConfigError(f"--budget-minutes must be positive; got {args.budget_minutes}")
        overrides = _json_object("model-kwargs", args.model_kwargs)
        algo_overrides = _json_object("algo-kwargs", args.algo_kwargs)
        cells = [Cell(m, L, s) for L in lengths for m in models for s in seeds]
        configs = {
            c: cell_config(
                c,
                algo=args.algo,
                total_steps=args.total_steps,
                model_kwargs=overrides,
                algo_kwargs=algo_overrides,
                log_interval=args.log_interval,
            )
            for c in cells
        }
        if not args.aggregate_only:
            for cfg in configs.values():
                validate(cfg)
    except ConfigError as e:
        return _error(str(e))

    if not args.aggregate_only:
        from .train import _enable_compilation_cache

        _enable_compilation_cache()
        budget = None if args.budget_minutes is None else args.budget_minutes * 60
        for i, (cell, cfg) in enumerate(configs.items(), 1):
            run_dir = args.out / cell.name
            print(
                f"[{i}/{len(cells)}] {cell.name}: {cfg.total_steps:,} env steps -> {run_dir}",
                file=sys.stderr,
                flush=True,
            )
            try:
                state = run_cell(cfg, run_dir, budget_seconds=budget, progress=not args.no_progress)
            except ConfigError as e:
                return _error(str(e))
            except KeyboardInterrupt:
                print("\ninterrupted; rerun the same command to continue", file=sys.stderr)
                return 130
            status = "complete" if state["complete"] else "stopped (budget)"
            print(
                f"[{i}/{len(cells)}] {cell.name}: {status} at {state['env_steps']:,} env steps, "
                f"{state['wall_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    csv_path, figures = aggregate(args.out, args.results)
    print(f"results: {csv_path}")
    for f in figures:
        print(f"figure: {f}")
    return 0
