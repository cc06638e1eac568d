"""The learner: GAE and the PPO epochs on a collected rollout, and the update's metrics.

`learn` is pure and jittable: the `Trainer` fuses it after the JAX collector into one
compiled update, or jits it alone after a host rollout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, PyTree

from .config import AlgoConfig
from .ppo import bootstrap_values, gae, ppo_update
from .types import RolloutCarry, RunnerState, Transition

__all__ = ["Learner", "learn", "episode_weighted_mean"]


@dataclass(frozen=True)
class Learner:
    """What the learner needs besides the data: the agent's non-array part, the
    optimiser and its step-size schedule, and the algorithm's hyperparameters."""

    static: PyTree
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule
    algo: AlgoConfig


def _masked_mean(x: Array, mask: Bool[Array, "..."]) -> Array:
    n = jnp.sum(mask)
    total = jnp.sum(jnp.where(mask, x.astype(jnp.float32), 0.0))
    return jnp.where(n > 0, total / jnp.maximum(n, 1).astype(jnp.float32), jnp.nan)


def learn(
    learner: Learner,
    runner: RunnerState,
    carry: RolloutCarry,
    traj: Transition,
    last_value: Array,
    key: Array,
    k_update: Array,
) -> tuple[RunnerState, dict[str, Array]]:
    """GAE then `update_epochs × num_minibatches` gradient steps on a rollout.

    **Arguments:** the learner, the runner state the rollout started from, where the
    rollout ended (`carry`), the rollout (`traj`, time-major) and `V` after its last
    step, the runner's next key and the key of the update's shuffles.

    **Returns:** the new runner state (continuing from `carry`, `update + 1`) and the
    update's metrics (scalars): the PPO terms, `episodes` (episodes that ended),
    their `mean_return`, `success_rate`, `mean_length`, and `lr`.
    """
    a = learner.algo
    agent = eqx.combine(runner.params, learner.static)
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
    with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix int and float
        lr = learner.schedule(runner.update * a.update_epochs * a.num_minibatches)
    agent, opt_state, loss_metrics = ppo_update(
        agent,
        learner.optimizer,
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


def episode_weighted_mean(values: np.ndarray, episodes: np.ndarray) -> float:
    """The mean of per-update means `values`, each weighted by the episodes that ended
    in its update (updates without an episode or with a NaN value left out); NaN if
    none remains."""
    values, episodes = np.asarray(values, np.float64), np.asarray(episodes, np.float64)
    ok = (episodes > 0) & np.isfinite(values)
    if not ok.any():
        return math.nan
    return float(np.sum(values[ok] * episodes[ok]) / np.sum(episodes[ok]))
