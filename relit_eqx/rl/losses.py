"""The PPO loss: its terms, and the loss of a minibatch of whole trajectories.

The memory model is re-run in its training form (`Agent.__call__`) from the stored
rollout-start state with the stored reset flags, so gradients flow through the rollout
(truncated BPTT) but never across an episode boundary (the model zeroes its state at
a reset).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from .agent import Agent
from .config import AlgoConfig
from .types import Transition

__all__ = ["ppo_loss_terms", "minibatch_loss"]


def ppo_loss_terms(
    log_prob: Float[Array, "..."],
    old_log_prob: Float[Array, "..."],
    advantages: Float[Array, "..."],
    values: Float[Array, "..."],
    old_values: Float[Array, "..."],
    returns: Float[Array, "..."],
    entropy: Float[Array, "..."],
    *,
    clip_eps: float,
    clip_value: bool = True,
) -> dict[str, Float[Array, ""]]:
    """The pieces of the PPO loss, each a mean over the batch.

        ρ = exp(log π - log π_old)
        policy_loss = -mean(min(ρ A, clip(ρ, 1-ε, 1+ε) A))
        value_loss  = ½ mean(max((V - R)², (V_old + clip(V - V_old, -ε, ε) - R)²))
                      (½ mean((V - R)²) without value clipping)
        entropy     = mean(H)

    Also `approx_kl = mean((ρ - 1) - log ρ)` and `clip_frac = mean(|ρ - 1| > ε)`
    (diagnostics, not differentiated).
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(
        ratio * advantages, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    )
    value_sq = (values - returns) ** 2
    if clip_value:
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        value_sq = jnp.maximum(value_sq, (clipped - returns) ** 2)
    return {
        "policy_loss": -jnp.mean(surrogate),
        "value_loss": 0.5 * jnp.mean(value_sq),
        "entropy": jnp.mean(entropy),
        "approx_kl": jax.lax.stop_gradient(jnp.mean((ratio - 1) - log_ratio)),
        "clip_frac": jax.lax.stop_gradient(jnp.mean(jnp.abs(ratio - 1) > clip_eps)),
    }


def minibatch_loss(
    agent: Agent,
    traj: Transition,
    start_state: PyTree[Array],
    advantages: Float[Array, "B T"],
    returns: Float[Array, "B T"],
    cfg: AlgoConfig,
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """The PPO loss on a minibatch of whole trajectories (batch-major `[B, T, ...]`):
    `policy_loss + vf_coef value_loss - ent_coef entropy`, and its terms."""
    dist, values, _ = jax.vmap(agent)(traj.obs, traj.reset, start_state)
    if cfg.normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    terms = ppo_loss_terms(
        dist.log_prob(traj.action),
        traj.log_prob,
        advantages,
        values,
        traj.value,
        returns,
        dist.entropy(),
        clip_eps=cfg.clip_eps,
        clip_value=cfg.clip_value,
    )
    loss = (
        terms["policy_loss"] + cfg.vf_coef * terms["value_loss"] - cfg.ent_coef * terms["entropy"]
    )
    return loss, terms
