"""Typed, frozen configuration of a training run, its validation and its JSON form.

Each dataclass checks its own invariants when it is built (`ConfigError` naming the
field); `validate` adds what needs the registries: the environment and the model."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ConfigError",
    "EnvConfig",
    "ModelConfig",
    "AgentConfig",
    "AlgoConfig",
    "TrainConfig",
    "validate",
    "config_to_dict",
    "config_from_dict",
    "changed_fields",
]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _positive(path: str, value: Any) -> None:
    if not _is_int(value):
        raise ConfigError(f"{path} must be an integer; got {value!r}")
    if value <= 0:
        raise ConfigError(f"{path} must be positive; got {value}")


def _number(path: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{path} must be a number; got {value!r}")


@dataclass(frozen=True)
class EnvConfig:
    """The environment."""

    name: str = "tmaze"
    """The environment: `tmaze`, `gymnax:ID` (e.g. `gymnax:CartPole-v1`),
    `craftax:ID` (e.g. `craftax:Craftax-Classic-Symbolic-v1`) or `gymnasium:ID` (a
    host environment, e.g. `gymnasium:CartPole-v1`)."""
    corridor_length: int = 10
    """T-Maze corridor length L (cells, junction included); T-Maze only."""
    max_steps_in_episode: int | None = None
    """Time limit: an episode is truncated after this many steps (None: the
    environment's own; T-Maze's is 1000)."""
    kwargs: dict[str, int | float | bool | str] = field(default_factory=dict)
    """Keyword arguments of the engine's constructor: `gymnax.make(ID, **kwargs)` or
    `gymnasium.make_vec(ID, num_envs, **kwargs)`."""
    params: dict[str, int | float | bool] = field(default_factory=dict)
    """Overrides of the engine's parameters (fields of gymnax's or Craftax's
    `EnvParams`, e.g. `memory_length` of `gymnax:MemoryChain-bsuite`)."""


@dataclass(frozen=True)
class ModelConfig:
    """The memory model, built at train time as `get_model(name)(d_in, key=..., **kwargs)`."""

    name: str = "arelit"
    """A registered model name (`relit_eqx.model_names()`)."""
    kwargs: dict[str, int | float | bool | str] = field(default_factory=dict)
    """Keyword arguments of the model's constructor."""

    def __post_init__(self) -> None:
        for k, v in self.kwargs.items():
            if isinstance(v, int) and not isinstance(v, bool) and v <= 0:
                raise ConfigError(f"model.kwargs.{k} must be positive; got {v}")


@dataclass(frozen=True)
class AgentConfig:
    """The policy and value heads."""

    head_hidden: tuple[int, ...] = (64,)
    """Hidden widths of both heads (none: linear heads)."""
    activation: str = "tanh"
    """Activation between head layers: `tanh` or `relu`."""
    policy_gain: float = 0.01
    """Orthogonal-init gain of the policy's output layer: 0.01 starts from a near-uniform
    policy (the PPO convention); the paper's code uses √2, which starts from a skewed,
    state-dependent policy (see `presets.paper_agent`)."""
    value_gain: float = 1.0
    """Orthogonal-init gain of the value head's output layer (the paper's code: √2)."""

    def __post_init__(self) -> None:
        for i, w in enumerate(self.head_hidden):
            _positive(f"agent.head_hidden[{i}]", w)
        for name in ("policy_gain", "value_gain"):
            gain = getattr(self, name)
            if isinstance(gain, bool) or not isinstance(gain, int | float) or not gain > 0:
                raise ConfigError(f"agent.{name} must be a positive number; got {gain!r}")
        if self.activation not in ("tanh", "relu"):
            raise ConfigError(f"agent.activation must be 'tanh' or 'relu'; got {self.activation!r}")


@dataclass(frozen=True)
class AlgoConfig:
    """PPO hyperparameters (A2C is `update_epochs=1, num_minibatches=1`)."""

    num_envs: int = 8
    """Environments run in parallel."""
    num_steps: int = 256
    """Steps per environment in a rollout (the truncated-BPTT length)."""
    num_minibatches: int = 1
    """Minibatches per epoch, each a set of whole env trajectories; divides num_envs."""
    update_epochs: int = 1
    """Passes over each rollout."""
    lr: float = 1e-4
    """Adam step size."""
    anneal_lr: bool = False
    """Anneal the step size linearly to 0 over the run."""
    adam_eps: float = 1e-5
    """Adam's epsilon."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """PPO ratio clip epsilon."""
    clip_value: bool = True
    """Clip the value change by clip_eps too."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    ent_coef: float = 1e-3
    """Entropy-bonus weight."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_advantages: bool = True
    """Standardise advantages per minibatch."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs"):
            _positive(f"algo.{name}", getattr(self, name))
        if self.num_envs % self.num_minibatches:
            raise ConfigError(
                f"algo.num_envs ({self.num_envs}) must be divisible by algo.num_minibatches "
                f"({self.num_minibatches}): a minibatch is a set of whole env trajectories"
            )
        for name in ("anneal_lr", "clip_value", "normalize_advantages"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"algo.{name} must be true or false; got {getattr(self, name)!r}")
        for name in (
            "lr", "adam_eps", "gamma", "gae_lambda", "clip_eps", "vf_coef", "ent_coef",
            "max_grad_norm",
        ):  # fmt: skip
            _number(f"algo.{name}", getattr(self, name))
        for name in ("lr", "adam_eps", "clip_eps", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"algo.{name} must be positive; got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"algo.{name} must be in [0, 1]; got {getattr(self, name)}")
        for name in ("vf_coef", "ent_coef"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"algo.{name} must be non-negative; got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    env: EnvConfig = EnvConfig()
    model: ModelConfig = ModelConfig()
    agent: AgentConfig = AgentConfig()
    algo: AlgoConfig = AlgoConfig()
    total_steps: int = 500_000
    """Environment steps over all envs; the run does total_steps // (num_envs * num_steps)
    updates."""
    seed: int = 0
    """The seed every key is split from."""
    log_interval: int = 10
    """Updates per jitted chunk: progress, CSV rows and a checkpoint after each chunk."""

    def __post_init__(self) -> None:
        _positive("total_steps", self.total_steps)
        if self.total_steps < self.steps_per_update:
            raise ConfigError(
                f"total_steps ({self.total_steps}) is less than one update "
                f"(algo.num_envs * algo.num_steps = {self.steps_per_update})"
            )
        _positive("log_interval", self.log_interval)
        if not _is_int(self.seed):
            raise ConfigError(f"seed must be an integer; got {self.seed!r}")

    @property
    def steps_per_update(self) -> int:
        """`num_envs * num_steps`."""
        return self.algo.num_envs * self.algo.num_steps

    @property
    def num_updates(self) -> int:
        """`total_steps // steps_per_update`."""
        return self.total_steps // self.steps_per_update


def validate(cfg: TrainConfig) -> None:
    """Raise `ConfigError` (naming the field) unless `cfg` describes a runnable run: what
    its construction could not check, namely that its environment can be built (its
    engine, id and parameters) and its model is registered.

    Cheap: no model is built and nothing is compiled. An environment of another engine
    (`gymnax:…`, `craftax:…`, `gymnasium:…`) imports that engine to check the id.
    """
    from ..envs import check_env
    from ..models import model_names

    try:
        check_env(cfg.env)
    except (ImportError, ValueError) as e:
        raise ConfigError(str(e)) from None

    if cfg.model.name not in model_names():
        raise ConfigError(
            f"model.name: unknown model {cfg.model.name!r}; registered models: {model_names()}"
        )


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """A JSON-ready dict of `cfg`."""
    return dataclasses.asdict(cfg)


def _fields_of(cls: type, d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where or 'the configuration'} must be an object; got {d!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(
            f"unknown field {where}{unknown[0]!r} in the saved configuration; "
            f"{cls.__name__} has: {', '.join(sorted(names))}"
        )
    return dict(d)


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Inverse of `config_to_dict` (lists become tuples where the field is a tuple).

    `ConfigError` naming the field for an unknown key, a missing part or a value of the
    wrong kind."""
    top = _fields_of(TrainConfig, d, "")
    try:
        agent = _fields_of(AgentConfig, top.get("agent", {}), "agent.")
        if "head_hidden" in agent:
            agent["head_hidden"] = tuple(agent["head_hidden"])
        env = _fields_of(EnvConfig, top.get("env", {}), "env.")
        for k in ("kwargs", "params"):
            if k in env:
                env[k] = dict(env[k])
        model = _fields_of(ModelConfig, top.get("model", {}), "model.")
        if "kwargs" in model:
            model["kwargs"] = dict(model["kwargs"])
        algo = _fields_of(AlgoConfig, top.get("algo", {}), "algo.")
        return TrainConfig(
            env=EnvConfig(**env),
            model=ModelConfig(**model),
            agent=AgentConfig(**agent),
            algo=AlgoConfig(**algo),
            **{k: v for k, v in top.items() if k not in ("env", "model", "agent", "algo")},
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"malformed saved configuration: {e}") from None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "kwargs" and k != "params":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_fields(a: TrainConfig, b: TrainConfig) -> list[str]:
    """The fields (dotted: `algo.lr`) other than `total_steps` in which `a` and `b`
    differ: empty when `b` continues the run `a` (only its length may change)."""
    fa, fb = _flatten(config_to_dict(a)), _flatten(config_to_dict(b))
    return sorted(k for k in set(fa) | set(fb) if k != "total_steps" and fa.get(k) != fb.get(k))


def config_to_json(cfg: TrainConfig) -> str:
    """`cfg` as the JSON text of a run directory's `config.json`."""
    return json.dumps(config_to_dict(cfg), indent=2, sort_keys=True)
