"""Online RL with memory models: the agent, PPO/A2C, configuration, presets, training."""

from .agent import Agent, Categorical, DiagGaussian, MLPHead
from .config import (
    AgentConfig,
    AlgoConfig,
    ConfigError,
    EnvConfig,
    ModelConfig,
    TrainConfig,
    validate,
)
from .ppo import bootstrap_values, gae, ppo_loss_terms, ppo_update
from .presets import (
    DEFAULT_PRESET,
    EXTRA_PRESETS,
    PRESETS,
    get_preset,
    paper_a2c,
    preset_names,
)
from .rollout import RolloutCarry, Transition, collect_host_rollout, collect_rollout
from .train import (
    RunnerState,
    RunResult,
    check_devices,
    host_update_step,
    init_runner,
    make_agent,
    make_env,
    make_mesh,
    run_training,
    shard_runner,
    update_step,
)

__all__ = [
    "Agent",
    "AgentConfig",
    "AlgoConfig",
    "Categorical",
    "ConfigError",
    "DEFAULT_PRESET",
    "DiagGaussian",
    "EXTRA_PRESETS",
    "EnvConfig",
    "MLPHead",
    "ModelConfig",
    "PRESETS",
    "RolloutCarry",
    "RunResult",
    "RunnerState",
    "TrainConfig",
    "Transition",
    "bootstrap_values",
    "check_devices",
    "collect_host_rollout",
    "collect_rollout",
    "gae",
    "get_preset",
    "host_update_step",
    "init_runner",
    "make_agent",
    "make_env",
    "make_mesh",
    "paper_a2c",
    "ppo_loss_terms",
    "ppo_update",
    "preset_names",
    "run_training",
    "shard_runner",
    "update_step",
    "validate",
]
