"""The training loop and the `train` command.

The whole update (rollout → GAE → PPO epochs) is one pure function of a
`RunnerState`; up to `log_interval` updates are fused into one jitted loop (a
"chunk"). Between chunks, Python writes the metrics, a checkpoint and the progress bar.
The chunk is compiled once per configuration (and cached in-process), so a resumed run
executes exactly the same compiled code on exactly the same state as an uninterrupted
one: its metrics are bit-identical.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Int, PyTree, UInt32

from ..envs import AutoResetWrapper, Environment, EpisodeStatsWrapper, TMaze, TMazeParams
from ..models import get_model
from .agent import Agent
from .checkpoint import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    PLOT_FILE,
    holds_run,
    load_checkpoint,
    load_config,
    save_checkpoint,
    save_config,
)
from .config import ConfigError, TrainConfig, config_to_dict, load_models, validate
from .logging import MetricsWriter, Progress, plot_learning_curve
from .ppo import bootstrap_values, gae, ppo_update
from .presets import DEFAULT_PRESET, get_preset, preset_names
from .rollout import RolloutCarry, collect_rollout

__all__ = [
    "RunnerState",
    "Setup",
    "RunResult",
    "make_env",
    "make_agent",
    "make_optimizer",
    "init_runner",
    "update_step",
    "check_buildable",
    "run_training",
    "train_command",
]


class RunnerState(eqx.Module):
    """Everything that changes during training (and is checkpointed).

    - `params`: the agent's arrays (`eqx.filter(agent, eqx.is_array)`).
    - `opt_state`: the optimiser state.
    - `rollout`: environment states, current observations, reset flags, memory states.
    - `key`: a raw `uint32[2]` PRNG key.
    - `update`: updates done so far.
    """

    params: PyTree
    opt_state: PyTree
    rollout: RolloutCarry
    key: UInt32[Array, " 2"]
    update: Int[Array, ""]


@dataclass(frozen=True)
class Setup:
    """The static side of a run: configuration, environment, the agent's non-array
    part, optimiser and learning-rate schedule."""

    cfg: TrainConfig
    env: Environment
    env_params: PyTree
    static: PyTree
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule


def make_env(cfg: TrainConfig) -> tuple[Environment, PyTree]:
    """The auto-resetting, statistics-reporting environment and its parameters."""
    if cfg.env.name == "tmaze":
        env = EpisodeStatsWrapper(AutoResetWrapper(TMaze(cfg.env.corridor_length)))
        return env, TMazeParams(max_steps_in_episode=cfg.env.max_steps_in_episode)
    raise ConfigError(f"env.name: unknown environment {cfg.env.name!r}")


def make_agent(cfg: TrainConfig, env: Environment, key: Array) -> Agent:
    """Build the model by registry name (`get_model(cfg.model.name)`) and the heads."""
    load_models()
    k_model, k_heads = jax.random.split(key)
    d_in = math.prod(env.observation_shape)
    model = get_model(cfg.model.name)(d_in, key=k_model, **cfg.model.kwargs)
    return Agent(
        model,
        env.action_space(),
        hidden=cfg.agent.head_hidden,
        activation=cfg.agent.activation,
        key=k_heads,
    )


def make_optimizer(cfg: TrainConfig) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Global-norm clipping then Adam, with a constant or linearly annealed step size."""
    a = cfg.algo
    n_steps = cfg.num_updates * a.update_epochs * a.num_minibatches
    if a.anneal_lr:
        schedule = optax.linear_schedule(a.lr, 0.0, n_steps)
    else:
        schedule = optax.constant_schedule(a.lr)
    opt = optax.chain(
        optax.clip_by_global_norm(a.max_grad_norm), optax.adam(schedule, eps=a.adam_eps)
    )
    return opt, schedule


def check_buildable(cfg: TrainConfig) -> None:
    """Build the agent abstractly (`eqx.filter_eval_shape`: nothing is computed or
    compiled); `ConfigError` if the model rejects its keyword arguments."""
    env, _ = make_env(cfg)
    try:
        eqx.filter_eval_shape(make_agent, cfg, env, jax.random.PRNGKey(0))
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"model.kwargs: cannot build model {cfg.model.name!r} with {cfg.model.kwargs}: {e}"
        ) from None


def _config_key(cfg: TrainConfig) -> str:
    """Identifies what is compiled for `cfg`: everything but the seed."""
    d = config_to_dict(cfg)
    d.pop("seed")
    return json.dumps(d, sort_keys=True)


# Jitted initialisers and compiled chunks, per configuration (seed excluded): runs of
# the same configuration in one process compile once.
_INIT_FNS: dict[str, Any] = {}
_COMPILED: dict[str, Any] = {}


def init_runner(cfg: TrainConfig) -> tuple[Setup, RunnerState]:
    """The static setup and the initial runner state for `cfg` (all keys from `cfg.seed`).

    The agent is built eagerly (for large models this compiles faster than one jitted
    initialiser); the optimiser state, environments (reset) and memory states (zero)
    come from one jitted function, cached per configuration.
    """
    env, env_params = make_env(cfg)
    optimizer, schedule = make_optimizer(cfg)
    n = cfg.algo.num_envs
    k_agent, k_env, k_run = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    agent = make_agent(cfg, env, k_agent)
    params, static = eqx.partition(agent, eqx.is_array)

    def init(params, k_env, k_run):
        agent = eqx.combine(params, static)
        opt_state = optimizer.init(eqx.filter(agent, eqx.is_inexact_array))
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, n), env_params
        )
        model_state = jax.vmap(lambda _: agent.init_state())(jnp.arange(n))
        carry = RolloutCarry(env_state, obs, jnp.ones((n,), jnp.bool_), model_state)
        return RunnerState(params, opt_state, carry, k_run, jnp.zeros((), jnp.int32))

    cfg_key = _config_key(cfg)
    if cfg_key not in _INIT_FNS:
        _INIT_FNS[cfg_key] = jax.jit(init)
    runner = _INIT_FNS[cfg_key](params, k_env, k_run)
    return Setup(cfg, env, env_params, static, optimizer, schedule), runner


def _masked_mean(x: Array, mask: Array) -> Array:
    n = jnp.sum(mask)
    total = jnp.sum(jnp.where(mask, x, 0).astype(jnp.float32))
    return jnp.where(n > 0, total / jnp.maximum(n, 1), jnp.nan)


def update_step(setup: Setup, runner: RunnerState) -> tuple[RunnerState, dict[str, Array]]:
    """One update: a rollout, GAE, then `update_epochs × num_minibatches` gradient steps.

    **Returns:** the new runner state and this update's metrics (scalars).
    """
    a = setup.cfg.algo
    agent = eqx.combine(runner.params, setup.static)
    key, k_roll, k_update = jax.random.split(runner.key, 3)
    start = runner.rollout
    carry, traj, last_value = collect_rollout(
        agent, setup.env, setup.env_params, start, k_roll, a.num_steps
    )
    next_values = bootstrap_values(traj.value, last_value, traj.truncated, traj.final_value)
    advantages, returns = gae(
        traj.reward,
        traj.value,
        next_values,
        traj.terminated,
        traj.terminated | traj.truncated,
        a.gamma,
        a.gae_lambda,
    )
    lr = setup.schedule(runner.update * a.update_epochs * a.num_minibatches)
    agent, opt_state, loss_metrics = ppo_update(
        agent,
        setup.optimizer,
        runner.opt_state,
        traj,
        start.model_state,
        advantages,
        returns,
        k_update,
        a,
    )
    done = traj.episode_done
    metrics = dict(
        loss_metrics,
        episodes=jnp.sum(done).astype(jnp.int32),
        mean_return=_masked_mean(traj.episode_return, done),
        success_rate=_masked_mean(traj.episode_success, done),
        mean_length=_masked_mean(traj.episode_length, done),
        lr=jnp.asarray(lr, jnp.float32),
    )
    new = RunnerState(eqx.filter(agent, eqx.is_array), opt_state, carry, key, runner.update + 1)
    return new, metrics


def _compiled_chunk(setup: Setup, runner: RunnerState):
    """The compiled chunk `(runner, n) -> (runner, metrics)`: `n <= log_interval` updates
    in one `lax.fori_loop`, their metrics in buffers of length `log_interval` (entries
    past `n` are undefined). One compilation serves every chunk length, the last,
    shorter chunk of a run included. Cached per configuration."""
    key = _config_key(setup.cfg)
    if key not in _COMPILED:
        size = setup.cfg.log_interval
        shapes = jax.eval_shape(lambda r: update_step(setup, r)[1], runner)

        def chunk(r: RunnerState, n: Int[Array, ""]):
            buf = jax.tree_util.tree_map(lambda s: jnp.zeros((size, *s.shape), s.dtype), shapes)

            def body(i, carry):
                r, buf = carry
                r, m = update_step(setup, r)
                buf = jax.tree_util.tree_map(lambda b, x: b.at[i].set(x), buf, m)
                return r, buf

            return jax.lax.fori_loop(0, n, body, (r, buf))

        _COMPILED[key] = jax.jit(chunk).lower(runner, jnp.zeros((), jnp.int32)).compile()
    return _COMPILED[key]


@dataclass(frozen=True)
class RunResult:
    """What `train` did: the run directory and files, updates and env steps done,
    the last chunk's mean return and success rate, throughput (env steps per second of
    execution, compilation excluded), and wall and compile time in seconds."""

    run_dir: Path
    metrics_path: Path
    plot_path: Path
    updates: int
    env_steps: int
    mean_return: float
    success_rate: float
    steps_per_second: float
    wall_seconds: float
    compile_seconds: float
    complete: bool


def _weighted(values: np.ndarray, weights: np.ndarray) -> float:
    ok = weights > 0
    if not ok.any():
        return math.nan
    return float(np.sum(values[ok] * weights[ok]) / np.sum(weights[ok]))


def run_training(
    cfg: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    checkpoint_every: float = 30.0,
) -> RunResult:
    """Train (or continue training) the run `cfg` in `run_dir`.

    **Arguments:**

    - `cfg`: the run (validated here).
    - `run_dir`: where `config.json`, `metrics.csv`, `checkpoint.eqx` and
      `learning_curve.png` go. A new run needs a directory holding no run.
    - `resume`: continue from `run_dir/checkpoint.eqx` (with the same `cfg`, except
      possibly `total_steps`).
    - `stop_after`: stop (checkpointed, resumable) after the first chunk reaching this
      many env steps.
    - `progress`: show the progress bar.
    - `checkpoint_every`: seconds between checkpoints; one is also written when the
      run ends, stops or is interrupted. Any checkpoint resumes bit-identically, since
      every chunk runs the same compiled update whatever its length.
    """
    t_start = time.perf_counter()
    validate(cfg)
    run_dir = Path(run_dir)
    if not resume and holds_run(run_dir):
        raise ConfigError(f"{run_dir} holds another run; resume it or choose another directory")
    if resume and not (run_dir / CHECKPOINT_FILE).exists():
        raise ConfigError(f"{run_dir} holds no checkpoint to resume")
    check_buildable(cfg)

    if progress:
        print("building the agent and compiling the update…", file=sys.stderr, flush=True)
    setup, runner = init_runner(cfg)
    if resume:
        runner = load_checkpoint(run_dir, runner)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(run_dir, cfg)
    if resume:
        save_config(run_dir, cfg)  # total_steps may have changed
    done_updates = int(runner.update)
    writer = MetricsWriter(run_dir / METRICS_FILE, keep_updates=done_updates if resume else None)

    spu = cfg.steps_per_update
    n_updates = cfg.num_updates
    t0 = time.perf_counter()
    compiled = _compiled_chunk(setup, runner)
    compile_s = time.perf_counter() - t0
    bar = Progress(total=n_updates * spu, initial=done_updates * spu, enabled=progress)
    exec_s = 0.0
    exec_steps = 0
    last_ret, last_succ = math.nan, math.nan
    interrupted = False
    saved_at = time.perf_counter()
    try:
        while done_updates < n_updates:
            length = min(cfg.log_interval, n_updates - done_updates)
            t1 = time.perf_counter()
            runner, metrics = compiled(runner, jnp.asarray(length, jnp.int32))
            metrics = {k: np.asarray(v)[:length] for k, v in metrics.items()}
            exec_s += time.perf_counter() - t1
            exec_steps += length * spu
            rows = []
            for i in range(length):
                u = done_updates + i + 1
                row = {k: v[i] for k, v in metrics.items()}
                rows.append(dict(row, update=u, env_steps=u * spu))
            writer.append(rows)
            done_updates += length
            if time.perf_counter() - saved_at >= checkpoint_every:
                save_checkpoint(run_dir, runner)
                saved_at = time.perf_counter()
            last_ret = _weighted(metrics["mean_return"], metrics["episodes"])
            last_succ = _weighted(metrics["success_rate"], metrics["episodes"])
            bar.update(length * spu, done_updates * spu, last_ret, last_succ, exec_steps / exec_s)
            if stop_after is not None and done_updates * spu >= stop_after:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    save_checkpoint(run_dir, runner)  # the last completed chunk
    plot_learning_curve(run_dir / METRICS_FILE, run_dir / PLOT_FILE, title=_title(cfg))
    if interrupted:
        raise KeyboardInterrupt
    return RunResult(
        run_dir=run_dir,
        metrics_path=run_dir / METRICS_FILE,
        plot_path=run_dir / PLOT_FILE,
        updates=done_updates,
        env_steps=done_updates * spu,
        mean_return=last_ret,
        success_rate=last_succ,
        steps_per_second=exec_steps / exec_s if exec_s > 0 else math.nan,
        wall_seconds=time.perf_counter() - t_start,
        compile_seconds=compile_s,
        complete=done_updates >= n_updates,
    )


def _title(cfg: TrainConfig) -> str:
    return f"{cfg.model.name} on {cfg.env.name} (L={cfg.env.corridor_length}), seed {cfg.seed}"


# ----------------------------------------------------------------------------- CLI


_DESCRIPTION = """Train an agent with PPO (or A2C) on a memory task.

Run options (parsed before the configuration overrides below):
  --preset NAME      start from a named configuration (default: {default});
                     presets: {presets}
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
    return p


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _parse_overrides(base: TrainConfig, args: list[str]) -> TrainConfig:
    import tyro

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


def _enable_compilation_cache() -> None:
    """Keep compiled programs on disk (JAX's persistent cache) unless the user chose a
    cache directory already: the second run of a configuration skips compilation."""
    chosen = getattr(jax.config, "jax_compilation_cache_dir", None)
    if chosen or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    jax.config.update("jax_compilation_cache_dir", os.path.join(base, "relit_eqx", "jax"))


def _error(msg: str) -> int:
    print(f"relit-eqx train: error: {msg}", file=sys.stderr)
    return 2


def train_command(argv: list[str]) -> int:
    """`relit-eqx train [--preset NAME] [--out DIR | --resume DIR] [--stop-after N]
    [--total-steps N] [--seed S] [overrides…]`. Returns the exit code: 0 done, 2 bad
    input (reported on stderr before anything is compiled or written), 130 interrupted."""
    opts, rest = _run_options().parse_known_args(argv)
    for name in ("stop_after",):
        v = getattr(opts, name)
        if v is not None and v <= 0:
            return _error(f"--stop-after must be positive; got {v}")
    try:
        if opts.resume is not None:
            if opts.preset is not None:
                raise ConfigError(
                    "--preset cannot be combined with --resume (the run keeps its config)"
                )
            run_dir = Path(opts.resume)
            if opts.out is not None and Path(opts.out).resolve() != run_dir.resolve():
                raise ConfigError("--out and --resume name different directories")
            if not (run_dir / CONFIG_FILE).exists() or not (run_dir / CHECKPOINT_FILE).exists():
                raise ConfigError(
                    f"--resume {run_dir}: no run to resume there (no {CONFIG_FILE} and {CHECKPOINT_FILE})"
                )
            saved = load_config(run_dir)
            cfg = _parse_overrides(saved, rest)
            old, new = _flatten(config_to_dict(saved)), _flatten(config_to_dict(cfg))
            changed = sorted(
                k for k in set(old) | set(new) if k != "total_steps" and old.get(k) != new.get(k)
            )
            if changed:
                raise ConfigError(
                    f"cannot change {', '.join(changed)} when resuming (only --total-steps may change)"
                )
            preset = None
        else:
            preset = opts.preset or DEFAULT_PRESET
            cfg = _parse_overrides(get_preset(preset), rest)
            run_dir = Path(opts.out) if opts.out is not None else _default_out(preset, cfg.seed)
            if holds_run(run_dir):
                raise ConfigError(
                    f"--out {run_dir} holds another run; pass --resume {run_dir} to continue it "
                    "or choose another directory"
                )
        validate(cfg)
        check_buildable(cfg)
    except ConfigError as e:
        return _error(str(e))

    if not opts.no_compile_cache:
        _enable_compilation_cache()
    what = f"preset {preset}" if preset else f"resuming {run_dir}"
    print(
        f"relit-eqx train: {what}; model {cfg.model.name}, {cfg.env.name} "
        f"L={cfg.env.corridor_length}, {cfg.total_steps:,} env steps -> {run_dir}",
        file=sys.stderr,
    )
    try:
        result = run_training(
            cfg,
            run_dir,
            resume=opts.resume is not None,
            stop_after=opts.stop_after,
            progress=not opts.no_progress,
        )
    except ConfigError as e:
        return _error(str(e))
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: relit-eqx train --resume {run_dir}", file=sys.stderr)
        return 130
    status = "done" if result.complete else f"stopped; continue with --resume {run_dir}"
    print(
        f"{status}: {result.env_steps:,} env steps in {result.wall_seconds:.1f} s "
        f"(compile {result.compile_seconds:.1f} s, {result.steps_per_second:,.0f} env-steps/s); "
        f"last return {result.mean_return:.3f}, success {result.success_rate:.1%}"
    )
    print(f"metrics: {result.metrics_path}")
    print(f"learning curve: {result.plot_path}")
    return 0
