"""The training loop and the `train` command.

The whole update (rollout → GAE → PPO epochs) is one pure function of a
`RunnerState`; up to `log_interval` updates are fused into one jitted loop (a
"chunk"). Between chunks, Python writes the metrics, a checkpoint and the progress bar.
The chunk is compiled once per configuration (and cached in-process), so a resumed run
executes exactly the same compiled code on exactly the same state as an uninterrupted
one: its metrics are bit-identical.

Environments of other engines come in two kinds. gymnax and Craftax environments are
pure JAX: they run inside the same compiled chunk as T-Maze. Gymnasium environments run
on the host: each update is a Python rollout loop (the agent acts with a jitted step)
followed by the same jitted learner.

Data parallelism (`devices > 1`) places the runner state on a one-axis
`jax.sharding.Mesh`: the environment axis of the rollout state is sharded across the
devices, parameters and optimiser state are replicated, and XLA partitions the compiled
update (the gradient reduction included). The result equals the one-device result up to
floating-point reassociation.
"""

from __future__ import annotations

import argparse
import functools
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
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Int, PyTree, UInt32

from ..envs import (
    AutoResetWrapper,
    Environment,
    EpisodeStatsWrapper,
    GymnasiumVectorEnv,
    TMaze,
    TMazeParams,
    make_craftax,
    make_gymnax,
)
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
from .config import (
    ConfigError,
    TrainConfig,
    config_to_dict,
    load_models,
    split_env_name,
    validate,
)
from .logging import MetricsWriter, Progress, plot_learning_curve
from .ppo import bootstrap_values, gae, ppo_update
from .presets import DEFAULT_PRESET, get_preset, preset_names
from .rollout import (
    RolloutCarry,
    Transition,
    _act,
    _values,
    collect_host_rollout,
    collect_rollout,
)

__all__ = [
    "RunnerState",
    "Setup",
    "RunResult",
    "make_env",
    "make_agent",
    "make_optimizer",
    "init_runner",
    "update_step",
    "host_update_step",
    "check_buildable",
    "check_devices",
    "make_mesh",
    "shard_runner",
    "ENV_AXIS",
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


#: The mesh axis the environments (the batch) are sharded over.
ENV_AXIS = "envs"


@dataclass(frozen=True)
class Setup:
    """The static side of a run: configuration, environment, the agent's non-array
    part, optimiser, learning-rate schedule and the device mesh (`None`: one device)."""

    cfg: TrainConfig
    env: Environment | GymnasiumVectorEnv
    env_params: PyTree
    static: PyTree
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule
    mesh: Mesh | None = None


def make_env(
    cfg: TrainConfig, *, num_envs: int | None = None
) -> tuple[Environment | GymnasiumVectorEnv, PyTree]:
    """The environment of `cfg.env` and its parameters.

    JAX environments (`tmaze`, `gymnax:…`, `craftax:…`) come auto-resetting and
    reporting episode statistics (`EpisodeStatsWrapper(AutoResetWrapper(env))`).
    A `gymnasium:…` environment is a `GymnasiumVectorEnv` of `num_envs` (default
    `cfg.algo.num_envs`) host environments seeded from `cfg.seed`, with parameters
    `None`; close it when done.

    `ConfigError` naming the field when the engine rejects the configuration.
    """
    e = cfg.env
    engine, id_ = split_env_name(e.name)
    try:
        if engine == "gymnasium":
            n = cfg.algo.num_envs if num_envs is None else num_envs
            host = GymnasiumVectorEnv(
                id_, n, seed=cfg.seed, max_episode_steps=e.max_steps_in_episode, kwargs=e.kwargs
            )
            return host, None
        base: Environment
        if engine == "tmaze":
            base = TMaze(e.corridor_length)
            limit = 1000 if e.max_steps_in_episode is None else e.max_steps_in_episode
            params: PyTree = TMazeParams(max_steps_in_episode=limit)
        elif engine == "gymnax":
            base = make_gymnax(
                id_, kwargs=e.kwargs, params=e.params, max_steps_in_episode=e.max_steps_in_episode
            )
            params = base.default_params
        else:
            base = make_craftax(id_, params=e.params, max_steps_in_episode=e.max_steps_in_episode)
            params = base.default_params
    except ImportError as err:
        raise ConfigError(f"env.name {e.name!r}: {err}") from None
    except (TypeError, ValueError) as err:
        msg = str(err)
        field = "" if msg.startswith("env.") else "env: "
        raise ConfigError(f"{field}{e.name}: {msg}") from None
    return EpisodeStatsWrapper(AutoResetWrapper(base)), params


def _is_host(env: object) -> bool:
    return isinstance(env, GymnasiumVectorEnv)


def make_agent(cfg: TrainConfig, env: Environment | GymnasiumVectorEnv, key: Array) -> Agent:
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
        policy_gain=cfg.agent.policy_gain,
        value_gain=cfg.agent.value_gain,
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
    """Make the environment (one copy of a host environment) and build the agent
    abstractly (`eqx.filter_eval_shape`: nothing is computed or compiled); `ConfigError`
    if the environment or the model rejects its arguments."""
    env, _ = make_env(cfg, num_envs=1)
    try:
        eqx.filter_eval_shape(make_agent, cfg, env, jax.random.PRNGKey(0))
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"model.kwargs: cannot build model {cfg.model.name!r} with {cfg.model.kwargs}: {e}"
        ) from None
    finally:
        if isinstance(env, GymnasiumVectorEnv):
            env.close()


def check_devices(cfg: TrainConfig, devices: int) -> None:
    """`ConfigError` unless `cfg` can run data-parallel over the first `devices` devices
    (`jax.devices()`): there must be that many, they must divide `algo.num_envs`, and
    the environment must be a JAX one. Nothing is compiled."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices <= 0:
        raise ConfigError(f"--devices must be a positive integer; got {devices!r}")
    if devices == 1:
        return
    if cfg.algo.num_envs % devices:
        raise ConfigError(
            f"algo.num_envs ({cfg.algo.num_envs}) must be divisible by --devices ({devices}): "
            "the environments are split evenly across the devices"
        )
    available = jax.device_count()
    if devices > available:
        hint = (
            " (on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N host devices)"
            if jax.default_backend() == "cpu"
            else ""
        )
        raise ConfigError(
            f"--devices {devices}: this machine has {available} "
            f"{jax.default_backend()} device(s){hint}"
        )
    if jax.process_count() > 1 and devices != available:
        raise ConfigError(
            f"--devices {devices}: a multi-process run uses every device ({available})"
        )
    if split_env_name(cfg.env.name)[0] == "gymnasium":
        raise ConfigError(
            f"--devices {devices}: host environments ({cfg.env.name}) run on one device"
        )


def make_mesh(devices: int) -> Mesh:
    """A one-axis mesh (`ENV_AXIS`) over the first `devices` devices."""
    return Mesh(np.asarray(jax.devices()[:devices]), (ENV_AXIS,))


def _runner_shardings(runner: RunnerState, mesh: Mesh) -> RunnerState:
    """Rollout state sharded on its leading (environment) axis; the rest replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    by_env = NamedSharding(mesh, PartitionSpec(ENV_AXIS))
    shardings = jax.tree_util.tree_map(lambda _: replicated, runner)
    rollout = jax.tree_util.tree_map(lambda _: by_env, runner.rollout)
    return eqx.tree_at(lambda r: r.rollout, shardings, rollout)


def shard_runner(runner: RunnerState, mesh: Mesh) -> RunnerState:
    """Place `runner` on `mesh`: the rollout state (environments, observations, memory
    states) split along the environment axis, parameters, optimiser state, key and
    counter replicated. Works across processes (every process holds the same `runner`)."""
    host = _fetch(runner)

    def put(x: np.ndarray, sharding: NamedSharding) -> Array:
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree_util.tree_map(put, host, _runner_shardings(runner, mesh))


def _fetch(tree: PyTree) -> PyTree:
    """`tree` as numpy arrays on this host (gathered across processes if need be)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(np.asarray, tree)


def _config_key(cfg: TrainConfig, devices: int = 1) -> str:
    """Identifies what is compiled for `cfg` on `devices` devices: everything but the
    seed."""
    d = config_to_dict(cfg)
    d.pop("seed")
    if devices != 1:
        d["devices"] = devices
    return json.dumps(d, sort_keys=True)


# Jitted initialisers and compiled chunks, per configuration (seed excluded): runs of
# the same configuration in one process compile once.
_INIT_FNS: dict[str, Any] = {}
_COMPILED: dict[str, Any] = {}


def init_runner(cfg: TrainConfig, *, devices: int = 1) -> tuple[Setup, RunnerState]:
    """The static setup and the initial runner state for `cfg` (all keys from `cfg.seed`).

    The agent is built eagerly (for large models this compiles faster than one jitted
    initialiser); the optimiser state, environments (reset) and memory states (zero)
    come from one jitted function, cached per configuration. A host environment is
    reset on the host (seeded from `cfg.seed`; the rollout state holds no environment
    state then). With `devices > 1` the runner state is placed on a mesh of that many
    devices (`shard_runner`); see `check_devices`.
    """
    env, env_params = make_env(cfg)
    optimizer, schedule = make_optimizer(cfg)
    n = cfg.algo.num_envs
    k_agent, k_env, k_run = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    agent = make_agent(cfg, env, k_agent)
    params, static = eqx.partition(agent, eqx.is_array)
    host_obs = env.reset() if isinstance(env, GymnasiumVectorEnv) else None

    def init(params, k_env, k_run):
        agent = eqx.combine(params, static)
        opt_state = optimizer.init(eqx.filter(agent, eqx.is_inexact_array))
        if host_obs is None:
            assert isinstance(env, Environment)
            obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
                jax.random.split(k_env, n), env_params
            )
        else:
            obs, env_state = jnp.asarray(host_obs), None
        model_state = jax.vmap(lambda _: agent.init_state())(jnp.arange(n))
        carry = RolloutCarry(env_state, obs, jnp.ones((n,), jnp.bool_), model_state)
        return RunnerState(params, opt_state, carry, k_run, jnp.zeros((), jnp.int32))

    cfg_key = _config_key(cfg)
    if host_obs is not None:
        runner = init(params, k_env, k_run)  # host observations are data, not constants
    else:
        if cfg_key not in _INIT_FNS:
            _INIT_FNS[cfg_key] = jax.jit(init)
        runner = _INIT_FNS[cfg_key](params, k_env, k_run)
    mesh = None
    if devices != 1:
        check_devices(cfg, devices)
        mesh = make_mesh(devices)
        runner = shard_runner(runner, mesh)
    return Setup(cfg, env, env_params, static, optimizer, schedule, mesh), runner


def _masked_mean(x: Array, mask: Array) -> Array:
    n = jnp.sum(mask)
    total = jnp.sum(jnp.where(mask, x, 0).astype(jnp.float32))
    return jnp.where(n > 0, total / jnp.maximum(n, 1), jnp.nan)


def update_step(setup: Setup, runner: RunnerState) -> tuple[RunnerState, dict[str, Array]]:
    """One update: a rollout, GAE, then `update_epochs × num_minibatches` gradient steps.
    Pure (jittable) for JAX environments; see `host_update_step` for host ones.

    **Returns:** the new runner state and this update's metrics (scalars).
    """
    if not isinstance(setup.env, Environment):
        raise TypeError("update_step needs a JAX environment; use host_update_step")
    agent = eqx.combine(runner.params, setup.static)
    key, k_roll, k_update = jax.random.split(runner.key, 3)
    carry, traj, last_value = collect_rollout(
        agent, setup.env, setup.env_params, runner.rollout, k_roll, setup.cfg.algo.num_steps
    )
    return _learn(setup, runner, carry, traj, last_value, key, k_update)


def host_update_step(setup: Setup, runner: RunnerState) -> tuple[RunnerState, dict[str, Array]]:
    """`update_step` for a host environment: a Python rollout loop
    (`collect_host_rollout`, the agent acting through a jitted step), then the jitted
    learner (GAE and the gradient steps, compiled once per configuration)."""
    env = setup.env
    if not isinstance(env, GymnasiumVectorEnv):
        raise TypeError("host_update_step needs a host environment; use update_step")
    key, k_roll, k_update = jax.random.split(runner.key, 3)
    agent = eqx.combine(runner.params, setup.static)
    carry, traj, last_value = collect_host_rollout(
        agent, env, runner.rollout, k_roll, setup.cfg.algo.num_steps
    )
    cfg_key = _config_key(setup.cfg)
    if cfg_key not in _LEARNERS:
        _LEARNERS[cfg_key] = jax.jit(functools.partial(_learn, setup))
    return _LEARNERS[cfg_key](runner, carry, traj, last_value, key, k_update)


# Jitted learners of host runs, per configuration (seed excluded).
_LEARNERS: dict[str, Any] = {}


def _learn(
    setup: Setup,
    runner: RunnerState,
    carry: RolloutCarry,
    traj: Transition,
    last_value: Array,
    key: Array,
    k_update: Array,
) -> tuple[RunnerState, dict[str, Array]]:
    """GAE and the gradient steps on a collected rollout; the new runner state and the
    update's metrics."""
    a = setup.cfg.algo
    agent = eqx.combine(runner.params, setup.static)
    start = runner.rollout
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
        success_rate=(
            _masked_mean(traj.episode_success, done)
            if setup.env.has_success or _is_host(setup.env)
            else jnp.full((), jnp.nan, jnp.float32)
        ),
        mean_length=_masked_mean(traj.episode_length, done),
        lr=jnp.asarray(lr, jnp.float32),
    )
    new = RunnerState(eqx.filter(agent, eqx.is_array), opt_state, carry, key, runner.update + 1)
    return new, metrics


def _transition_shapes(setup: Setup, runner: RunnerState) -> Transition:
    """The shapes and dtypes of a host rollout's `Transition` (nothing is run)."""
    agent = eqx.combine(runner.params, setup.static)
    carry = runner.rollout
    action, log_prob, value, _ = eqx.filter_eval_shape(_act, agent, carry, runner.key)
    t = setup.cfg.algo.num_steps

    def zeros() -> Transition:
        def seq(x: Any, dtype: Any = None) -> Array:
            return jnp.zeros((t, *x.shape), x.dtype if dtype is None else dtype)

        f32, b, i32 = jnp.float32, jnp.bool_, jnp.int32
        return Transition(
            obs=seq(carry.obs),
            reset=seq(carry.reset, b),
            action=seq(action),
            log_prob=seq(log_prob),
            value=seq(value),
            reward=seq(value, f32),
            terminated=seq(value, b),
            truncated=seq(value, b),
            final_value=seq(value),
            episode_done=seq(value, b),
            episode_return=seq(value, f32),
            episode_length=seq(value, i32),
            episode_success=seq(value, b),
        )

    return jax.eval_shape(zeros)


def _host_chunk(setup: Setup, runner: RunnerState):
    """`_compiled_chunk` for a host environment: `n` calls of `host_update_step`, the
    metrics in buffers of length `log_interval`. The learner and the acting step are
    compiled here, so that compilation is not counted as execution."""
    size = setup.cfg.log_interval
    cfg_key = _config_key(setup.cfg)
    if cfg_key not in _LEARNERS:
        carry = runner.rollout
        traj = _transition_shapes(setup, runner)
        last_value = jax.ShapeDtypeStruct(traj.value.shape[1:], traj.value.dtype)
        args = (runner, carry, traj, last_value, runner.key, runner.key)
        _LEARNERS[cfg_key] = jax.jit(functools.partial(_learn, setup)).lower(*args).compile()
    agent = eqx.combine(runner.params, setup.static)
    _act(agent, runner.rollout, runner.key)  # compiles the acting step (pure: nothing moves)
    r = runner.rollout
    _values(agent, r.obs, r.reset, r.model_state)

    def chunk(r: RunnerState, n: Int[Array, ""]):
        rows = []
        for _ in range(int(n)):
            r, m = host_update_step(setup, r)
            if not setup.env.has_success:  # known on the host only as episodes end
                m = dict(m, success_rate=jnp.full((), jnp.nan, jnp.float32))
            rows.append(m)
        buf = {
            k: jnp.zeros((size,), v.dtype).at[: len(rows)].set(jnp.stack([m[k] for m in rows]))
            for k, v in rows[0].items()
        }
        return r, buf

    return chunk


def _compiled_chunk(setup: Setup, runner: RunnerState):
    """The compiled chunk `(runner, n) -> (runner, metrics)`: `n <= log_interval` updates
    in one `lax.fori_loop`, their metrics in buffers of length `log_interval` (entries
    past `n` are undefined). One compilation serves every chunk length, the last,
    shorter chunk of a run included. Cached per configuration and device count. On a
    mesh, the chunk keeps the runner state's shardings (`shard_runner`) and returns
    replicated metrics."""
    if _is_host(setup.env):
        return _host_chunk(setup, runner)
    mesh = setup.mesh
    key = _config_key(setup.cfg, 1 if mesh is None else mesh.size)
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

        if mesh is None:
            jitted = jax.jit(chunk)
        else:
            shardings = _runner_shardings(runner, mesh)
            replicated = NamedSharding(mesh, PartitionSpec())
            jitted = jax.jit(
                chunk, in_shardings=(shardings, replicated), out_shardings=(shardings, replicated)
            )
        _COMPILED[key] = jitted.lower(runner, jnp.zeros((), jnp.int32)).compile()
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
    devices: int = 1,
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
    - `devices`: run data-parallel on this many devices (`check_devices`): the
      environments are split across them, the result is the one-device result up to
      floating-point reassociation. A run may resume on another device count.

    A host environment (`gymnasium:…`) is not in the checkpoint: a resumed host run
    restarts its episodes (from freshly reset environments, zero memory), so it is not
    bit-identical to an uninterrupted one. In a multi-process run
    (`jax.distributed.initialize`), process 0 writes the files.
    """
    t_start = time.perf_counter()
    validate(cfg)
    check_devices(cfg, devices)
    run_dir = Path(run_dir)
    if not resume and holds_run(run_dir):
        raise ConfigError(f"{run_dir} holds another run; resume it or choose another directory")
    if resume and not (run_dir / CHECKPOINT_FILE).exists():
        raise ConfigError(f"{run_dir} holds no checkpoint to resume")
    check_buildable(cfg)

    progress = progress and jax.process_index() == 0
    if progress:
        print("building the agent and compiling the update…", file=sys.stderr, flush=True)
    setup, runner = init_runner(cfg, devices=devices)
    try:
        return _run(
            cfg, run_dir, setup, runner, resume, stop_after, progress, checkpoint_every, t_start
        )
    finally:
        if isinstance(setup.env, GymnasiumVectorEnv):
            setup.env.close()


def _run(
    cfg: TrainConfig,
    run_dir: Path,
    setup: Setup,
    runner: RunnerState,
    resume: bool,
    stop_after: int | None,
    progress: bool,
    checkpoint_every: float,
    t_start: float,
) -> RunResult:
    main = jax.process_index() == 0
    if resume:
        fresh = runner
        runner = load_checkpoint(run_dir, runner if setup.mesh is None else _fetch(runner))
        if _is_host(setup.env):  # host environments restart their episodes
            runner = eqx.tree_at(lambda r: r.rollout, runner, fresh.rollout)
        if setup.mesh is not None:
            runner = shard_runner(runner, setup.mesh)
    elif main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(run_dir, cfg)
    if resume and main:
        save_config(run_dir, cfg)  # total_steps may have changed
    done_updates = int(runner.update)
    writer = (
        MetricsWriter(run_dir / METRICS_FILE, keep_updates=done_updates if resume else None)
        if main
        else None
    )

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
            metrics = {k: v[:length] for k, v in _fetch(metrics).items()}
            exec_s += time.perf_counter() - t1
            exec_steps += length * spu
            rows = []
            for i in range(length):
                u = done_updates + i + 1
                row = {k: v[i] for k, v in metrics.items()}
                rows.append(dict(row, update=u, env_steps=u * spu))
            if writer is not None:
                writer.append(rows)
            done_updates += length
            if time.perf_counter() - saved_at >= checkpoint_every:
                _save(run_dir, runner)
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
    _save(run_dir, runner)  # the last completed chunk
    if main:
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


def _save(run_dir: Path, runner: RunnerState) -> None:
    """Checkpoint `runner` (gathered on the host; written by process 0 only)."""
    host = _fetch(runner)
    if jax.process_index() == 0:
        save_checkpoint(run_dir, host)


def _env_label(cfg: TrainConfig) -> str:
    if cfg.env.name == "tmaze":
        return f"tmaze (L={cfg.env.corridor_length})"
    return cfg.env.name


def _title(cfg: TrainConfig) -> str:
    return f"{cfg.model.name} on {_env_label(cfg)}, seed {cfg.seed}"


# ----------------------------------------------------------------------------- CLI


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
    jax.distributed.initialize(**kwargs)


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
    """`relit-eqx train [--preset NAME] [--env NAME] [--out DIR | --resume DIR]
    [--stop-after N] [--devices N] [--distributed] [--total-steps N] [--seed S]
    [overrides…]`. Returns the exit code: 0 done, 2 bad
    input (reported on stderr before anything is compiled or written), 130 interrupted."""
    opts, rest = _run_options().parse_known_args(argv)
    for name in ("stop_after",):
        v = getattr(opts, name)
        if v is not None and v <= 0:
            return _error(f"--stop-after must be positive; got {v}")
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
        check_devices(cfg, opts.devices)
        check_buildable(cfg)
    except ConfigError as e:
        return _error(str(e))

    if not opts.no_compile_cache:
        _enable_compilation_cache()
    what = f"preset {preset}" if preset else f"resuming {run_dir}"
    on = f" on {opts.devices} {jax.default_backend()} devices" if opts.devices > 1 else ""
    print(
        f"relit-eqx train: {what}; model {cfg.model.name}, {_env_label(cfg)}, "
        f"{cfg.total_steps:,} env steps{on} -> {run_dir}",
        file=sys.stderr,
    )
    try:
        result = run_training(
            cfg,
            run_dir,
            resume=opts.resume is not None,
            stop_after=opts.stop_after,
            progress=not opts.no_progress,
            devices=opts.devices,
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
        f"last return {result.mean_return:.3f}"
        + ("" if math.isnan(result.success_rate) else f", success {result.success_rate:.1%}")
    )
    print(f"metrics: {result.metrics_path}")
    print(f"learning curve: {result.plot_path}")
    return 0
