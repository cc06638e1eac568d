"""Named training configurations.

Every `tmaze-*` preset trains one memory model at the paper's size on a short T-Maze
with the same PPO settings, so that runs are comparable. Models are named, not built:
a preset loads even when its model's module does not exist yet.

`paper_a2c(model)` is the paper's T-Maze algorithm (A2C: 8 envs × 256 steps, gradient
clip 0.5, γ 0.99, λ 0.95, and the model's step size and entropy weight from the authors'
configuration, `PAPER_TMAZE_ALGO`) as a configuration of the PPO loop, and
`paper_agent()` the authors' heads (128 tanh units, output gains √2).

`craftax-arelit` and `mysterypath-arelit` are the authors' settings for Craftax-Classic
(symbolic) and memory-gym's Mystery Path; they need the `craftax` and `gymnasium`
extras (and memory-gym) and hours of accelerator time.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from ..models.memax_adapter import MEMAX_MODELS
from .config import AgentConfig, AlgoConfig, ConfigError, EnvConfig, ModelConfig, TrainConfig

__all__ = [
    "PRESETS",
    "EXTRA_PRESETS",
    "DEFAULT_PRESET",
    "get_preset",
    "preset_names",
    "model_kwargs_for",
    "paper_a2c",
    "paper_agent",
    "MODEL_SIZES",
    "PAPER_TMAZE_ALGO",
    "PAPER_TMAZE_SIZES",
]

_TRANSFORMER = {"d_model": 128, "n_layers": 4, "n_heads": 4, "d_head": 64, "d_ffn": 128, "eta": 4}

#: Model keyword arguments at the paper's sizes.
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "arelit": {**_TRANSFORMER, "r": 2},
    "relit": dict(_TRANSFORMER),
    "gtrxl": {**{k: v for k, v in _TRANSFORMER.items() if k != "eta"}, "memory_length": 128},
    "gru": {"d_model": 128, "n_layers": 1},
    "lstm": {"d_model": 128, "n_layers": 1},
    # memax's models (`relit_eqx[memax]`): two layers of width 128.
    **{f"memax-{k}": {"d_model": 128, "n_layers": 2} for k in MEMAX_MODELS},
}


#: The authors' T-Maze settings that differ between models (their
#: `config/tmaze/<model>.yaml`): the A2C step size and entropy weight.
PAPER_TMAZE_ALGO: dict[str, dict[str, float]] = {
    "arelit": {"lr": 1e-4, "ent_coef": 1e-3},
    "relit": {"lr": 1e-4, "ent_coef": 1e-3},
    "gtrxl": {"lr": 5e-4, "ent_coef": 1e-2},
    "gru": {"lr": 5e-4, "ent_coef": 1e-2},
    "lstm": {"lr": 1e-4, "ent_coef": 1e-3},
}
#: What the paper's A2C sweep changes in `MODEL_SIZES`: the authors' widths of the
#: recurrent baselines (one layer each), AReLiT's initialisation (their code's) and
#: ReLiT's rule and kernel (their GaLiTe's).
PAPER_TMAZE_SIZES: dict[str, dict[str, Any]] = {
    "arelit": {"authors_init": True},
    # Their GaLiTe (`config/tmaze/relit.yaml`): the projected-sigmoid rule, `pp_relu`
    # with `nu: 2` (their name for our `eta`) and a linear input embedding; the rule has
    # no chunked form, and the step loop keeps less in memory than the associative
    # scan's `d × n` decays.
    "relit": {
        "eta": 2,
        "kernel": "pp_relu",
        "update_rule": "projected_sigmoid",
        "method": "scan",
        "embed_relu": False,
    },
    "gru": {"d_model": 680, "n_layers": 1},
    "lstm": {"d_model": 600, "n_layers": 1},
}


def paper_a2c(model: str | None = None, **overrides: Any) -> AlgoConfig:
    """The paper's T-Maze A2C: PPO with one epoch and one minibatch, so the ratio is 1
    at the only gradient step and neither clip has any effect; no advantage
    normalisation, no learning-rate annealing.

    With `model` (a key of `PAPER_TMAZE_ALGO`), that model's step size and entropy
    weight from the authors' configuration; without, AReLiT's (`lr` 1e-4, `ent_coef`
    1e-3). `vf_coef=1` reproduces the authors' loss `0.5 mean((G - V)^2)` (our value loss
    carries its own ½).
    """
    if model is not None and model not in PAPER_TMAZE_ALGO:
        raise ConfigError(
            f"paper_a2c: no paper settings for model {model!r}; known: {sorted(PAPER_TMAZE_ALGO)}"
        )
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
        vf_coef=1.0,
        ent_coef=1e-3,
        max_grad_norm=0.5,
        normalize_advantages=False,
        adam_eps=1e-8,  # optax.adam's default, which the authors' code keeps
    )
    per_model = PAPER_TMAZE_ALGO[model] if model is not None else {}
    return dataclasses.replace(base, **{**per_model, **overrides})


def paper_agent(**overrides: Any) -> AgentConfig:
    """The authors' T-Maze heads: one hidden layer of 128 tanh units, orthogonal init with
    gain √2 throughout, including both output layers.

    The policy's output gain matters on long corridors. With the PPO convention (0.01)
    the initial policy is uniform, and a uniform walk almost never reaches the junction
    of a 120-cell corridor within the 1000-step limit (no episode in 200,000 simulated);
    the step penalty is the same everywhere, so nothing pulls the agent right. Gain √2
    starts from logits of order 1 that differ between actions, so many initialisations
    drift steadily one way and some reach the junction, after which the +4/−1 ending
    (worth far more than −0.1 per step) is learned.
    """
    base = AgentConfig(
        head_hidden=(128,), activation="tanh", policy_gain=math.sqrt(2.0), value_gain=math.sqrt(2.0)
    )
    return dataclasses.replace(base, **overrides)


# Short-corridor PPO settings chosen to learn within minutes on a 2-core CPU (AReLiT at
# the paper's size, `make run` from a fresh clone on a quiet 2-core CPU: 94% success at 23k
# steps and 100% by 30k, 159 s with 33 s of compilation, 335 env-steps/s).
_QUICK_ENV = EnvConfig(name="tmaze", corridor_length=6)  # T-Maze's time limit: 1000
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


def _craftax_arelit() -> TrainConfig:
    """AReLiT on Craftax-Classic (symbolic observations) with the authors' purejaxrl
    settings: 1024 envs × 128 steps, 4 epochs of 8 minibatches, GAE λ 0.8, step size
    4e-4 annealed; 4 layers, d_model 128, 4 heads, η 8, r 2. The rest follows Craftax's
    recurrent PPO baseline (γ 0.99, clip 0.2, entropy 0.01, value 0.5, gradient clip
    1.0, heads of 512 tanh units, 10⁹ steps)."""
    return TrainConfig(
        env=EnvConfig(name="craftax:Craftax-Classic-Symbolic-v1"),
        model=ModelConfig(name="arelit", kwargs={**MODEL_SIZES["arelit"], "eta": 8}),
        agent=AgentConfig(head_hidden=(512,), activation="tanh"),
        algo=AlgoConfig(
            num_envs=1024,
            num_steps=128,
            num_minibatches=8,
            update_epochs=4,
            lr=4e-4,
            anneal_lr=True,
            gamma=0.99,
            gae_lambda=0.8,
            clip_eps=0.2,
            clip_value=True,
            vf_coef=0.5,
            ent_coef=0.01,
            max_grad_norm=1.0,
            normalize_advantages=True,
        ),
        total_steps=1_000_000_000,
        seed=0,
        log_interval=10,
    )


def _mysterypath_arelit() -> TrainConfig:
    """AReLiT on memory-gym's Mystery Path (a Gymnasium host environment,
    `pip install memory-gym`): 128 envs × 128 steps, 3 epochs of 8 minibatches, step
    size 2.5e-4; the model at the paper's size. Other settings are the CleanRL-style
    PPO defaults (γ 0.99, λ 0.95, clip 0.2, entropy 0.01, gradient clip 0.5)."""
    return TrainConfig(
        env=EnvConfig(name="gymnasium:memory_gym:MysteryPath-v0"),
        model=ModelConfig(name="arelit", kwargs=dict(MODEL_SIZES["arelit"])),
        agent=AgentConfig(head_hidden=(256,), activation="relu"),
        algo=AlgoConfig(
            num_envs=128,
            num_steps=128,
            num_minibatches=8,
            update_epochs=3,
            lr=2.5e-4,
            anneal_lr=False,
            gamma=0.99,
            gae_lambda=0.95,
            clip_eps=0.2,
            clip_value=True,
            vf_coef=0.5,
            ent_coef=0.01,
            max_grad_norm=0.5,
            normalize_advantages=True,
        ),
        total_steps=100_000_000,
        seed=0,
        log_interval=1,
    )


#: Presets on the built-in environments.
PRESETS: dict[str, TrainConfig] = {
    f"tmaze-{m}": _tmaze(m) for m in ("arelit", "relit", "gtrxl", "gru", "lstm")
}
#: Presets on other engines' environments: they need an optional extra.
EXTRA_PRESETS: dict[str, TrainConfig] = {
    "craftax-arelit": _craftax_arelit(),
    "mysterypath-arelit": _mysterypath_arelit(),
}
DEFAULT_PRESET = "tmaze-arelit"


def model_kwargs_for(name: str) -> dict[str, Any]:
    """The constructor arguments a preset gives model `name` when only its name is
    changed (`relit-eqx train --model.name gru`): its `MODEL_SIZES` entry, else none."""
    return dict(MODEL_SIZES.get(name, {}))


def preset_names() -> list[str]:
    """Names of the shipped presets (`PRESETS` and `EXTRA_PRESETS`), sorted."""
    return sorted({**PRESETS, **EXTRA_PRESETS})


def get_preset(name: str) -> TrainConfig:
    """A copy of preset `name`; `ConfigError` naming the choices if unknown."""
    presets = {**PRESETS, **EXTRA_PRESETS}
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choices: {preset_names()}")
    return copy.deepcopy(presets[name])
