"""The `Trainer`: everything static about a run, built once per configuration.

A `Trainer` holds the environment, the agent's non-array part, the optimiser, the
device mesh and the compiled programs of one `TrainConfig` (on a device count); it
serves every chunk of a run, its resumptions and the segments of a sweep cell. The
whole update (rollout → GAE → PPO epochs) is one pure function of a `RunnerState`
(`Trainer.update`); up to `log_interval` updates are fused into one compiled loop (a
"chunk", `Trainer.chunk`), so a resumed run executes exactly the same compiled code on
exactly the same state as an uninterrupted one.

Environments whose engine runs on the host (`gymnasium:…`) are collected by a Python
loop over `jax.jit(act)`; the learner is compiled alone. Nothing is kept at module
level: a `Trainer` dropped is a Trainer forgotten (`close()` it, or use it in a `with`
block, to close a host environment).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Int, PyTree

from ..envs import Environment, GymnasiumVectorEnv, get_engine, make_env
from ..models import get_model
from .acting import act, values
from .agent import Agent
from .collect import collect_host_rollout, collect_rollout, transition_shapes
from .config import ConfigError, TrainConfig, config_to_dict, validate
from .distributed import check_devices, make_mesh, runner_shardings, shard_runner
from .learner import Learner, learn
from .types import RolloutCarry, RunnerState

__all__ = ["Trainer", "make_agent", "make_optimizer"]

Chunk = Callable[[RunnerState, Int[Array, ""]], tuple[RunnerState, dict[str, Array]]]


def make_agent(cfg: TrainConfig, env: Any, key: Array) -> Agent:
    """The model by registry name (`get_model(cfg.model.name)`) and the heads, for an
    environment of `env.observation_shape` and `env.action_space()`."""
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


def _is_array_or_shape(x: object) -> bool:
    return eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)


def _same_program(a: TrainConfig, b: TrainConfig) -> bool:
    """Whether `a` and `b` compile to the same programs (they may differ in the seed)."""
    da, db = config_to_dict(a), config_to_dict(b)
    da.pop("seed")
    db.pop("seed")
    return da == db


class Trainer:
    """The static side of a run and its compiled programs.

    **Arguments:**

    - `cfg`: the run (validated here; `ConfigError` naming the field).
    - `devices`: run data-parallel on the first `devices` devices (see
      `distributed.check_devices`).

    Building one makes the environment and the agent (abstractly: nothing is computed),
    so a configuration the environment or the model rejects fails here with a
    `ConfigError`. Compilation happens on the first `chunk` (or `compile`).
    """

    def __init__(self, cfg: TrainConfig, *, devices: int = 1):
        validate(cfg)
        check_devices(cfg, devices)
        self.cfg = cfg
        self.devices = devices
        engine, _ = get_engine(cfg.env.name)
        self.host = engine.host
        try:
            self.env, self.env_params = make_env(cfg.env, num_envs=cfg.algo.num_envs, seed=cfg.seed)
        except (ImportError, ValueError) as e:
            raise ConfigError(str(e)) from None
        try:
            shapes = eqx.filter_eval_shape(make_agent, cfg, self.env, jax.random.PRNGKey(0))
        except (TypeError, ValueError) as e:
            self.close()
            raise ConfigError(
                f"model.kwargs: cannot build model {cfg.model.name!r} with {cfg.model.kwargs}: {e}"
            ) from None
        self.static = eqx.partition(shapes, _is_array_or_shape)[1]
        self.optimizer, self.schedule = make_optimizer(cfg)
        self.learner = Learner(self.static, self.optimizer, self.schedule, cfg.algo)
        self.mesh: Mesh | None = make_mesh(devices) if devices != 1 else None
        self._init_fn: Callable[..., RunnerState] | None = None
        self._chunk: Chunk | None = None
        self._act = eqx.filter_jit(act)
        self._values = eqx.filter_jit(values)
        self._learn: Any = None

    # ------------------------------------------------------------------ lifecycle

    def serves(self, cfg: TrainConfig) -> bool:
        """Whether this trainer's programs run `cfg` (the same configuration, the seed
        aside; a host environment is seeded at construction, so its seed too)."""
        if self.host and cfg.seed != self.cfg.seed:
            return False
        return _same_program(self.cfg, cfg)

    def close(self) -> None:
        """Close a host environment (nothing to do for JAX ones)."""
        if isinstance(self.env, GymnasiumVectorEnv):
            self.env.close()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ state

    def agent(self, runner: RunnerState) -> Agent:
        """The agent whose arrays are `runner.params`."""
        return eqx.combine(runner.params, self.static)

    def init(self, seed: int | None = None) -> RunnerState:
        """The initial runner state for `seed` (default `cfg.seed`; every key is split
        from it): the agent built eagerly, then the optimiser state, the environments
        (reset) and the memory states (zero) from one jitted function. A host
        environment is reset on the host. On a mesh the state is placed by
        `shard_runner`."""
        seed = self.cfg.seed if seed is None else seed
        if self.host and seed != self.cfg.seed:
            raise ValueError(f"a host environment is seeded when built (seed {self.cfg.seed})")
        k_agent, k_env, k_run = jax.random.split(jax.random.PRNGKey(seed), 3)
        params = eqx.filter(make_agent(self.cfg, self.env, k_agent), eqx.is_array)
        if self.host:
            assert isinstance(self.env, GymnasiumVectorEnv)
            obs = jnp.asarray(self.env.reset())  # host observations are data, not constants
            runner = self._init(params, k_env, k_run, obs)
        else:
            if self._init_fn is None:
                self._init_fn = jax.jit(functools.partial(self._init, obs=None))
            runner = self._init_fn(params, k_env, k_run)
        return runner if self.mesh is None else shard_runner(runner, self.mesh)

    def _init(self, params: PyTree, k_env: Array, k_run: Array, obs: Array | None):
        n = self.cfg.algo.num_envs
        agent = eqx.combine(params, self.static)
        opt_state = self.optimizer.init(eqx.filter(agent, eqx.is_inexact_array))
        if obs is None:
            assert isinstance(self.env, Environment)
            obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
                jax.random.split(k_env, n), self.env_params
            )
        else:
            env_state = None
        model_state = jax.vmap(lambda _: agent.init_state())(jnp.arange(n))
        carry = RolloutCarry(env_state, obs, jnp.ones((n,), jnp.bool_), model_state)
        return RunnerState(params, opt_state, carry, k_run, jnp.zeros((), jnp.int32))

    # ------------------------------------------------------------------ the update

    def update(self, runner: RunnerState) -> tuple[RunnerState, dict[str, Array]]:
        """One update: a rollout, GAE, then `update_epochs × num_minibatches` gradient
        steps. Pure (jittable) for JAX environments; a host environment's rollout runs
        on the host and the learner compiled.

        **Returns:** the new runner state and this update's metrics (scalars).
        """
        key, k_roll, k_update = jax.random.split(runner.key, 3)
        agent = self.agent(runner)
        steps = self.cfg.algo.num_steps
        if not self.host:
            assert isinstance(self.env, Environment)
            carry, traj, last_value = collect_rollout(
                agent, self.env, self.env_params, runner.rollout, k_roll, steps
            )
            return learn(self.learner, runner, carry, traj, last_value, key, k_update)
        assert isinstance(self.env, GymnasiumVectorEnv)
        carry, traj, last_value = collect_host_rollout(
            agent, self.env, runner.rollout, k_roll, steps, act_fn=self._act, values_fn=self._values
        )
        return self._host_learner(runner)(runner, carry, traj, last_value, key, k_update)

    def _host_learner(self, runner: RunnerState) -> Any:
        """The learner of a host run, compiled for the shapes of its rollouts."""
        if self._learn is None:
            traj = transition_shapes(self.agent(runner), runner.rollout, self.cfg.algo.num_steps)
            last_value = jax.ShapeDtypeStruct(traj.value.shape[1:], traj.value.dtype)
            args = (runner, runner.rollout, traj, last_value, runner.key, runner.key)
            jitted = jax.jit(functools.partial(learn, self.learner))
            self._learn = jitted.lower(*args).compile()
        return self._learn

    # ------------------------------------------------------------------ chunks

    def compile(self, runner: RunnerState) -> Chunk:
        """The chunk `(runner, n) -> (runner, metrics)`, compiled on the first call:
        `n <= log_interval` updates, their metrics in buffers of length `log_interval`
        (entries past `n` undefined). One compilation serves every chunk length. For JAX
        environments the chunk is one `lax.fori_loop`; on a mesh it keeps the runner
        state's shardings and returns replicated metrics. For host environments it is a
        Python loop over `update` (the acting step and the learner compiled here, so
        that compilation is not counted as execution)."""
        if self._chunk is None:
            self._chunk = self._compile_host(runner) if self.host else self._compile_jax(runner)
        return self._chunk

    def chunk(self, runner: RunnerState, n: int) -> tuple[RunnerState, dict[str, Array]]:
        """`n <= log_interval` updates from `runner` (compiled on the first call)."""
        return self.compile(runner)(runner, jnp.asarray(n, jnp.int32))

    def _compile_jax(self, runner: RunnerState) -> Chunk:
        size = self.cfg.log_interval
        shapes = jax.eval_shape(lambda r: self.update(r)[1], runner)

        def chunk(r: RunnerState, n: Int[Array, ""]):
            buf = jax.tree_util.tree_map(lambda s: jnp.zeros((size, *s.shape), s.dtype), shapes)

            def body(i, carry):
                r, buf = carry
                r, m = self.update(r)
                buf = jax.tree_util.tree_map(lambda b, x: b.at[i].set(x), buf, m)
                return r, buf

            return jax.lax.fori_loop(0, n, body, (r, buf))

        if self.mesh is None:
            jitted = jax.jit(chunk)
        else:
            shardings = runner_shardings(runner, self.mesh)
            replicated = NamedSharding(self.mesh, PartitionSpec())
            jitted = jax.jit(
                chunk, in_shardings=(shardings, replicated), out_shardings=(shardings, replicated)
            )
        return jitted.lower(runner, jnp.zeros((), jnp.int32)).compile()

    def _compile_host(self, runner: RunnerState) -> Chunk:
        size = self.cfg.log_interval
        self._host_learner(runner)
        agent, r = self.agent(runner), runner.rollout
        jax.block_until_ready(self._act(agent, r, runner.key))  # pure: nothing moves
        jax.block_until_ready(self._values(agent, r.obs, r.reset, r.model_state))

        def chunk(r: RunnerState, n: Int[Array, ""]):
            rows = []
            for _ in range(int(n)):
                r, m = self.update(r)
                rows.append(m)
            buf = {
                k: jnp.zeros((size,), v.dtype).at[: len(rows)].set(jnp.stack([m[k] for m in rows]))
                for k, v in rows[0].items()
            }
            return r, buf

        return chunk

    @property
    def reports_success(self) -> bool:
        """Whether the environment reports a success (T-Maze does; a host environment
        once an episode has reported one); other runs log a NaN success rate."""
        return bool(self.env.has_success)
