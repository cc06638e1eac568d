"""The state a run carries from update to update, and one rollout's record.

- `RolloutCarry`: where the next rollout continues from (environments, observations,
  reset flags, memory states; leading axis: envs).
- `Transition`: what the acting step records, one step (`[N]`) or a whole rollout
  (time-major, `[T, N]`).
- `RunnerState`: everything that changes during training and is checkpointed.
"""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array, Bool, Float, Int, PyTree, UInt32

__all__ = ["RolloutCarry", "Transition", "RunnerState"]


class RolloutCarry(eqx.Module):
    """What a rollout continues from (leading axis: envs).

    - `env_state`: the environments' states (`None` for host environments).
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
      with the memory that absorbed the step, for bootstrapping.
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
