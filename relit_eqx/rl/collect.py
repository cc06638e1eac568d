"""Collecting a rollout: `num_steps` steps of a batch of environments acting with `act`.

Reset flags: the flag fed to the model with `obs_t` is True when `obs_t` is the first
observation of an episode, i.e. at the very first step of training and at every step
following `done`. The flags, observations and the memory state at the rollout's start
are stored so that the learner can re-run the model over the same inputs.

Both collectors return the same `Transition`, built by `record`:

- `collect_rollout` (JAX environments): one `lax.scan` over `act` and the
  environments' `step`, `jax.vmap` over envs;
- `collect_host_rollout` (host environments, `GymnasiumVectorEnv`): a Python loop in
  which the agent acts through `jax.jit(act)` and the environments step on the host.

At a truncation the finished episode's final observation is valued with the memory
that absorbed the step (the state `act` returns), for bootstrapping.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ..envs import Environment, GymnasiumVectorEnv
from .acting import act, values
from .agent import Agent
from .types import RolloutCarry, Transition

__all__ = ["record", "collect_rollout", "collect_host_rollout", "transition_shapes"]

_Act = Callable[[Agent, RolloutCarry, PRNGKeyArray], tuple[Array, Array, Array, PyTree[Array]]]
_Values = Callable[[Agent, Array, Array, PyTree[Array]], Array]


def record(
    carry: RolloutCarry,
    acted: tuple[Array, Array, Array, PyTree[Array]],
    final_value: Float[Array, " N"],
    reward: Float[Array, " N"],
    terminated: Bool[Array, " N"],
    truncated: Bool[Array, " N"],
    episode_done: Bool[Array, " N"],
    episode_return: Float[Array, " N"],
    episode_length: Array,
    episode_success: Bool[Array, " N"],
) -> Transition:
    """One step's `Transition`: the model's inputs (`carry`), what `act` returned, and
    the environments' answer."""
    action, log_prob, value, _ = acted
    return Transition(
        obs=carry.obs,
        reset=carry.reset,
        action=action,
        log_prob=log_prob,
        value=value,
        reward=reward,
        terminated=terminated,
        truncated=truncated,
        final_value=final_value,
        episode_done=episode_done,
        episode_return=episode_return,
        episode_length=episode_length,
        episode_success=episode_success,
    )


def collect_rollout(
    agent: Agent,
    env: Environment,
    env_params: PyTree,
    carry: RolloutCarry,
    key: PRNGKeyArray,
    num_steps: int,
) -> tuple[RolloutCarry, Transition, Float[Array, " N"]]:
    """Run `num_steps` steps of every environment (pure; one `lax.scan`).

    **Arguments:**

    - `agent`: the acting agent.
    - `env`: an auto-resetting environment with episode statistics
      (`EpisodeStatsWrapper(AutoResetWrapper(...))`).
    - `env_params`: its parameters.
    - `carry`: where to continue from (batched over `N` envs).
    - `key`: a PRNG key.
    - `num_steps`: `T`.

    **Returns:** `(carry, transitions, last_value)`; `transitions` is time-major
    `[T, N, ...]`; `last_value [N]` is `V` of the observation after the last step (to
    bootstrap the rollout's end).
    """
    n = carry.reset.shape[0]

    def body(c: RolloutCarry, k: PRNGKeyArray) -> tuple[RolloutCarry, Transition]:
        k_act, k_env = jax.random.split(k)
        acted = act(agent, c, k_act)
        action, _, value, model_state = acted
        obs, env_state, reward, done, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, n), c.env_state, action, env_params
        )
        truncated = info["truncated"]
        no_reset = jnp.zeros((n,), jnp.bool_)
        # Computed only in steps where some episode truncated.
        final_value = jax.lax.cond(
            jnp.any(truncated),
            lambda: jnp.where(
                truncated, values(agent, info["final_obs"], no_reset, model_state), 0.0
            ),
            lambda: jnp.zeros((n,), value.dtype),
        )
        t = record(
            c,
            acted,
            final_value,
            reward,
            info["terminated"],
            truncated,
            info["episode_done"],
            info["episode_return"],
            info["episode_length"],
            info["episode_success"],
        )
        return RolloutCarry(env_state, obs, done, model_state), t

    carry, transitions = jax.lax.scan(body, carry, jax.random.split(key, num_steps))
    last_value = values(agent, carry.obs, carry.reset, carry.model_state)
    return carry, transitions, last_value


def collect_host_rollout(
    agent: Agent,
    env: GymnasiumVectorEnv,
    carry: RolloutCarry,
    key: PRNGKeyArray,
    num_steps: int,
    *,
    act_fn: _Act | None = None,
    values_fn: _Values | None = None,
) -> tuple[RolloutCarry, Transition, Float[Array, " N"]]:
    """`collect_rollout` for a host environment: `num_steps` steps of a Python loop.

    **Arguments:** as `collect_rollout`, with `env` a `GymnasiumVectorEnv` of `N`
    environments whose current observations are `carry.obs` (its state lives in the
    environment objects; `carry.env_state` is unused). `act_fn` and `values_fn` are
    `eqx.filter_jit(act)` and `eqx.filter_jit(values)` (a `Trainer` passes the ones it compiled; default: jitted
    here).

    **Returns:** `(carry, transitions, last_value)`, as `collect_rollout`.
    """
    n = carry.reset.shape[0]
    if env.num_envs != n:
        raise ValueError(f"env has {env.num_envs} environments but carry holds {n}")
    act_fn = eqx.filter_jit(act) if act_fn is None else act_fn
    values_fn = eqx.filter_jit(values) if values_fn is None else values_fn
    steps: list[Transition] = []
    for k in jax.random.split(key, num_steps):
        k_act, _ = jax.random.split(k)  # the JAX collector's key use
        acted = act_fn(agent, carry, k_act)
        _, _, value, model_state = acted
        out = env.step(np.asarray(acted[0]))
        done = jnp.asarray(out.terminated | out.truncated)
        truncated = jnp.asarray(out.truncated)
        if out.truncated.any():
            no_reset = jnp.zeros((n,), jnp.bool_)
            v = values_fn(agent, jnp.asarray(out.final_obs), no_reset, model_state)
            final_value = jnp.where(truncated, v, 0.0)
        else:
            final_value = jnp.zeros((n,), value.dtype)
        steps.append(
            record(
                carry,
                acted,
                final_value,
                jnp.asarray(out.reward),
                jnp.asarray(out.terminated),
                truncated,
                done,
                jnp.asarray(out.episode_return),
                jnp.asarray(out.episode_length),
                jnp.asarray(out.episode_success),
            )
        )
        carry = RolloutCarry(carry.env_state, jnp.asarray(out.obs), done, model_state)
    transitions = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *steps)
    last_value = values_fn(agent, carry.obs, carry.reset, carry.model_state)
    return carry, transitions, last_value


def transition_shapes(agent: Agent, carry: RolloutCarry, num_steps: int) -> Transition:
    """The shapes and dtypes of a host rollout's `Transition` (nothing is run)."""

    def one_step() -> Transition:
        acted = act(agent, carry, jax.random.PRNGKey(0))
        value = acted[2]
        f32, b = jnp.zeros_like(value, jnp.float32), jnp.zeros_like(value, jnp.bool_)
        i32 = jnp.zeros_like(value, jnp.int32)
        return record(carry, acted, value, f32, b, b, b, f32, i32, b)

    step = jax.eval_shape(one_step)
    return jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct((num_steps, *s.shape), s.dtype), step
    )
