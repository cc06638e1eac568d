"""Sweeps: lengths × models × seeds, one resumable run directory per cell; T-Maze's cells
and aggregate (MemoryChain's are in `rl.memorychain`, run by the same `run_cell`).

`relit-eqx sweep --out DIR` trains every cell `(model, L, seed)` in its own run
directory `DIR/<model>-L<L>-s<seed>` with [`run_training`][relit_eqx.rl.run_training],
one `Trainer` per cell serving all its segments.
A cell whose directory holds a checkpoint is resumed, a finished one is skipped, so
rerunning the same command continues where the last one stopped. `--budget-minutes`
caps the wall time of each run over all invocations (kept in `DIR/<cell>/sweep.json`).

T-Maze runs stop early by one rule (`tmaze_stop`): a run that has not reached the
junction by `GIVE_UP_STEPS` stops there ("never reached"), and a run whose success rate
has held `HELD_SUCCESS` over the last `HELD_STEPS` stops there ("held"); the others go to
their total steps. The rule is checked after each segment (about two minutes), so a run
may go a segment past the step it names.

The aggregation writes `tmaze.csv` (one row per run: `CSV_COLUMNS`, with the step at
which the junction was first reached, `junction_at`, the step at which 95% success had
held for 0.5M steps, `held_at`, and `status`: `never reached`, `held`, `ran to <total
steps>` or `partial`), the same runs as a markdown table, `tmaze.md`, and one figure per corridor
length, `tmaze-L<L>.png`: success rate and return against environment steps, the mean over
seeds with a min–max band, one line per model.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..models import get_model
from .config import AlgoConfig, ConfigError, EnvConfig, ModelConfig, TrainConfig, changed_fields
from .learner import episode_weighted_mean
from .plotting import plot_sweep_length
from .presets import MODEL_SIZES, PAPER_TMAZE_SIZES, get_preset, paper_a2c, paper_agent
from .run import run_training
from .run_dir import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, load_config, read_metrics
from .trainer import Trainer

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
    "runs_table",
    "first_held",
    "junction_reached_at",
    "tmaze_stop",
    "check_model_kwargs",
    "with_algo_kwargs",
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
    "junction_at",
    "held_at",
    "status",
)
#: A T-Maze run that has not reached the junction by this many env steps stops there.
GIVE_UP_STEPS = 1_500_000
#: A T-Maze run whose success rate held `HELD_SUCCESS` over this many env steps stops.
HELD_STEPS = 500_000
HELD_SUCCESS = 0.95
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


def _takes(model: str) -> set[str]:
    return set(inspect.signature(get_model(model)).parameters)


def check_model_kwargs(models: Iterable[str], overrides: dict[str, Any]) -> None:
    """`ConfigError` naming the first key of `overrides` that no model of `models`
    takes (a typo would otherwise be dropped silently)."""
    models = list(models)
    takes = set().union(*(_takes(m) for m in models)) if models else set()
    for k in overrides:
        if k not in takes:
            raise ConfigError(
                f"--model-kwargs: no model of the sweep ({', '.join(models)}) takes {k!r}"
            )


def _model_kwargs(model: str, overrides: dict[str, Any], algo: str = "ppo") -> dict[str, Any]:
    """The sizes of `model` under `algo`, with the `overrides` its constructor takes."""
    params = _takes(model)
    sizes = dict(MODEL_SIZES[model])
    if algo == "a2c":
        sizes.update(PAPER_TMAZE_SIZES.get(model, {}))
    return {**sizes, **{k: v for k, v in overrides.items() if k in params}}


def with_algo_kwargs(algo: AlgoConfig, algo_kwargs: dict[str, Any]) -> AlgoConfig:
    """`algo` with the fields `algo_kwargs` (`--algo-kwargs`) replaced; `ConfigError`
    naming an unknown field or a value of the wrong kind."""
    fields = {f.name for f in dataclasses.fields(AlgoConfig)}
    unknown = sorted(set(algo_kwargs) - fields)
    if unknown:
        raise ConfigError(
            f"--algo-kwargs: AlgoConfig has no field {unknown[0]!r}; fields: "
            f"{', '.join(sorted(fields))}"
        )
    for k, v in algo_kwargs.items():
        default = getattr(algo, k)
        number = isinstance(v, int | float) and not isinstance(v, bool)
        ok = isinstance(v, bool) if isinstance(default, bool) else number
        if ok and isinstance(default, int) and not isinstance(default, bool):
            ok = isinstance(v, int)
        if not ok:
            kind = "true or false" if isinstance(default, bool) else "a number"
            raise ConfigError(f"algo.{k} must be {kind}; got {v!r}")
    return dataclasses.replace(algo, **algo_kwargs)


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
        cfg = dataclasses.replace(cfg, algo=with_algo_kwargs(cfg.algo, algo_kwargs))
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


def run_cell(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    budget_seconds: float | None = None,
    segment_seconds: float = 120.0,
    progress: bool = True,
    stop: Callable[[dict[str, np.ndarray]], tuple[int, str] | None] | None = None,
) -> dict[str, Any]:
    """Train (or continue) one cell in `run_dir`; returns its `sweep.json` state.

    The run goes in segments of about `segment_seconds` (each a `run_training` call
    that ends with a checkpoint, all served by one `Trainer`) until it is complete or
    its accumulated wall time reaches `budget_seconds`. Does nothing for a finished run
    or a spent budget. A run stopped before its first checkpoint starts again.

    `stop(metrics)`, asked with the run's metrics so far (when a run is resumed, and
    after each segment), returns `(env step, reason)` once the run should stop early (or
    None): the run is then complete, with `stopped_at` and `stop_reason` in its state.
    """
    run_dir = Path(run_dir)
    resume = (run_dir / CONFIG_FILE).exists()
    fresh = not (run_dir / CHECKPOINT_FILE).exists()
    state = {"wall_seconds": 0.0, "env_steps": 0} if fresh else _read_state(run_dir)
    if resume:
        diff = changed_fields(load_config(run_dir), cfg)
        if diff:
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({', '.join(diff)}); use another --out"
            )
    before = dict(state)
    if stop is not None and not fresh and state.get("stopped_at") is None:
        _apply_stop(stop, run_dir, state)
    state["complete"] = (
        state.get("env_steps", 0) >= cfg.num_updates * cfg.steps_per_update
        or state.get("stopped_at") is not None
        or state.get("solved_at") is not None  # run directories written before `stop`
    )
    state["total_steps"] = cfg.total_steps
    rate: float | None = None
    trainer: Trainer | None = None
    try:
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
            if trainer is None:
                trainer = Trainer(cfg)
            result = run_training(
                cfg, run_dir, resume=resume, stop_after=stop_after, progress=progress,
                trainer=trainer,
            )  # fmt: skip
            state["wall_seconds"] = spent + (time.perf_counter() - t0)
            state["env_steps"] = result.env_steps
            state["complete"] = result.complete
            if stop is not None:
                _apply_stop(stop, run_dir, state)
            if math.isfinite(result.steps_per_second):
                rate = result.steps_per_second
                state["env_steps_per_s"] = rate  # execution only, compilation excluded
            resume = True
            _write_state(run_dir, state)
    finally:
        if trainer is not None:
            trainer.close()
    if resume and state != before:
        _write_state(run_dir, state)
    return state


def _apply_stop(
    stop: Callable[[dict[str, np.ndarray]], tuple[int, str] | None],
    run_dir: Path,
    state: dict[str, Any],
) -> None:
    verdict = stop(read_metrics(run_dir / METRICS_FILE))
    if verdict is not None:
        state["stopped_at"], state["stop_reason"] = int(verdict[0]), verdict[1]
        state["complete"] = True


def first_held(
    metrics: dict[str, np.ndarray], column: str, threshold: float, stretch: int
) -> int | None:
    """The first env step at which the episodes that ended in the last `stretch` env
    steps (whole updates, rounded up) had a mean `column` of at least `threshold`: each
    update's value weighted by its episodes. An update with no ended episode breaks the
    stretch. None if never.

    The mean is over the stretch, not per update: an update holds a few episodes, so
    asking each for the threshold would turn one unlucky update into a failure."""
    steps, value, eps = metrics["env_steps"], metrics[column], metrics["episodes"]
    if len(steps) == 0:
        return None
    need = max(1, math.ceil(stretch / steps[0]))  # updates in the stretch
    valid = np.isfinite(value) & (eps > 0)
    weighted = np.where(valid, value * eps, 0.0)
    for i in range(need - 1, len(steps)):
        window = slice(i - need + 1, i + 1)
        if valid[window].all() and weighted[window].sum() >= threshold * eps[window].sum():
            return int(steps[i])
    return None


def junction_reached_at(metrics: dict[str, np.ndarray], time_limit: int) -> int | None:
    """The env step of the first update in which an episode ended before the time limit:
    a turn at the T-Maze junction (an episode ends only by a turn there or the limit).
    None if never."""
    eps, length = metrics["episodes"], metrics["mean_length"]
    early = (eps > 0) & np.isfinite(length) & (length < time_limit)
    return int(metrics["env_steps"][np.argmax(early)]) if early.any() else None


def tmaze_stop(metrics: dict[str, np.ndarray], time_limit: int = 1000) -> tuple[int, str] | None:
    """The T-Maze sweep's early stop: `(step, "never reached")` at the last whole update
    within `GIVE_UP_STEPS` if the junction was never reached; `(step, "held")` once the
    success rate held `HELD_SUCCESS` over `HELD_STEPS` (`first_held`); else None."""
    steps = metrics["env_steps"]
    if len(steps) == 0:
        return None
    if junction_reached_at(metrics, time_limit) is None:
        # The last whole update within GIVE_UP_STEPS (where `--total-steps 1500000` ends).
        past = steps + steps[0] > GIVE_UP_STEPS
        return (int(steps[np.argmax(past)]), "never reached") if past.any() else None
    held = first_held(metrics, "success_rate", HELD_SUCCESS, HELD_STEPS)
    return None if held is None else (held, "held")


def write_csv(
    path: Path, columns: Iterable[str], rows: list[dict[str, Any]], formats: dict[str, str]
) -> None:
    """`rows` as a CSV of `columns`, the values of `formats`' columns formatted with them."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow({**r, **{k: format(r[k], spec) for k, spec in formats.items()}})


def final_rates(metrics: dict[str, np.ndarray], fraction: float = FINAL_FRACTION):
    """Episode-weighted mean success rate and return over the last `fraction` of the
    updates (at least one); NaN where no episode ended there."""
    n = len(metrics["update"])
    if n == 0:
        return math.nan, math.nan
    k = max(1, int(round(n * fraction)))
    w = metrics["episodes"][-k:]
    return (
        episode_weighted_mean(metrics["success_rate"][-k:], w),
        episode_weighted_mean(metrics["mean_return"][-k:], w),
    )


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


def _status(state: dict[str, Any], verdict: tuple[int, str] | None) -> str:
    """Why a run ended: its own stop reason, else the rule's verdict on its metrics (a
    run trained with `--run-to-end` or by an older version), else `ran to <its total
    steps>` (e.g. `ran to 1.50M`, a run cut by `--total-steps` before the rule ended it)
    or `partial`."""
    if state.get("stop_reason"):
        return str(state["stop_reason"])
    if verdict is not None:
        return verdict[1]
    if not state.get("complete"):
        return "partial"
    return f"ran to {_millions(state.get('total_steps', state['env_steps']))}"


def _millions(step: int | str) -> str:
    return f"{int(step) / 1e6:.2f}M"


def runs_table(rows: list[dict[str, Any]]) -> str:
    """The runs of `aggregate` as a markdown table, one row per run: the env step at
    which the junction was first reached, at which 95% success had held over 0.5M steps,
    the final success, env steps, wall time and status."""
    head = ["model", "corridor", "seed", "junction first reached", "95% held by"]
    head += ["final success", "env steps", "wall time", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        succ = float(r["final_success_rate"])
        cells = [
            r["model"],
            str(r["corridor_length"]),
            str(r["seed"]),
            "never" if r["junction_at"] == "" else _millions(r["junction_at"]),
            "—" if r["held_at"] == "" else _millions(r["held_at"]),
            "—" if math.isnan(succ) else f"{100 * succ:.1f}%",
            _millions(r["env_steps"]),
            f"{float(r['wall_seconds']) / 60:.0f} min",
            r["status"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def aggregate(out: Path, results: Path | None = None) -> tuple[Path, list[Path]]:
    """Write `tmaze.csv`, `tmaze.md` (`runs_table`) and `tmaze-L<L>.png` (one per
    corridor length) into `results` (default `out`) from every run directory under
    `out`; returns the CSV's and the figures' paths."""
    out = Path(out)
    results = Path(results) if results is not None else out
    results.mkdir(parents=True, exist_ok=True)
    runs = _find_runs(out)
    rows = []
    curves: dict[int, dict[str, list[dict[str, np.ndarray]]]] = {}
    for cell, d in runs:
        m = read_metrics(d / METRICS_FILE)
        if len(m["update"]) == 0:
            continue  # started, nothing logged yet: nothing to report
        succ, ret = final_rates(m)
        state = _read_state(d)
        limit = load_config(d).env.max_steps_in_episode or 1000
        junction = junction_reached_at(m, limit)
        held = first_held(m, "success_rate", HELD_SUCCESS, HELD_STEPS)
        verdict = tmaze_stop(m, limit)  # the rule on the metrics, however the run was run
        rows.append(
            {
                "model": cell.model,
                "corridor_length": cell.corridor_length,
                "seed": cell.seed,
                "final_success_rate": succ,
                "final_return": ret,
                "env_steps": int(m["env_steps"][-1]) if len(m["env_steps"]) else 0,
                "wall_seconds": float(state["wall_seconds"]),
                "junction_at": "" if junction is None else junction,
                "held_at": "" if held is None else held,
                "status": _status(state, verdict),
            }
        )
        curves.setdefault(cell.corridor_length, {}).setdefault(cell.model, []).append(m)
    csv_path = results / "tmaze.csv"
    formats = {"final_success_rate": ".4f", "final_return": ".4f", "wall_seconds": ".1f"}
    write_csv(csv_path, CSV_COLUMNS, rows, formats)
    (results / "tmaze.md").write_text(runs_table(rows))
    figures = [
        plot_sweep_length(L, by_model, results / f"tmaze-L{L}.png")
        for L, by_model in curves.items()
    ]
    return csv_path, figures
