"""Online RL with memory models: the agent, PPO/A2C, configuration, presets, training.

- Configure a run: `TrainConfig` (`EnvConfig`, `ModelConfig`, `AgentConfig`,
  `AlgoConfig`), `validate`, `ConfigError`; named ones: `get_preset`, `preset_names`,
  `PRESETS`, `paper_a2c`, `paper_agent`.
- Train it: `run_training(cfg, run_dir)` (a run directory: config, checkpoint,
  metrics, learning curve; resumable) → `RunResult`; `read_metrics` reads the CSV.
- Build your own loop: `Trainer(cfg)` (`init`, `update`, `chunk`) on a `RunnerState`.
- The pieces: `Agent` (with `Categorical`, `DiagGaussian`, `MLPHead`), `act`,
  `collect_rollout`, `collect_host_rollout` (→ `Transition`, `RolloutCarry`), `gae`,
  `bootstrap_values`, `ppo_loss_terms`, `ppo_update` (A2C is its one-epoch,
  one-minibatch case).
"""

from .acting import act
from .agent import Agent, Categorical, DiagGaussian, MLPHead
from .collect import collect_host_rollout, collect_rollout
from .config import (
    AgentConfig,
    AlgoConfig,
    ConfigError,
    EnvConfig,
    ModelConfig,
    TrainConfig,
    validate,
)
from .losses import ppo_loss_terms
from .ppo import bootstrap_values, gae, ppo_update
from .presets import (
    DEFAULT_PRESET,
    EXTRA_PRESETS,
    PRESETS,
    get_preset,
    paper_a2c,
    paper_agent,
    preset_names,
)
from .run import Interrupted, RunResult, run_training
from .run_dir import read_metrics
from .trainer import Trainer
from .types import RolloutCarry, RunnerState, Transition

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
    "Interrupted",
    "MLPHead",
    "ModelConfig",
    "PRESETS",
    "RolloutCarry",
    "RunResult",
    "RunnerState",
    "TrainConfig",
    "Trainer",
    "Transition",
    "act",
    "bootstrap_values",
    "collect_host_rollout",
    "collect_rollout",
    "gae",
    "get_preset",
    "paper_a2c",
    "paper_agent",
    "ppo_loss_terms",
    "ppo_update",
    "preset_names",
    "read_metrics",
    "run_training",
    "validate",
]
