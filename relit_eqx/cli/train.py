"""`relit-eqx train`: the options, the configuration overrides (`tyro`), and the run.

Exit codes: 0 done (or stopped by `--stop-after`), 2 bad input (reported on stderr
before anything is compiled or written), 128 + the signal's number when interrupted
(130 SIGINT, 143 SIGTERM; the run is checkpointed and resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

from ..rl.config import ConfigError, TrainConfig, changed_fields
from ..rl.presets import DEFAULT_PRESET, get_preset, model_kwargs_for, preset_names
from ..rl.run import Interrupted, check_same_run, env_label, run_training
from ..rl.run_dir import CONFIG_FILE, check_new_run_dir, check_resume, load_config
from ..rl.trainer import Trainer
from .common import enable_compilation_cache, error, missing_rl_extra

__all__ = ["train_command", "parse_overrides"]


_DESCRIPTION = """Train an agent with PPO (or A2C) on a memory task.

Run options (parsed before the configuration overrides below):
  --preset NAME      start from a named configuration (default: {default});
                     presets: {presets}
  --env NAME         shorthand for --env.name NAME: tmaze, gymnax:ID (e.g.
                     gymnax:CartPole-v1), craftax:Craftax-Classic-Symbolic-v1,
                     gymnasium:ID (host environments)
  --devices N        data-parallel over N devices (environments split across them,
                     parameters replicated; default 1); N must divide
                     --algo.num-envs. On CPU, XLA_FLAGS=
                     --xla_force_host_platform_device_count=N makes N devices
  --distributed      call jax.distributed.initialize() first (multi-host runs;
                     every process runs the same command), optionally with
                     --coordinator HOST:PORT --num-processes P --process-id I
  --out DIR          run directory (default: runs/PRESET-sSEED-TIMESTAMP); must not
                     hold another run
  --resume DIR       continue the run in DIR from its last checkpoint (only
                     --total-steps may change)
  --stop-after N     stop after the chunk that reaches N env steps (resumable)
  --no-progress      no progress bar
  --no-compile-cache do not keep compiled programs in JAX's persistent cache
                     (default: $JAX_COMPILATION_CACHE_DIR, else
                     ~/.cache/relit_eqx/jax), which makes a rerun start in seconds

Every configuration field below can be overridden, e.g. --algo.lr 3e-4
--env.corridor-length 20 --model.kwargs.d-model 64."""


def _run_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relit-eqx train", add_help=False)
    p.add_argument("--preset", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--resume", default=None)
    p.add_argument("--stop-after", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-compile-cache", action="store_true")
    p.add_argument("--env", default=None)
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--distributed", action="store_true")
    p.add_argument("--coordinator", default=None)
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("--process-id", type=int, default=None)
    return p


def _initialize_distributed(opts: argparse.Namespace) -> None:
    """`jax.distributed.initialize` with the options given (the rest auto-detected:
    Slurm, Open MPI, TPU pods, or `JAX_COORDINATOR_ADDRESS` …)."""
    kwargs = {
        k: v
        for k, v in (
            ("coordinator_address", opts.coordinator),
            ("num_processes", opts.num_processes),
            ("process_id", opts.process_id),
        )
        if v is not None
    }
    import jax

    jax.distributed.initialize(**kwargs)


def _named_model(args: list[str]) -> str | None:
    """The value of the last `--model.name` in `args`, if any."""
    name = None
    for i, a in enumerate(args):
        if a == "--model.name" and i + 1 < len(args):
            name = args[i + 1]
        elif a.startswith("--model.name="):
            name = a.split("=", 1)[1]
    return name


def parse_overrides(base: TrainConfig, args: list[str]) -> TrainConfig:
    """`base` with the overrides `args` (e.g. `["--algo.lr", "3e-4"]`) applied, as
    `relit-eqx train` reads them; `SystemExit` (tyro's) on a bad override.

    `--model.name` naming another registered model than `base`'s starts that model from
    its own sizes (`presets.model_kwargs_for`), not from `base`'s model's arguments;
    further `--model.kwargs.*` overrides apply on top."""
    import tyro

    from ..models import model_names

    name = _named_model(args)
    if name is not None and name != base.model.name and name in model_names():
        model = dataclasses.replace(base.model, name=name, kwargs=model_kwargs_for(name))
        base = dataclasses.replace(base, model=model)

    description = _DESCRIPTION.format(default=DEFAULT_PRESET, presets=", ".join(preset_names()))
    return tyro.cli(
        TrainConfig, default=base, args=args, prog="relit-eqx train", description=description
    )


def _default_out(preset: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / f"{preset}-s{seed}-{stamp}"
    i = 1
    while path.exists():
        path = Path("runs") / f"{preset}-s{seed}-{stamp}-{i}"
        i += 1
    return path


def _error(msg: str) -> int:
    return error("train", msg)


def train_command(argv: list[str]) -> int:
    """`relit-eqx train [--preset NAME] [--env NAME] [--out DIR | --resume DIR]
    [--stop-after N] [--devices N] [--distributed] [--total-steps N] [--seed S]
    [overrides…]`. Returns the exit code: 0 done, 2 bad input (reported on stderr
    before anything is compiled or written), 128 + signal number when interrupted."""
    missing = missing_rl_extra("tyro", "matplotlib")
    if missing is not None:
        return _error(missing)
    opts, rest = _run_options().parse_known_args(argv)
    if opts.stop_after is not None and opts.stop_after <= 0:
        return _error(f"--stop-after must be positive; got {opts.stop_after}")
    if opts.devices <= 0:
        return _error(f"--devices must be positive; got {opts.devices}")
    if not opts.distributed and any(
        v is not None for v in (opts.coordinator, opts.num_processes, opts.process_id)
    ):
        return _error("--coordinator, --num-processes and --process-id need --distributed")
    if opts.env is not None:
        if any(a == "--env.name" or a.startswith("--env.name=") for a in rest):
            return _error("--env and --env.name both given; use one")
        rest = ["--env.name", opts.env, *rest]
    if opts.distributed:
        try:
            _initialize_distributed(opts)
        except (RuntimeError, ValueError) as e:
            return _error(f"--distributed: jax.distributed.initialize() failed: {e}")
    resume = opts.resume is not None
    try:
        if resume:
            if opts.preset is not None:
                raise ConfigError(
                    "--preset cannot be combined with --resume (the run keeps its config)"
                )
            run_dir = Path(opts.resume)
            if opts.out is not None and Path(opts.out).resolve() != run_dir.resolve():
                raise ConfigError("--out and --resume name different directories")
            if not (run_dir / CONFIG_FILE).is_file():
                raise ConfigError(f"--resume {run_dir}: no run to resume there (no {CONFIG_FILE})")
            saved = load_config(run_dir)
            cfg = parse_overrides(saved, rest)
            changed = changed_fields(saved, cfg)
            if changed:
                raise ConfigError(
                    f"cannot change {', '.join(changed)} when resuming (only --total-steps may change)"
                )
            check_same_run(run_dir, cfg)
            check_resume(run_dir, cfg)
            preset = None
        else:
            preset = opts.preset or DEFAULT_PRESET
            cfg = parse_overrides(get_preset(preset), rest)
            run_dir = Path(opts.out) if opts.out is not None else _default_out(preset, cfg.seed)
            check_new_run_dir(run_dir)
        trainer = Trainer(cfg, devices=opts.devices)  # validates; builds abstractly
    except ConfigError as e:
        return _error(str(e))

    if not opts.no_compile_cache:
        enable_compilation_cache()
    what = f"preset {preset}" if preset else f"resuming {run_dir}"
    import jax

    on = f" on {opts.devices} {jax.default_backend()} devices" if opts.devices > 1 else ""
    print(
        f"relit-eqx train: {what}; model {cfg.model.name}, {env_label(cfg)}, "
        f"{cfg.total_steps:,} env steps{on} -> {run_dir}",
        file=sys.stderr,
    )
    try:
        with trainer:
            result = run_training(
                cfg,
                run_dir,
                resume=resume,
                stop_after=opts.stop_after,
                progress=not opts.no_progress,
                devices=opts.devices,
                trainer=trainer,
            )
    except ConfigError as e:
        return _error(str(e))
    except Interrupted as e:
        print(f"\ninterrupted; continue with: relit-eqx train --resume {run_dir}", file=sys.stderr)
        return 128 + int(e.signum)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: relit-eqx train --resume {run_dir}", file=sys.stderr)
        return 130
    status = "done" if result.complete else f"stopped; continue with --resume {run_dir}"
    print(
        f"{status}: {result.env_steps:,} env steps in {result.wall_seconds:.1f} s "
        f"(compile {result.compile_seconds:.1f} s, {result.steps_per_second:,.0f} env-steps/s); "
        f"last return {result.mean_return:.3f}"
        + ("" if math.isnan(result.success_rate) else f", success {result.success_rate:.1%}")
    )
    print(f"metrics: {result.metrics_path}")
    print(f"learning curve: {result.plot_path}")
    return 0
