"""Pure-JAX environments with gymnax's interface, and wrappers."""

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
    "Discrete",
    "Environment",
    "EpisodeStatsState",
    "EpisodeStatsWrapper",
    "TMaze",
    "TMazeParams",
    "TMazeState",
    "gray_code_bits",
]
