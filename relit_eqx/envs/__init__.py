"""Environments with gymnax's interface, wrappers, and adapters of existing engines:
gymnax and Craftax (pure JAX), Gymnasium vector environments (host)."""

from .gymnax_env import CRAFTAX_IDS, CraftaxEnv, GymnaxEnv, gymnax_ids, make_craftax, make_gymnax
from .host import GymnasiumVectorEnv, HostStep, check_gymnasium_id, gymnasium_ids
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
