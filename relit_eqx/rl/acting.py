"""The one acting step, shared by both collectors.

`act` runs the agent's inference form (`Agent.step`, `jax.vmap` over envs) on the
current observations and samples an action per environment; `values` is the value
head alone. The JAX collector scans `act`; the host collector calls `jax.jit(act)`
once per step.
"""

from __future__ import annotations

import jax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .agent import Agent
from .types import RolloutCarry

__all__ = ["act", "values"]


def act(
    agent: Agent, carry: RolloutCarry, key: PRNGKeyArray
) -> tuple[Array, Float[Array, " N"], Float[Array, " N"], PyTree[Array]]:
    """One acting step of every environment.

    **Arguments:** the agent, where the rollout stands (`carry.obs [N, ...]`,
    `carry.reset [N]`, `carry.model_state`), and a key (split into one per env).

    **Returns:** `(action, log_prob, value, model_state)`: the sampled actions `[N, ...]`,
    their log-probabilities and the values `V(h_t)` `[N]`, and the memory state after
    absorbing `carry.obs`.
    """
    n = carry.reset.shape[0]
    dist, value, model_state = jax.vmap(agent.step)(carry.obs, carry.reset, carry.model_state)
    action = jax.vmap(lambda d, k: d.sample(k))(dist, jax.random.split(key, n))
    return action, dist.log_prob(action), value, model_state


def values(
    agent: Agent, obs: Float[Array, "N ..."], reset: Array, model_state: PyTree[Array]
) -> Float[Array, " N"]:
    """`V` of `obs [N, ...]` from `model_state` (the value head of `act`, no sampling)."""
    return jax.vmap(agent.step)(obs, reset, model_state)[1]
