"""Environments with gymnax's interface, wrappers, adapters of existing engines
(gymnax and Craftax: pure JAX; Gymnasium vector environments: host), and the registry
of engines that `env.name` can name (`ENGINES`, `make_env`)."""

from .gymnax_env import CRAFTAX_IDS, CraftaxEnv, GymnaxEnv, gymnax_ids, make_craftax, make_gymnax
from .host import GymnasiumVectorEnv, HostStep, check_gymnasium_id, gymnasium_ids
from .registry import ENGINES, Engine, EnvSpec, check_env, get_engine, make_env, split_env_name
from .tmaze import TMaze, TMazeParams, TMazeState, gray_code_bits
from .wrappers import (
    AutoResetWrapper,
    Box,
    Discrete,
    Environment,
    EpisodeStatsState,
    EpisodeStatsWrapper,
)

__all__ = [
    "AutoResetWrapper",
    "Box",
    "CRAFTAX_IDS",
    "CraftaxEnv",
    "Discrete",
    "Environment",
    "EpisodeStatsState",
    "EpisodeStatsWrapper",
    "ENGINES",
    "Engine",
    "EnvSpec",
    "check_env",
    "get_engine",
    "make_env",
    "split_env_name",
    "GymnasiumVectorEnv",
    "GymnaxEnv",
    "HostStep",
    "TMaze",
    "TMazeParams",
    "TMazeState",
    "check_gymnasium_id",
    "gray_code_bits",
    "gymnasium_ids",
    "gymnax_ids",
    "make_craftax",
    "make_gymnax",
]
