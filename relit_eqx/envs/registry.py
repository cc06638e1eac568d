"""Environment engines, one registry: what `env.name` can name and how it is built.

An `env.name` is a bare engine name (`tmaze`) or `ENGINE:ID` (`gymnax:CartPole-v1`,
`craftax:Craftax-Classic-Symbolic-v1`, `gymnasium:CartPole-v1`). Each engine is an
`Engine` record: a `check` (the id is known and the arguments fit; cheap, builds
nothing), a `build`, and whether its environments run on the host. Adding an engine is
one adapter file plus one line in `ENGINES`.

`check` and `build` take an `EnvSpec`, any object with the fields of
`relit_eqx.rl.EnvConfig` (`name`, `corridor_length`, `max_steps_in_episode`, `kwargs`,
`params`). They raise `ValueError` with a message naming the field (`env.…`) for a
configuration the engine rejects, `ImportError` naming the extra to install for a
missing optional package.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from jaxtyping import PyTree

from .gymnax_env import CRAFTAX_IDS, gymnax_ids, make_craftax, make_gymnax
from .host import GymnasiumVectorEnv, check_gymnasium_id
from .tmaze import MAX_CORRIDOR, TMaze, TMazeParams
from .wrappers import AutoResetWrapper, Environment, EpisodeStatsWrapper

__all__ = ["EnvSpec", "Engine", "ENGINES", "split_env_name", "get_engine", "check_env", "make_env"]


@runtime_checkable
class EnvSpec(Protocol):
    """The fields of an environment's configuration the engines read."""

    @property
    def name(self) -> str: ...
    @property
    def corridor_length(self) -> int: ...
    @property
    def max_steps_in_episode(self) -> int | None: ...
    @property
    def kwargs(self) -> Mapping[str, Any]: ...
    @property
    def params(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Engine:
    """An environment engine.

    - `check(id, spec)`: `ValueError`/`ImportError` unless `spec` can be built.
    - `build(id, spec, num_envs, seed)`: `(env, params)`; a JAX engine returns an
      `Environment` (one copy; batched with `jax.vmap`) and its parameters, a host engine
      a vector of `num_envs` host environments seeded from `seed` and `None`.
    - `host`: its environments step on the host (one device, not in the checkpoint).
    - `takes_kwargs`, `takes_params`: whether `env.kwargs`, `env.params` mean anything.
    """

    check: Callable[[str, EnvSpec], None]
    build: Callable[[str, EnvSpec, int, int], tuple[Any, PyTree]]
    host: bool = False
    takes_kwargs: bool = False
    takes_params: bool = False
    bare: bool = False


def _check_tmaze(id_: str, spec: EnvSpec) -> None:
    L = spec.corridor_length
    if isinstance(L, bool) or not isinstance(L, int):
        raise ValueError(f"env.corridor_length must be an integer; got {L!r}")
    if L <= 0:
        raise ValueError(f"env.corridor_length must be positive; got {L}")
    if L > MAX_CORRIDOR:
        raise ValueError(f"env.corridor_length must be at most {MAX_CORRIDOR}; got {L}")


def _build_tmaze(id_: str, spec: EnvSpec, num_envs: int, seed: int) -> tuple[Any, PyTree]:
    limit = 1000 if spec.max_steps_in_episode is None else spec.max_steps_in_episode
    return TMaze(spec.corridor_length), TMazeParams(max_steps_in_episode=limit)


def _check_gymnax(id_: str, spec: EnvSpec) -> None:
    ids = gymnax_ids()
    if id_ not in ids:
        raise ValueError(f"env.name: unknown gymnax id {id_!r}; gymnax ids: {', '.join(ids)}")


def _build_gymnax(id_: str, spec: EnvSpec, num_envs: int, seed: int) -> tuple[Any, PyTree]:
    env = make_gymnax(
        id_,
        kwargs=dict(spec.kwargs),
        params=dict(spec.params),
        max_steps_in_episode=spec.max_steps_in_episode,
    )
    return env, env.default_params


def _check_craftax(id_: str, spec: EnvSpec) -> None:
    if id_ not in CRAFTAX_IDS:
        raise ValueError(
            f"env.name: unknown Craftax id {id_!r}; Craftax ids: {', '.join(CRAFTAX_IDS)}"
        )
    if importlib.util.find_spec("craftax") is None:
        raise ImportError(
            "the optional package 'craftax' is not installed; "
            "install it with: pip install 'relit_eqx[craftax]'"
        )


def _build_craftax(id_: str, spec: EnvSpec, num_envs: int, seed: int) -> tuple[Any, PyTree]:
    env = make_craftax(
        id_, params=dict(spec.params), max_steps_in_episode=spec.max_steps_in_episode
    )
    return env, env.default_params


def _check_gymnasium(id_: str, spec: EnvSpec) -> None:
    try:
        check_gymnasium_id(id_)
    except ValueError as e:
        raise ValueError(f"env.name: {e}") from None


def _build_gymnasium(id_: str, spec: EnvSpec, num_envs: int, seed: int) -> tuple[Any, PyTree]:
    env = GymnasiumVectorEnv(
        id_,
        num_envs,
        seed=seed,
        max_episode_steps=spec.max_steps_in_episode,
        kwargs=dict(spec.kwargs),
    )
    return env, None


#: Engine name → `Engine`. `tmaze` is named bare; the others as `ENGINE:ID`.
ENGINES: dict[str, Engine] = {
    "tmaze": Engine(_check_tmaze, _build_tmaze, bare=True),
    "gymnax": Engine(_check_gymnax, _build_gymnax, takes_kwargs=True, takes_params=True),
    "craftax": Engine(_check_craftax, _build_craftax, takes_params=True),
    "gymnasium": Engine(_check_gymnasium, _build_gymnasium, host=True, takes_kwargs=True),
}


def split_env_name(name: str) -> tuple[str, str]:
    """`(engine, id)` of an `env.name`: `("tmaze", "tmaze")` or e.g.
    `("gymnax", "CartPole-v1")`; `ValueError` (naming `env.name`) for anything else."""
    engine = ENGINES.get(name)
    if engine is not None and engine.bare:
        return name, name
    prefix, sep, id_ = name.partition(":")
    if not sep or prefix not in ENGINES or ENGINES[prefix].bare or not id_:
        choices = [e if ENGINES[e].bare else f"{e}:ID" for e in ENGINES]
        raise ValueError(f"env.name: unknown environment {name!r}; choices: {', '.join(choices)}")
    return prefix, id_


def get_engine(name: str) -> tuple[Engine, str]:
    """The `Engine` of an `env.name` and the id within it."""
    engine, id_ = split_env_name(name)
    return ENGINES[engine], id_


def check_env(spec: EnvSpec) -> None:
    """`ValueError`/`ImportError` unless `spec` names a known environment with
    arguments its engine takes (nothing is built)."""
    engine, id_ = get_engine(spec.name)
    prefix = spec.name.partition(":")[0]
    try:
        engine.check(id_, spec)
    except ImportError as e:
        raise ImportError(f"env.name {spec.name!r}: {e}") from None
    if spec.kwargs and not engine.takes_kwargs:
        raise ValueError(
            f"env.kwargs: {prefix} takes no constructor arguments; got {dict(spec.kwargs)}"
        )
    if spec.params and not engine.takes_params:
        raise ValueError(
            f"env.params: {prefix} has no parameter overrides; got {dict(spec.params)} "
            + ("(use env.max_steps_in_episode)" if prefix == "tmaze" else "(use env.kwargs)")
        )
    if spec.max_steps_in_episode is not None:
        m = spec.max_steps_in_episode
        if isinstance(m, bool) or not isinstance(m, int):
            raise ValueError(f"env.max_steps_in_episode must be an integer; got {m!r}")
        if m <= 0:
            raise ValueError(f"env.max_steps_in_episode must be positive; got {m}")


def make_env(spec: EnvSpec, *, num_envs: int, seed: int) -> tuple[Any, PyTree]:
    """The environment of `spec` and its parameters.

    A JAX environment comes auto-resetting and reporting episode statistics
    (`EpisodeStatsWrapper(AutoResetWrapper(env))`); a host one is a vector of
    `num_envs` environments seeded from `seed` (close it when done), with parameters
    `None`. `ValueError` (naming the field) or `ImportError` when the engine rejects
    `spec`.
    """
    engine, id_ = get_engine(spec.name)
    try:
        env, params = engine.build(id_, spec, num_envs, seed)
    except ImportError as e:
        raise ImportError(f"env.name {spec.name!r}: {e}") from None
    except (TypeError, ValueError) as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith("env.") else f"env: {spec.name}: {msg}") from None
    if isinstance(env, Environment):
        env = EpisodeStatsWrapper(AutoResetWrapper(env))
    return env, params
