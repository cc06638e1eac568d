"""The environment interface (gymnax's), action spaces, and wrappers.

An environment is an `eqx.Module` of pure functions:

- `reset(key, params) -> (obs, state)`;
- `step(key, state, action, params) -> (obs, state, reward, done, info)`.

States are PyTrees of arrays, so environments batch with `jax.vmap` and run under
`jax.jit`/`lax.scan`. `info` is a dict of arrays; every environment reports
`info["terminated"]` (a terminal state was reached: do not bootstrap) and
`info["truncated"]` (a time limit ended the episode: bootstrap from the final
observation), with `done = terminated | truncated`.

A raw environment's `step` does not reset. `AutoResetWrapper` makes it reset on
`done` (gymnax's semantics) and puts the final observation in `info["final_obs"]`;
`EpisodeStatsWrapper` adds per-episode return, length and success.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray, PyTree

from .._validation import check_key_argument, checked

__all__ = [
    "Discrete",
    "Box",
    "Environment",
    "AutoResetWrapper",
    "EpisodeStatsState",
    "EpisodeStatsWrapper",
]


class Discrete(eqx.Module):
    """Actions `0, …, n-1` (int32 scalars)."""

    n: int = eqx.field(static=True)


class Box(eqx.Module):
    """Real actions of shape `shape` (float32), nominally in `[low, high]`."""

    shape: tuple[int, ...] = eqx.field(static=True)
    low: float = eqx.field(static=True, default=-1.0)
    high: float = eqx.field(static=True, default=1.0)


class Environment(eqx.Module):
    """Abstract pure-JAX environment with gymnax's interface."""

    @property
    @abc.abstractmethod
    def default_params(self) -> PyTree:
        """The environment's parameters (a PyTree), used when `params=None`."""

    @abc.abstractmethod
    def reset(
        self, key: PRNGKeyArray, params: PyTree | None = None
    ) -> tuple[Float[Array, "..."], PyTree[Array]]:
        """Start an episode.

        **Returns:** `(obs, state)`.
        """

    @abc.abstractmethod
    def step(
        self,
        key: PRNGKeyArray,
        state: PyTree,
        action: ArrayLike,
        params: PyTree | None = None,
    ) -> tuple[Float[Array, "..."], PyTree, Float[Array, ""], Bool[Array, ""], dict]:
        """Advance one step.

        **Returns:** `(obs, state, reward, done, info)`; `info` holds at least
        `terminated` and `truncated` (boolean scalars).
        """

    @property
    @abc.abstractmethod
    def observation_shape(self) -> tuple[int, ...]:
        """Shape of one observation."""

    @abc.abstractmethod
    def action_space(self, params: PyTree | None = None) -> Discrete | Box:
        """The action space."""

    @property
    def has_success(self) -> bool:
        """Whether `step` reports `info["success"]` (T-Maze does; most environments do
        not, and their success rate is NaN)."""
        return False

    @property
    def num_actions(self) -> int:
        """Number of discrete actions, or the size of a continuous action."""
        space = self.action_space()
        if isinstance(space, Discrete):
            return space.n
        size = 1
        for s in space.shape:
            size *= s
        return size


def _select(pred: Bool[Array, ""], on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class AutoResetWrapper(Environment):
    """Reset `env` inside `step` when an episode ends (gymnax's semantics).

    On `done`, the returned observation and state are those of a fresh episode, the
    reward and `done` are those of the finished one, and `info["final_obs"]` is the
    observation the finished episode ended in (to bootstrap truncated episodes).
    """

    env: Environment

    @property
    def default_params(self) -> PyTree:
        return self.env.default_params

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self.env.observation_shape

    @property
    def has_success(self) -> bool:
        return self.env.has_success

    def action_space(self, params: PyTree | None = None) -> Discrete | Box:
        return self.env.action_space(params)

    @checked(check_key_argument)
    def reset(self, key: PRNGKeyArray, params: PyTree | None = None):
        return self.env.reset(key, params)

    @checked(check_key_argument)
    def step(self, key: PRNGKeyArray, state: PyTree, action: ArrayLike, params=None):
        key_step, key_reset = jax.random.split(key)
        obs, next_state, reward, done, info = self.env.step(key_step, state, action, params)
        reset_obs, reset_state = self.env.reset(key_reset, params)
        info = dict(info, final_obs=obs)
        return (
            jnp.where(done, reset_obs, obs),
            _select(done, reset_state, next_state),
            reward,
            done,
            info,
        )


class EpisodeStatsState(eqx.Module):
    """The wrapped environment's state plus the running episode's return and length."""

    env_state: PyTree  # an engine's state may hold Python scalars (gymnax's `time=0`)
    episode_return: Float[Array, ""]
    episode_length: Array


class EpisodeStatsWrapper(Environment):
    """Report each finished episode's return, length and success.

    Wrap an auto-resetting environment. `info` gains `episode_done` (an episode ended
    at this step) and, valid where `episode_done`, `episode_return`, `episode_length`
    and `episode_success` (`info["success"]` of the last step, False if absent).
    """

    env: Environment

    @property
    def default_params(self) -> PyTree:
        return self.env.default_params

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self.env.observation_shape

    @property
    def has_success(self) -> bool:
        return self.env.has_success

    def action_space(self, params: PyTree | None = None) -> Discrete | Box:
        return self.env.action_space(params)

    @checked(check_key_argument)
    def reset(self, key: PRNGKeyArray, params: PyTree | None = None):
        obs, env_state = self.env.reset(key, params)
        state = EpisodeStatsState(env_state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
        return obs, state

    @checked(check_key_argument)
    def step(self, key: PRNGKeyArray, state: EpisodeStatsState, action: ArrayLike, params=None):
        obs, env_state, reward, done, info = self.env.step(key, state.env_state, action, params)
        ret = state.episode_return + reward
        length = state.episode_length + 1
        success: Any = info.get("success", jnp.zeros((), jnp.bool_))
        info = dict(
            info,
            episode_done=done,
            episode_return=ret,
            episode_length=length,
            episode_success=success & done,
        )
        new_state = EpisodeStatsState(
            env_state,
            jnp.where(done, 0.0, ret).astype(jnp.float32),
            jnp.where(done, 0, length).astype(jnp.int32),
        )
        return obs, new_state, reward, done, info
