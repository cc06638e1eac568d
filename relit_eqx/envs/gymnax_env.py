"""gymnax (and Craftax) environments as `Environment`s.

[gymnax](https://github.com/RobertTLange/gymnax) environments are pure JAX already; the
adapter only translates:

- **observations**: flattened to one float32 vector (a `Discrete(n)` observation becomes
  a one-hot vector of length `n`);
- **actions**: gymnax `Discrete(n)` → `Discrete(n)`; gymnax `Box` → `Box(shape)`, with
  actions clipped to the space's bounds before the engine sees them (the policy's
  Gaussian is unbounded);
- **episode ends**: gymnax ≥ 1.0 reports a natural end (`step_env`'s `done`) apart from
  the time limit (`is_truncated`), which become `info["terminated"]` and
  `info["truncated"]` (a step ending both ways counts as terminated). The adapter's
  `step` does not reset: wrap it in `AutoResetWrapper`, like any `Environment`.

Craftax's environments copy gymnax's interface but end episodes at the time limit
through the same `done` as death; `CraftaxEnv` separates the two honestly, by asking
the engine again with the time limit out of reach.

gymnax and Craftax are optional: `pip install 'relit_eqx[gymnax]'` or
`'relit_eqx[craftax]'`.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Iterator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray, PyTree

from .._validation import check_key_argument, checked
from .wrappers import Box, Discrete, Environment

__all__ = [
    "GymnaxEnv",
    "CraftaxEnv",
    "CRAFTAX_IDS",
    "gymnax_ids",
    "make_gymnax",
    "make_craftax",
    "require",
]

#: Craftax ids `make_craftax` accepts (the engine's names without auto-reset).
CRAFTAX_IDS = (
    "Craftax-Classic-Symbolic-v1",
    "Craftax-Symbolic-v1",
    "Craftax-Classic-Pixels-v1",
    "Craftax-Pixels-v1",
)


def require(module: str, extra: str) -> Any:
    """Import the optional package `module`, or raise an `ImportError` naming the extra
    to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"the optional package {module!r} is not installed ({e}); "
            f"install it with: pip install 'relit_eqx[{extra}]'"
        ) from None


def gymnax_ids() -> tuple[str, ...]:
    """gymnax's registered environment ids (`gymnax.registered_envs`)."""
    return tuple(require("gymnax", "gymnax").registered_envs)


def _space_kind(space: Any) -> str:
    return type(space).__name__


def _flat_size(space: Any, what: str, engine: str) -> int:
    kind = _space_kind(space)
    if kind == "Box":
        return math.prod(space.shape)
    if kind == "Discrete":
        return int(space.n)
    raise TypeError(
        f"unsupported {engine} {what} space {space!r}: only Box and Discrete {what}s are supported"
    )


class GymnaxEnv(Environment):
    """A gymnax (≥ 1.0) environment, without automatic resets.

    **Arguments:**

    - `env`: the gymnax environment (`gymnax.make(id)[0]`).
    - `params`: its parameters (default: `env.default_params`).

    Raises `TypeError` for observation or action spaces other than `Box` and
    `Discrete`.
    """

    env: Any = eqx.field(static=True)
    params: PyTree
    obs_size: int = eqx.field(static=True)
    obs_one_hot: bool = eqx.field(static=True)
    space: Discrete | Box = eqx.field(static=True)
    action_low: Any
    action_high: Any

    def __init__(self, env: Any, params: PyTree | None = None):
        if not hasattr(env, "step_env") or not hasattr(env, "reset_env"):
            raise TypeError(f"{env!r} does not have gymnax's step_env/reset_env interface")
        self.env = env
        self.params = env.default_params if params is None else params
        engine = type(self).__name__.removesuffix("Env").lower()
        obs_space = env.observation_space(self.params)
        self.obs_size = _flat_size(obs_space, "observation", engine)
        self.obs_one_hot = _space_kind(obs_space) == "Discrete"
        act_space = env.action_space(self.params)
        _flat_size(act_space, "action", engine)
        if _space_kind(act_space) == "Discrete":
            self.space = Discrete(int(act_space.n))
            self.action_low = self.action_high = None
        else:
            low = np.broadcast_to(np.asarray(act_space.low, np.float32), act_space.shape)
            high = np.broadcast_to(np.asarray(act_space.high, np.float32), act_space.shape)
            self.space = Box(tuple(act_space.shape), float(low.min()), float(high.max()))
            self.action_low, self.action_high = low.copy(), high.copy()

    @property
    def default_params(self) -> PyTree:
        return self.params

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (self.obs_size,)

    def action_space(self, params: PyTree | None = None) -> Discrete | Box:
        return self.space

    def _obs(self, obs: Array) -> Float[Array, " n"]:
        if self.obs_one_hot:
            return jax.nn.one_hot(obs, self.obs_size, dtype=jnp.float32)
        return jnp.ravel(obs).astype(jnp.float32)

    def _action(self, action: ArrayLike) -> Array:
        if isinstance(self.space, Discrete):
            return jnp.asarray(action, jnp.int32)
        return jnp.clip(action, self.action_low, self.action_high)

    def _ends(
        self, state: PyTree, done: Bool[Array, ""], params: PyTree
    ) -> tuple[Bool[Array, ""], Bool[Array, ""]]:
        """`(terminated, truncated)` after a step that reached `state`."""
        terminated = jnp.asarray(done, jnp.bool_)
        truncated = jnp.asarray(self.env.is_truncated(state, params), jnp.bool_)
        return terminated, truncated & ~terminated

    @checked(check_key_argument)
    def reset(self, key: PRNGKeyArray, params: PyTree | None = None):
        params = self.params if params is None else params
        with _engine_rules():
            obs, state = self.env.reset_env(key, params)
        return self._obs(obs), state

    @checked(check_key_argument)
    def step(
        self, key: PRNGKeyArray, state: PyTree, action: ArrayLike, params: PyTree | None = None
    ):
        """One step of the engine (`step_env`); `info` holds the engine's own entries plus
        `terminated` and `truncated`."""
        params = self.params if params is None else params
        action = self._action(action)
        with _engine_rules():
            obs, state, reward, done, info = self.env.step_env(key, state, action, params)
            terminated, truncated = self._ends(state, done, params)
        info = dict(info, terminated=terminated, truncated=truncated)
        reward = jnp.asarray(reward, jnp.float32)
        return self._obs(obs), state, reward, terminated | truncated, info


@contextlib.contextmanager
def _engine_rules() -> Iterator[None]:
    # gymnax's and Craftax's code relies on JAX's default promotion (int/float mixes).
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


class CraftaxEnv(GymnaxEnv):
    """A Craftax environment without automatic resets (`auto_reset=False`).

    Craftax's `done` includes the time limit (`params.max_timesteps`); `terminated`
    is the engine's `is_terminal` with the time limit out of reach (death, lava), and
    `truncated` the rest. Craftax reports no success.

    **Arguments:** as `GymnaxEnv` (`env` from
    `make_craftax_env_from_name(id, auto_reset=False)`).
    """

    def __init__(self, env: Any, params: PyTree | None = None):
        super().__init__(env, params)

    def _ends(self, state, done, params):
        no_limit = params.replace(max_timesteps=np.iinfo(np.int32).max)
        terminated = jnp.asarray(self.env.is_terminal(state, no_limit), jnp.bool_)
        done = jnp.asarray(done, jnp.bool_)
        return terminated & done, done & ~terminated


def _with_params(params: PyTree, overrides: dict[str, Any], id_: str) -> PyTree:
    fields = getattr(params, "__dataclass_fields__", {})
    for k in overrides:
        if k not in fields:
            raise ValueError(
                f"env.params.{k}: {id_} has no parameter {k!r}; its parameters: {sorted(fields)}"
            )
    return params.replace(**overrides) if overrides else params


def make_gymnax(
    id: str,
    *,
    kwargs: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    max_steps_in_episode: int | None = None,
) -> GymnaxEnv:
    """`GymnaxEnv` of `gymnax.make(id, **kwargs)`, its parameters overridden by `params`
    and, when given, its time limit by `max_steps_in_episode`.

    `ValueError` for an unknown id or parameter, `ImportError` without gymnax.
    """
    gymnax = require("gymnax", "gymnax")
    if id not in gymnax.registered_envs:
        raise ValueError(f"unknown gymnax id {id!r}; gymnax ids: {list(gymnax.registered_envs)}")
    env, env_params = gymnax.make(id, **(kwargs or {}))
    if not hasattr(env, "is_truncated"):
        raise ImportError(
            "gymnax >= 1.0 is needed (it reports time limits apart from terminations); "
            "install it with: pip install 'relit_eqx[gymnax]'"
        )
    overrides = dict(params or {})
    if max_steps_in_episode is not None:
        overrides["max_steps_in_episode"] = max_steps_in_episode
    return GymnaxEnv(env, _with_params(env_params, overrides, id))


def make_craftax(
    id: str = "Craftax-Classic-Symbolic-v1",
    *,
    params: dict[str, Any] | None = None,
    max_steps_in_episode: int | None = None,
) -> CraftaxEnv:
    """`CraftaxEnv` of `craftax.craftax_env.make_craftax_env_from_name(id, auto_reset=False)`,
    its parameters overridden by `params` and its time limit (`max_timesteps`) by
    `max_steps_in_episode` when given.

    `ValueError` for an unknown id or parameter, `ImportError` without craftax.
    """
    if id not in CRAFTAX_IDS:
        raise ValueError(f"unknown Craftax id {id!r}; Craftax ids: {list(CRAFTAX_IDS)}")
    craftax_env = require("craftax.craftax_env", "craftax")
    env = craftax_env.make_craftax_env_from_name(id, auto_reset=False)
    overrides = dict(params or {})
    if max_steps_in_episode is not None:
        overrides["max_timesteps"] = max_steps_in_episode
    return CraftaxEnv(env, _with_params(env.default_params, overrides, id))
