"""Collecting a rollout: `num_steps` steps of a batch of environments, acting with the
agent's inference form (`Agent.step`), one `lax.scan` over time, `jax.vmap` over envs.

Reset flags: the flag fed to the model with `obs_t` is True when `obs_t` is the first
observation of an episode, i.e. at the very first step of training and at every step
following `done`. The flags, observations and the memory state at the rollout's start
are stored so that the training pass can re-run the model over the same inputs.

`collect_host_rollout` does the same for a host environment (`GymnasiumVectorEnv`): a
Python loop over time in which the agent acts through one jitted call per step and the
environments step on the host; it returns the same `Transition`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ..envs import Environment, GymnasiumVectorEnv
from .agent import Agent

__all__ = ["RolloutCarry", "Transition", "collect_rollout", "collect_host_rollout"]


class RolloutCarry(eqx.Module):
    """What a rollout continues from (leading axis: envs).

    - `env_state`: the environments' states.
    - `obs`: the current observations `[N, ...]`.
    - `reset`: `[N]`, True where `obs` starts an episode.
    - `model_state`: the memory state before `obs` is absorbed.
    """

    env_state: PyTree[Array]
    obs: Float[Array, "N ..."]
    reset: Bool[Array, " N"]
    model_state: PyTree[Array]


class Transition(eqx.Module):
    """A rollout, time-major (`*batch = [T, N]`), or one step of it (`*batch = [N]`).

    - `obs`, `reset`: the model's inputs at each step.
    - `action`, `log_prob`, `value`: what the agent did and predicted.
    - `reward`, `terminated`, `truncated`: the environment's answer (`done` is their or).
    - `final_value`: `V` of the final observation of a truncated episode (0 elsewhere),
      for bootstrapping.
    - `episode_done`, `episode_return`, `episode_length`, `episode_success`: statistics
      of episodes finishing at each step (valid where `episode_done`).
    """

    obs: Float[Array, "..."]
    reset: Bool[Array, "*batch"]
    action: Array
    log_prob: Float[Array, "*batch"]
    value: Float[Array, "*batch"]
    reward: Float[Array, "*batch"]
    terminated: Bool[Array, "*batch"]
    truncated: Bool[Array, "*batch"]
    final_value: Float[Array, "*batch"]
    episode_done: Bool[Array, "*batch"]
    episode_return: Float[Array, "*batch"]
    episode_length: Array
    episode_success: Bool[Array, "*batch"]


def collect_rollout(
    agent: Agent,
    env: Environment,
    env_params: PyTree,
    carry: RolloutCarry,
    key: PRNGKeyArray,
    num_steps: int,
) -> tuple[RolloutCarry, Transition, Float[Array, " N"]]:
    """Run `num_steps` steps of every environment.

    **Arguments:**

    - `agent`: the acting agent.
    - `env`: an auto-resetting environment with episode statistics
      (`EpisodeStatsWrapper(AutoResetWrapper(...))`).
    - `env_params`: its parameters.
    - `carry`: where to continue from (batched over `N` envs).
    - `key`: a PRNG key.
    - `num_steps`: `T`.

    **Returns:** `(carry, transitions, last_value)`; `last_value [N]` is `V` of the
    observation after the last step (to bootstrap the rollout's end).
    """
    n = carry.reset.shape[0]
    act = jax.vmap(agent.step)

    def body(c: RolloutCarry, k: PRNGKeyArray):
        k_act, k_env = jax.random.split(k)
        dist, value, model_state = act(c.obs, c.reset, c.model_state)
        action = jax.vmap(lambda d, kk: d.sample(kk))(dist, jax.random.split(k_act, n))
        log_prob = dist.log_prob(action)
        obs, env_state, reward, done, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, n), c.env_state, action, env_params
        )
        truncated = info["truncated"]
        no_reset = jnp.zeros((n,), jnp.bool_)
        # Bootstrap values for truncated episodes: the model continues (no reset) into
        # the final observation. Computed only in steps where some episode truncated.
        final_value = jax.lax.cond(
            jnp.any(truncated),
            lambda: jnp.where(truncated, act(info["final_obs"], no_reset, model_state)[1], 0.0),
            lambda: jnp.zeros((n,), value.dtype),
        )
        t = Transition(
            obs=c.obs,
            reset=c.reset,
            action=action,
            log_prob=log_prob,
            value=value,
            reward=reward,
            terminated=info["terminated"],
            truncated=truncated,
            final_value=final_value,
            episode_done=info["episode_done"],
            episode_return=info["episode_return"],
            episode_length=info["episode_length"],
            episode_success=info["episode_success"],
        )
        return RolloutCarry(env_state, obs, done, model_state), t

    carry, transitions = jax.lax.scan(body, carry, jax.random.split(key, num_steps))
    _, last_value, _ = act(carry.obs, carry.reset, carry.model_state)
    return carry, transitions, last_value


@eqx.filter_jit
def _act(agent: Agent, carry: RolloutCarry, key: PRNGKeyArray):
    """One acting step of every env: `(action, log_prob, value, model_state)`; the same
    key use as `collect_rollout`'s."""
    n = carry.reset.shape[0]
    k_act, _ = jax.random.split(key)
    dist, value, model_state = jax.vmap(agent.step)(carry.obs, carry.reset, carry.model_state)
    action = jax.vmap(lambda d, kk: d.sample(kk))(dist, jax.random.split(k_act, n))
    return action, dist.log_prob(action), value, model_state


@eqx.filter_jit
def _values(agent: Agent, obs: Array, reset: Array, model_state: PyTree[Array]) -> Array:
    return jax.vmap(agent.step)(obs, reset, model_state)[1]


def collect_host_rollout(
    agent: Agent,
    env: GymnasiumVectorEnv,
    carry: RolloutCarry,
    key: PRNGKeyArray,
    num_steps: int,
) -> tuple[RolloutCarry, Transition, Float[Array, " N"]]:
    """`collect_rollout` for a host environment: `num_steps` steps of a Python loop.

    **Arguments:** as `collect_rollout`, with `env` a `GymnasiumVectorEnv` of `N`
    environments whose current observations are `carry.obs` (its state lives in the
    environment objects; `carry.env_state` is unused).

    **Returns:** `(carry, transitions, last_value)`, as `collect_rollout`.
    """
    n = carry.reset.shape[0]
    if env.num_envs != n:
        raise ValueError(f"env has {env.num_envs} environments but carry holds {n}")
    steps: list[dict[str, Array | np.ndarray]] = []
    for k in jax.random.split(key, num_steps):
        action, log_prob, value, model_state = _act(agent, carry, k)
        out = env.step(np.asarray(action))
        done = out.terminated | out.truncated
        if out.truncated.any():
            no_reset = jnp.zeros((n,), jnp.bool_)
            v = _values(agent, jnp.asarray(out.final_obs), no_reset, model_state)
            final_value = jnp.where(jnp.asarray(out.truncated), v, 0.0)
        else:
            final_value = jnp.zeros((n,), value.dtype)
        steps.append(
            dict(
                obs=carry.obs,
                reset=carry.reset,
                action=action,
                log_prob=log_prob,
                value=value,
                reward=out.reward,
                terminated=out.terminated,
                truncated=out.truncated,
                final_value=final_value,
                episode_done=done,
                episode_return=out.episode_return,
                episode_length=out.episode_length,
                episode_success=out.episode_success,
            )
        )
        carry = RolloutCarry(carry.env_state, jnp.asarray(out.obs), jnp.asarray(done), model_state)
    transitions = Transition(**{k: jnp.stack([s[k] for s in steps]) for k in steps[0]})
    last_value = _values(agent, carry.obs, carry.reset, carry.model_state)
    return carry, transitions, last_value
