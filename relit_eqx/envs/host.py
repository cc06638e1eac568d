"""Host (non-JAX) environments: Gymnasium vector environments.

A host environment runs in Python on the CPU, so it cannot be traced into the jitted
update. `GymnasiumVectorEnv` wraps a Gymnasium vector environment (`gymnasium.make_vec`)
for a Python rollout loop (`relit_eqx.rl.collect_host_rollout`): the agent acts
with a jitted step, the vector environment steps on the host, and the whole rollout is
then handed to the same jitted learner as for JAX environments.

The vector environment resets finished episodes itself, in the same step
(`AutoresetMode.SAME_STEP`, the semantics of `AutoResetWrapper`; with a Gymnasium older
than 1.1, such as the 0.29 that memory-gym pins, the adapter steps the environments
itself with the same semantics, `"sync"` only): the returned
observation starts the next episode and the finished episode's last observation is
kept for bootstrapping truncated episodes. Observations are flattened to float32
(`Discrete` ones one-hot, `uint8` images scaled to [0, 1]); `Discrete`, `Box` and
`MultiDiscrete` action spaces are supported, the last as one `Discrete` over every
combination (row-major), e.g. memory-gym's `MultiDiscrete([3, 3])` as `Discrete(9)`.
When the environments put `success` in the info of a finished episode (memory-gym
does), episodes report it.

Gymnasium is optional: `pip install 'relit_eqx[gymnasium]'`; memory-gym's environments
(Mystery Path) come with `pip install 'relit_eqx[mysterypath]'`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .gymnax_env import require
from .wrappers import Box, Discrete

__all__ = ["HostStep", "GymnasiumVectorEnv", "gymnasium_ids", "check_gymnasium_id"]


def gymnasium_ids() -> tuple[str, ...]:
    """Gymnasium's registered environment ids (`gymnasium.registry`)."""
    return tuple(sorted(require("gymnasium", "gymnasium").registry))


def check_gymnasium_id(id: str) -> None:
    """`ValueError` unless `id` is registered with Gymnasium. `"module:Id"` imports
    `module` first (Gymnasium's convention for third-party environments, e.g.
    `memory_gym:MysteryPath-Grid-v0`)."""
    gym = require("gymnasium", "gymnasium")
    if ":" in id:
        module, _, name = id.partition(":")
        require(module, "gymnasium")
    else:
        name = id
    if name not in gym.registry:
        near = difflib.get_close_matches(name, list(gym.registry), n=3)
        raise ValueError(
            f"unknown Gymnasium id {id!r}"
            + (f"; did you mean {' or '.join(map(repr, near))}?" if near else "")
            + " (see gymnasium.registry; 'module:Id' imports module first)"
        )


@dataclass(frozen=True)
class HostStep:
    """One step of `N` host environments (numpy arrays, leading axis `N`).

    - `obs`: the next observations (of a new episode where `done`).
    - `reward`, `terminated`, `truncated`: the environments' answer.
    - `final_obs`: the last observation of episodes that ended (the next observation
      elsewhere), for bootstrapping truncated episodes.
    - `episode_return`, `episode_length`, `episode_success`: of the episodes that
      ended at this step (valid where `terminated | truncated`; success False unless
      reported).
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    episode_return: np.ndarray
    episode_length: np.ndarray
    episode_success: np.ndarray


_MAX_JOINT = 4096


def _space(space: Any, what: str) -> Discrete | Box | int:
    kind = type(space).__name__
    if what == "observation" and kind == "Box":
        return math.prod(space.shape)
    if what == "observation" and kind == "Discrete" and int(getattr(space, "start", 0)) == 0:
        return -int(space.n)  # one-hot
    if what == "action" and kind == "Discrete":
        if int(getattr(space, "start", 0)) != 0:
            raise TypeError(f"unsupported Gymnasium action space {space!r}: start must be 0")
        return Discrete(int(space.n))
    if what == "action" and kind == "MultiDiscrete" and np.ndim(space.nvec) == 1:
        if np.any(np.asarray(getattr(space, "start", 0)) != 0):
            raise TypeError(f"unsupported Gymnasium action space {space!r}: start must be 0")
        n = int(np.prod(space.nvec))
        if n > _MAX_JOINT:
            raise TypeError(
                f"unsupported Gymnasium action space {space!r}: more than {_MAX_JOINT} joint actions"
            )
        return Discrete(n)
    if what == "action" and kind == "Box":
        return Box(tuple(space.shape), float(np.min(space.low)), float(np.max(space.high)))
    supported = "Box and Discrete" + (" (and MultiDiscrete)" if what == "action" else "")
    raise TypeError(
        f"unsupported Gymnasium {what} space {space!r}: only {supported} {what}s are supported"
    )


class _SameStepVectorEnv:
    """`N` Gymnasium environments stepped in turn, each reset in the step that ends its
    episode: the vector environment of Gymnasium >= 1.1 in `AutoresetMode.SAME_STEP`
    (the same `final_obs`/`final_info` entries), for Gymnasiums without it (memory-gym
    pins Gymnasium 0.29)."""

    def __init__(self, envs: list[Any]):
        self.envs = envs
        self.single_observation_space = envs[0].observation_space
        self.single_action_space = envs[0].action_space

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs = [
            env.reset(seed=None if seed is None else seed + i)[0] for i, env in enumerate(self.envs)
        ]
        return np.stack(obs), {}

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        n = len(self.envs)
        obs, final_obs = [], np.empty(n, dtype=object)
        reward, terminated, truncated = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
        ended, success, has_success = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
        for i, env in enumerate(self.envs):
            o, reward[i], terminated[i], truncated[i], info = env.step(actions[i])
            if terminated[i] or truncated[i]:
                ended[i], final_obs[i] = True, o
                if "success" in info:
                    has_success[i], success[i] = True, bool(info["success"])
                o, _ = env.reset()
            obs.append(o)
        info_out: dict[str, Any] = {}
        if ended.any():
            info_out = {"final_obs": final_obs, "_final_obs": ended, "final_info": {}}
            if has_success.any():
                info_out["final_info"] = {"success": success, "_success": has_success}
        return np.stack(obs), reward, terminated, truncated, info_out

    def close(self) -> None:
        for env in self.envs:
            env.close()


class GymnasiumVectorEnv:
    """`num_envs` copies of a Gymnasium environment, stepped on the host.

    **Arguments:**

    - `id`: a Gymnasium id (`"module:Id"` imports `module` first).
    - `num_envs`: `N`.
    - `seed`: seeds the environments at the first `reset` (environment `i` gets
      `seed + i`).
    - `max_episode_steps`: a time limit (truncation) overriding the registered one.
    - `vectorization_mode`: `"sync"` (in this process, the default) or `"async"` (one
      process per environment; Gymnasium >= 1.1).
    - `kwargs`: keyword arguments of `gymnasium.make_vec` (the environment's own).

    `ValueError` for an unknown id, `TypeError` for observation spaces other than `Box`
    and `Discrete` or action spaces other than those and `MultiDiscrete`, `ImportError` without Gymnasium.
    The environments are stateful Python objects: `close()` them when done.
    """

    def __init__(
        self,
        id: str,
        num_envs: int,
        *,
        seed: int = 0,
        max_episode_steps: int | None = None,
        vectorization_mode: str = "sync",
        kwargs: dict[str, Any] | None = None,
    ):
        gym = require("gymnasium", "gymnasium")
        check_gymnasium_id(id)
        kwargs = dict(kwargs or {})
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        self.id = id
        self.num_envs = num_envs
        self.seed = seed
        if vectorization_mode not in ("sync", "async"):
            raise ValueError(
                f"vectorization_mode must be 'sync' or 'async'; got {vectorization_mode!r}"
            )
        if hasattr(gym.vector, "AutoresetMode"):
            self.envs = gym.make_vec(
                id,
                num_envs=num_envs,
                vectorization_mode=vectorization_mode,
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                **kwargs,
            )
        elif vectorization_mode == "sync":
            self.envs = _SameStepVectorEnv([gym.make(id, **kwargs) for _ in range(num_envs)])
        else:
            raise ValueError(
                f"vectorization_mode='async' needs Gymnasium >= 1.1; this is Gymnasium "
                f"{gym.__version__} (use 'sync')"
            )
        try:
            size = _space(self.envs.single_observation_space, "observation")
            self._action_space = _space(self.envs.single_action_space, "action")
        except TypeError:
            self.envs.close()
            raise
        assert isinstance(size, int)
        self._obs_size, self._one_hot = abs(size), size < 0
        obs_dtype = getattr(self.envs.single_observation_space, "dtype", None)
        self._scale = 1 / 255 if obs_dtype == np.uint8 else None
        self._saw_success = False
        self._return = np.zeros(num_envs, np.float32)
        self._length = np.zeros(num_envs, np.int32)

    @property
    def has_success(self) -> bool:
        """Whether a finished episode has reported `success` so far."""
        return self._saw_success

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (self._obs_size,)

    def action_space(self, params: Any = None) -> Discrete | Box:
        space = self._action_space
        assert isinstance(space, Discrete | Box)
        return space

    def _flat(self, obs: Any) -> np.ndarray:
        if self._one_hot:
            return np.eye(self._obs_size, dtype=np.float32)[np.asarray(obs, np.int64)]
        flat = np.asarray(obs, np.float32).reshape(len(obs), -1)
        return flat * np.float32(self._scale) if self._scale is not None else flat

    def reset(self) -> np.ndarray:
        """Start every environment (seeded); the observations `[N, d]`."""
        obs, _ = self.envs.reset(seed=self.seed)
        self._return[:] = 0
        self._length[:] = 0
        return self._flat(obs)

    def step(self, action: np.ndarray) -> HostStep:
        """Step every environment with `action` (`[N]` ints or `[N, *shape]` floats)."""
        space = self.envs.single_action_space
        if type(space).__name__ == "MultiDiscrete":
            action = np.stack(np.unravel_index(np.asarray(action, np.int64), space.nvec), -1)
        elif isinstance(self._action_space, Discrete):
            action = np.asarray(action, np.int64)
        else:
            action = np.clip(np.asarray(action, space.dtype), space.low, space.high)
        obs, reward, terminated, truncated, info = self.envs.step(action)
        terminated = np.asarray(terminated, bool)
        truncated = np.asarray(truncated, bool) & ~terminated
        done = terminated | truncated
        obs = self._flat(obs)
        final_obs = obs.copy()
        success = np.zeros(self.num_envs, bool)
        if done.any():
            ended = np.asarray(info.get("_final_obs", done), bool) & done
            for i in np.flatnonzero(ended):
                final_obs[i] = self._flat(np.asarray(info["final_obs"][i])[None])[0]
            final_info = info.get("final_info", {})
            if "success" in final_info:
                self._saw_success = True
                mask = np.asarray(final_info.get("_success", done), bool) & done
                success = mask & np.asarray(final_info["success"], bool)
        reward = np.asarray(reward, np.float32)
        self._return += reward
        self._length += 1
        ep_return, ep_length = self._return.copy(), self._length.copy()
        self._return[done] = 0
        self._length[done] = 0
        return HostStep(
            obs, reward, terminated, truncated, final_obs, ep_return, ep_length, success
        )

    def close(self) -> None:
        """Close the vector environment."""
        self.envs.close()
