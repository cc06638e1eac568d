"""`relit-eqx sweep`: T-Maze sweeps (corridor lengths × models × seeds) and the
MemoryChain memory-length experiment (`--task memorychain`: memory lengths × models ×
seeds) from the command line; the work is `relit_eqx.rl.sweep`'s and
`relit_eqx.rl.memorychain`'s."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..rl import memorychain as mc
from ..rl.config import ConfigError, TrainConfig, validate
from ..rl.sweep import (
    ALGOS,
    LENGTHS,
    MODELS,
    Cell,
    aggregate,
    cell_config,
    check_model_kwargs,
    run_cell,
    tmaze_stop,
)
from .common import enable_compilation_cache, error, missing_rl_extra

__all__ = ["sweep_command"]


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
    return error("sweep", msg)


def _solved(metrics: dict[str, Any], stretch: int) -> tuple[int, str] | None:
    at = mc.solved_at(metrics, stretch)
    return None if at is None else (at, "solved")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="relit-eqx sweep",
        description="Sweeps of lengths x models x seeds, one resumable run directory per "
        "cell; rerun the same command to continue. --task tmaze (default): T-Maze corridor "
        "lengths, DIR/<model>-L<L>-s<seed>, ending with tmaze.csv and tmaze-L<L>.png; a "
        "run stops early if it has not reached the junction by 1.5M steps, or once its "
        "success rate held 95%% over 0.5M steps (unless --run-to-end). "
        "--task memorychain: bsuite MemoryChain memory lengths with a budget per length "
        "and an early stop once solved, DIR/<model>-M<M>-s<seed>, ending with "
        "memorychain.csv and memorychain.png.",
    )
    p.add_argument("--task", choices=("tmaze", "memorychain"), default="tmaze")
    p.add_argument(
        "--lengths",
        default=None,
        help=f"corridor lengths (default {','.join(map(str, LENGTHS))}) or memory lengths "
        f"(default {','.join(map(str, mc.MC_LENGTHS))})",
    )
    p.add_argument(
        "--models",
        default=None,
        help=f"models, from {','.join(MODELS)} (tmaze) or {','.join(mc.MC_MODELS)} "
        "(memorychain; any memax-* model)",
    )
    p.add_argument("--seeds", default="0,1,2", help="seeds")
    p.add_argument(
        "--total-steps",
        type=int,
        default=None,
        help="env steps per run (default: 5M for tmaze; memorychain: its budget per length)",
    )
    p.add_argument(
        "--algo",
        choices=ALGOS,
        default="a2c",
        help="tmaze only. a2c: the authors' A2C setup per model (paper_a2c(model), GRU/LSTM widths "
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
        help="JSON object overriding model sizes, e.g. '{\"d_model\": 8}' (applied to the "
        "models that take them; a key no model of the sweep takes is an error)",
    )
    p.add_argument(
        "--algo-kwargs",
        default="{}",
        help="JSON object overriding fields of the algorithm's configuration, e.g. "
        "'{\"lr\": 5e-4}'",
    )
    p.add_argument(
        "--run-to-end",
        action="store_true",
        help="tmaze only: train every run to --total-steps, without the early stop",
    )
    p.add_argument("--log-interval", type=int, default=None, help="updates per chunk")
    p.add_argument("--aggregate-only", action="store_true", help="only write CSV and figures")
    p.add_argument("--no-progress", action="store_true")
    return p


def sweep_command(argv: Sequence[str]) -> int:
    """`relit-eqx sweep [options]`; returns the exit code (2: bad input, reported before
    anything is trained)."""
    args = _parser().parse_args(list(argv))
    missing = missing_rl_extra("matplotlib")
    if missing is not None:
        return _error(missing)
    memorychain = args.task == "memorychain"
    try:
        default_lengths = mc.MC_LENGTHS if memorychain else LENGTHS
        lengths = _int_list("lengths", args.lengths or ",".join(map(str, default_lengths)))
        seeds = _int_list("seeds", args.seeds)
        default_models = mc.MC_MODELS if memorychain else MODELS
        models = [m.strip() for m in (args.models or ",".join(default_models)).split(",")]
        models = [m for m in models if m]
        if not models:
            raise ConfigError("--models is empty")
        known = mc.MC_SIZES if memorychain else MODELS
        for m in models:
            if m not in known:
                raise ConfigError(f"--models: unknown model {m!r}; choices: {', '.join(known)}")
        for L in lengths:
            if L <= 0:
                what = "memory" if memorychain else "corridor"
                raise ConfigError(f"--lengths: {what} lengths must be positive; got {L}")
        if memorychain and args.run_to_end:
            raise ConfigError("--run-to-end is for --task tmaze (MemoryChain stops when solved)")
        if args.total_steps is not None and args.total_steps <= 0:
            raise ConfigError(f"--total-steps must be positive; got {args.total_steps}")
        if args.budget_minutes is not None and not args.budget_minutes > 0:
            raise ConfigError(f"--budget-minutes must be positive; got {args.budget_minutes}")
        overrides = _json_object("model-kwargs", args.model_kwargs)
        algo_overrides = _json_object("algo-kwargs", args.algo_kwargs)
        check_model_kwargs(models, overrides)
        cells = [Cell(m, L, s) for L in lengths for m in models for s in seeds]
        configs: dict[str, TrainConfig] = {}
        for c in cells:
            if memorychain:
                name = f"{c.model}-M{c.corridor_length}-s{c.seed}"
                cfg = mc.memorychain_config(
                    c.model,
                    c.corridor_length,
                    c.seed,
                    total_steps=args.total_steps,
                    model_kwargs=overrides,
                    algo_kwargs=algo_overrides,
                )
            else:
                name = c.name
                cfg = cell_config(
                    c,
                    algo=args.algo,
                    total_steps=5_000_000 if args.total_steps is None else args.total_steps,
                    model_kwargs=overrides,
                    algo_kwargs=algo_overrides,
                    log_interval=args.log_interval,
                )
            configs[name] = cfg
        if not args.aggregate_only:
            for cfg in configs.values():
                validate(cfg)
    except ConfigError as e:
        return _error(str(e))

    if not args.aggregate_only:
        enable_compilation_cache()
        budget = None if args.budget_minutes is None else args.budget_minutes * 60
        for i, (name, cfg) in enumerate(configs.items(), 1):
            run_dir = args.out / name
            print(
                f"[{i}/{len(configs)}] {name}: {cfg.total_steps:,} env steps -> {run_dir}",
                file=sys.stderr,
                flush=True,
            )
            stop = None
            if memorychain:
                stop = functools.partial(
                    _solved, stretch=mc.stretch_steps(int(cfg.env.params["memory_length"]))
                )
            elif not args.run_to_end:
                limit = cfg.env.max_steps_in_episode or 1000
                stop = functools.partial(tmaze_stop, time_limit=limit)
            try:
                state = run_cell(
                    cfg,
                    run_dir,
                    budget_seconds=budget,
                    progress=not args.no_progress,
                    stop=stop,
                    segment_seconds=15.0 if memorychain else 120.0,
                )
            except ConfigError as e:
                return _error(str(e))
            except KeyboardInterrupt:
                print("\ninterrupted; rerun the same command to continue", file=sys.stderr)
                return 130
            if state.get("stopped_at") is not None:
                status = f"{state['stop_reason']} at {state['stopped_at']:,}"
            elif state.get("solved_at") is not None:
                status = f"solved at {state['solved_at']:,}"
            else:
                status = "complete" if state["complete"] else "stopped (budget)"
            print(
                f"[{i}/{len(configs)}] {name}: {status}; {state['env_steps']:,} env steps, "
                f"{state['wall_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    if memorychain:
        csv_path, figure = mc.aggregate_memorychain(args.out, args.results)
        print(f"results: {csv_path}")
        print(f"figure: {figure}")
        return 0
    csv_path, figures = aggregate(args.out, args.results)
    print(f"results: {csv_path}")
    for f in figures:
        print(f"figure: {f}")
    return 0
