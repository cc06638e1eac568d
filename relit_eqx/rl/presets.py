"""Named training configurations.

Every `tmaze-*` preset trains one memory model at the paper's size on a short T-Maze
with the same PPO settings, so that runs are comparable. Models are named, not built:
a preset loads even when its model's module does not exist yet.

`paper_a2c()` is the paper's T-Maze algorithm (A2C: 8 envs × 256 steps, lr 1e-4,
entropy 1e-3, gradient clip 0.5, γ 0.99, λ 0.95) as a configuration of the PPO loop.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from .config import AgentConfig, AlgoConfig, ConfigError, EnvConfig, ModelConfig, TrainConfig

__all__ = ["PRESETS", "DEFAULT_PRESET", "get_preset", "preset_names", "paper_a2c", "MODEL_SIZES"]

_TRANSFORMER = {"d_model": 128, "n_layers": 4, "n_heads": 4, "d_head": 64, "d_ffn": 128, "eta": 4}

#: Model keyword arguments at the paper's sizes.
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "arelit": {**_TRANSFORMER, "r": 2},
    "relit": dict(_TRANSFORMER),
    "gtrxl": {**{k: v for k, v in _TRANSFORMER.items() if k != "eta"}, "memory_length": 128},
    "gru": {"d_model": 128, "n_layers": 1},
    "lstm": {"d_model": 128, "n_layers": 1},
}


def paper_a2c(**overrides: Any) -> AlgoConfig:
    """The paper's T-Maze A2C: PPO with one epoch and one minibatch, so the ratio is 1
    at the only gradient step and neither clip has any effect; no advantage
    normalisation, no learning-rate annealing."""
    base = AlgoConfig(
        num_envs=8,
        num_steps=256,
        num_minibatches=1,
        update_epochs=1,
        lr=1e-4,
        anneal_lr=False,
        gamma=0.99,
        gae_lambda=0.95,
        clip_eps=0.2,
        clip_value=True,
        vf_coef=0.5,
        ent_coef=1e-3,
        max_grad_norm=0.5,
        normalize_advantages=False,
    )
    return dataclasses.replace(base, **overrides)


# Short-corridor PPO settings chosen to learn within minutes on a 2-core CPU (AReLiT at
# the paper's size: 91% success at 27k steps and 100% by 33k, 122 s with compilation, measured
# by `make run` on a quiet 2-core CPU).
_QUICK_ENV = EnvConfig(name="tmaze", corridor_length=6, max_steps_in_episode=1000)
_QUICK_ALGO = AlgoConfig(
    num_envs=16,
    num_steps=64,
    num_minibatches=4,
    update_epochs=4,
    lr=1e-3,
    anneal_lr=True,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    clip_value=True,
    vf_coef=0.5,
    ent_coef=1e-2,
    max_grad_norm=0.5,
    normalize_advantages=True,
)


def _tmaze(model: str) -> TrainConfig:
    return TrainConfig(
        env=_QUICK_ENV,
        model=ModelConfig(name=model, kwargs=dict(MODEL_SIZES[model])),
        agent=AgentConfig(head_hidden=(64,), activation="tanh"),
        algo=_QUICK_ALGO,
        total_steps=40_000,
        seed=0,
        log_interval=2,
    )


PRESETS: dict[str, TrainConfig] = {
    f"tmaze-{m}": _tmaze(m) for m in ("arelit", "relit", "gtrxl", "gru", "lstm")
}
DEFAULT_PRESET = "tmaze-arelit"


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(PRESETS)


def get_preset(name: str) -> TrainConfig:
    """A copy of preset `name`; `ConfigError` naming the choices if unknown."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choices: {preset_names()}")
    return copy.deepcopy(PRESETS[name])
