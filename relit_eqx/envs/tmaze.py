"""The T-Maze memory task, in pure JAX (the authors' `tmazev2`).

A corridor of `L` cells, positions `0 … L-1`; the junction is position `L-1`. At the
first step the agent sees a cue telling which way (up or down) the goal is; it must
walk right to the junction and turn the cued way. Nothing after the first step tells
the goal apart, so a policy without memory succeeds half the time.

Observation (16 float32 values):

- `[0:2]` the cue, shown at the first observation only: goal up `[0, 1]`, goal down
  `[1, 0]`; `[0, 0]` afterwards;
- `[2:10]` the 8-bit Gray code of the position, most significant bit first;
- `[10:16]` six distractor bits, Bernoulli(1/2) at every step, all zero at the first.

Actions: `0` up, `1` down, `2` left, `3` right. Left/right move within `[0, L-1]`,
except at the junction, where they do nothing; up/down do nothing in the corridor. At
the junction, up/down end the episode (terminated) with reward `+4` if they match the
cue and `-1` otherwise. Every other step gives `-0.1`. An episode is truncated (not
terminated) after `max_steps_in_episode` (default 1000) steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from .._validation import check_array, check_key, checked
from .wrappers import Discrete, Environment

__all__ = ["TMaze", "TMazeParams", "TMazeState", "gray_code_bits"]

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
N_CUE, N_POSITION, N_DISTRACTOR = 2, 8, 6
OBS_SIZE = N_CUE + N_POSITION + N_DISTRACTOR
MAX_CORRIDOR = 2**N_POSITION


def gray_code_bits(
    position: Int[Array, "*batch"], n_bits: int = N_POSITION
) -> Float[Array, "*batch n_bits"]:
    """The reflected binary (Gray) code `g = p XOR (p >> 1)` of `position`, as float bits.

    **Arguments:**

    - `position`: non-negative integers below `2**n_bits`.
    - `n_bits`: how many bits, most significant first.

    **Returns:** float32 array of shape `position.shape + (n_bits,)`.
    """
    p = jnp.asarray(position, jnp.int32)
    g = p ^ (p >> 1)
    shifts = jnp.arange(n_bits - 1, -1, -1, dtype=jnp.int32)
    shifts = shifts.reshape((1,) * g.ndim + (n_bits,))  # as g[..., None]: same rank
    return ((g[..., None] >> shifts) & 1).astype(jnp.float32)


class TMazeParams(eqx.Module):
    """T-Maze parameters: the time limit (steps per episode before truncation)."""

    max_steps_in_episode: int | Int[Array, ""] = 1000


class TMazeState(eqx.Module):
    """T-Maze state.

    - `goal`: 0 if the goal is up, 1 if down.
    - `position`: the agent's cell, `0 … L-1`.
    - `time`: steps taken in this episode.
    """

    goal: Int[Array, ""]
    position: Int[Array, ""]
    time: Int[Array, ""]


def _check_reset(arguments: Mapping[str, Any]) -> None:
    check_key("key", arguments["key"])


def _check_step(arguments: Mapping[str, Any]) -> None:
    # The checked boundary of `TMaze.step`: one-line errors naming the argument.
    check_key("key", arguments["key"])
    state = arguments["state"]
    if not isinstance(state, TMazeState):
        raise TypeError(f"state must be a TMazeState; got {type(state).__name__}")
    check_array("action", arguments["action"], (), "integer")


class TMaze(Environment):
    """The T-Maze (see the module docstring for the exact dynamics).

    **Arguments:**

    - `corridor_length`: `L`, the number of cells including the junction,
      `1 <= L <= 256` (the position is an 8-bit Gray code). The optimal return is
      `4 - 0.1 (L-1)` in `L` steps.
    """

    corridor_length: int = eqx.field(static=True)

    def __init__(self, corridor_length: int = 10):
        if isinstance(corridor_length, bool) or not isinstance(corridor_length, int):
            raise TypeError(f"corridor_length must be an int; got {corridor_length!r}")
        if not 1 <= corridor_length <= MAX_CORRIDOR:
            raise ValueError(
                f"corridor_length must be in [1, {MAX_CORRIDOR}]; got {corridor_length}"
            )
        self.corridor_length = corridor_length

    @property
    def default_params(self) -> TMazeParams:
        return TMazeParams()

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (OBS_SIZE,)

    def action_space(self, params: TMazeParams | None = None) -> Discrete:
        return Discrete(4)

    @property
    def has_success(self) -> bool:
        return True

    def _obs(
        self, cue: Float[Array, " 2"], position: Int[Array, ""], distractors: Float[Array, " 6"]
    ) -> Float[Array, " 16"]:
        return jnp.concatenate([cue, gray_code_bits(position), distractors]).astype(jnp.float32)

    @checked(_check_reset)
    def reset(
        self, key: PRNGKeyArray, params: TMazeParams | None = None
    ) -> tuple[Float[Array, " 16"], TMazeState]:
        """Draw the goal (up or down, probability 1/2 each); position 0, time 0.

        **Returns:** `(obs, state)`; `obs` shows the cue and no distractors.
        """
        goal = jax.random.bernoulli(key).astype(jnp.int32)
        state = TMazeState(goal, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        cue = jnp.stack([goal, 1 - goal]).astype(jnp.float32)
        obs = self._obs(cue, state.position, jnp.zeros((N_DISTRACTOR,), jnp.float32))
        return obs, state

    @checked(_check_step)
    def step(
        self,
        key: PRNGKeyArray,
        state: TMazeState,
        action: Int[ArrayLike, ""],
        params: TMazeParams | None = None,
    ) -> tuple[Float[Array, " 16"], TMazeState, Float[Array, ""], Bool[Array, ""], dict]:
        """One step (no automatic reset: see `AutoResetWrapper`).

        **Arguments:**

        - `key`: draws the distractor bits of the next observation.
        - `state`: the current state.
        - `action`: 0 up, 1 down, 2 left, 3 right (anything else does nothing).
        - `params`: `TMazeParams`, or `None` for the defaults.

        **Returns:** `(obs, state, reward, done, info)`, `info` holding boolean scalars
        `terminated` (a turn at the junction), `truncated` (time limit, not terminated)
        and `success` (terminated with the cued turn).
        """
        if params is None:
            params = self.default_params
        action = jnp.asarray(action, jnp.int32)
        last = self.corridor_length - 1
        at_junction = state.position == last
        turned = (action == UP) | (action == DOWN)
        terminated = at_junction & turned
        correct = action == state.goal
        reward = jnp.where(terminated, jnp.where(correct, 4.0, -1.0), -0.1).astype(jnp.float32)
        move = jnp.where(action == LEFT, -1, jnp.where(action == RIGHT, 1, 0))
        move = jnp.where(at_junction, 0, move)
        position = jnp.clip(state.position + move, 0, last).astype(jnp.int32)
        time = state.time + 1
        truncated = (time >= params.max_steps_in_episode) & ~terminated
        done = terminated | truncated
        distractors = jax.random.bernoulli(key, 0.5, (N_DISTRACTOR,)).astype(jnp.float32)
        obs = self._obs(jnp.zeros((N_CUE,), jnp.float32), position, distractors)
        info = {"terminated": terminated, "truncated": truncated, "success": terminated & correct}
        return obs, TMazeState(state.goal, position, time), reward, done, info
