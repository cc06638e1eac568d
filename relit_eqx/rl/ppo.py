"""PPO (and A2C, its one-epoch one-minibatch case): GAE and the update.

Minibatches are sets of whole environment trajectories of the rollout (see
`losses.minibatch_loss`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from .agent import Agent
from .config import AlgoConfig
from .losses import minibatch_loss
from .types import Transition

__all__ = ["bootstrap_values", "gae", "ppo_update"]


def bootstrap_values(
    values: Float[Array, "T ..."],
    last_value: Float[Array, "..."],
    truncated: Bool[Array, "T ..."],
    final_value: Float[Array, "T ..."],
) -> Float[Array, "T ..."]:
    """`V(s_{t+1})` within the episode of step `t`.

    `values[t+1]` (or `last_value` at the rollout's end), except at a truncation, where
    the next stored observation belongs to a new episode and the finished episode's
    final observation's value `final_value[t]` is used instead.
    """
    nxt = jnp.concatenate([values[1:], last_value[None]], axis=0)
    return jnp.where(truncated, final_value, nxt)


def gae(
    rewards: Float[Array, "T ..."],
    values: Float[Array, "T ..."],
    next_values: Float[Array, "T ..."],
    terminated: Bool[Array, "T ..."],
    done: Bool[Array, "T ..."],
    gamma: float,
    lam: float,
) -> tuple[Float[Array, "T ..."], Float[Array, "T ..."]]:
    """Generalised advantage estimation (Schulman et al. 2016), time-major.

        δ_t = r_t + γ (1 - terminated_t) V(s_{t+1}) - V(s_t)
        A_t = δ_t + γ λ (1 - done_t) A_{t+1},      A_T = 0

    Termination stops bootstrapping; truncation bootstraps (through `next_values`) but
    still ends the sum, since the next step belongs to another episode.

    **Returns:** `(advantages, returns)` with `returns = advantages + values`.
    """
    not_term = 1.0 - terminated.astype(values.dtype)
    not_done = 1.0 - done.astype(values.dtype)
    deltas = rewards + gamma * not_term * next_values - values

    def body(adv_next, xs):
        delta, nd = xs
        adv = delta + gamma * lam * nd * adv_next
        return adv, adv

    _, advantages = jax.lax.scan(body, jnp.zeros_like(values[0]), (deltas, not_done), reverse=True)
    return advantages, advantages + values


def ppo_update(
    agent: Agent,
    optimizer: optax.GradientTransformation,
    opt_state: optax.OptState,
    traj: Transition,
    start_state: PyTree[Array],
    advantages: Float[Array, "T N"],
    returns: Float[Array, "T N"],
    key: PRNGKeyArray,
    cfg: AlgoConfig,
) -> tuple[Agent, optax.OptState, dict[str, Float[Array, ""]]]:
    """`update_epochs` passes over the rollout, each over `num_minibatches` minibatches of
    `num_envs / num_minibatches` whole trajectories, shuffled across envs.

    **Arguments:**

    - `agent`, `optimizer`, `opt_state`: what is trained (the optimizer sees
      `eqx.filter(agent, eqx.is_inexact_array)`).
    - `traj`: the rollout (time-major `[T, N, ...]`).
    - `start_state`: the memory state at the rollout's start (batched over `N`).
    - `advantages`, `returns`: from `gae`, `[T, N]`.
    - `key`: shuffles the envs.
    - `cfg`: the hyperparameters.

    **Returns:** `(agent, opt_state, metrics)`, metrics averaged over all minibatches
    (`loss`, the `ppo_loss_terms`, `grad_norm` before clipping).
    """
    n = advantages.shape[1]
    m = cfg.num_minibatches
    # Batch-major, so a minibatch is an index set on the leading axis.
    data = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), (traj, advantages, returns))
    params, static = eqx.partition(agent, eqx.is_array)

    def minibatch(carry, idx):
        params, opt_state = carry
        agent = eqx.combine(params, static)
        mb_traj, mb_adv, mb_ret = jax.tree_util.tree_map(lambda x: x[idx], data)
        mb_start = jax.tree_util.tree_map(lambda x: x[idx], start_state)
        (loss, terms), grads = eqx.filter_value_and_grad(minibatch_loss, has_aux=True)(
            agent, mb_traj, mb_start, mb_adv, mb_ret, cfg
        )
        # optax's Adam mixes float and int32 scalars (its bias correction): it needs
        # JAX's standard promotion, whatever the caller's setting.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(
                grads, opt_state, eqx.filter(agent, eqx.is_inexact_array)
            )
        agent = eqx.apply_updates(agent, updates)
        metrics = dict(terms, loss=loss, grad_norm=optax.tree.norm(grads))
        return (eqx.filter(agent, eqx.is_array), opt_state), metrics

    def epoch(carry, k):
        perm = jax.random.permutation(k, n).reshape(m, n // m)
        return jax.lax.scan(minibatch, carry, perm)

    (params, opt_state), metrics = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, cfg.update_epochs)
    )
    metrics = jax.tree_util.tree_map(jnp.mean, metrics)
    return eqx.combine(params, static), opt_state, metrics
