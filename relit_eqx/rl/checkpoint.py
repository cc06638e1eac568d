"""Run directories: the saved configuration and checkpoints.

A run directory holds `config.json` (the `TrainConfig`), `checkpoint.eqx` (the whole
runner state: parameters, optimiser state, environment and memory states, key, update
count; `eqx.tree_serialise_leaves`), `metrics.csv` and `learning_curve.png`.
Checkpoints are written to a temporary file and renamed, so a crash leaves the
previous one intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypeVar

import equinox as eqx

from .config import ConfigError, TrainConfig, config_from_dict, config_to_json

__all__ = [
    "CONFIG_FILE",
    "CHECKPOINT_FILE",
    "METRICS_FILE",
    "PLOT_FILE",
    "holds_run",
    "save_config",
    "load_config",
    "save_checkpoint",
    "load_checkpoint",
]

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.eqx"
METRICS_FILE = "metrics.csv"
PLOT_FILE = "learning_curve.png"

T = TypeVar("T")


def holds_run(path: str | os.PathLike) -> bool:
    """Whether `path` holds (part of) a run: any of its config, checkpoint or metrics."""
    p = Path(path)
    return any((p / f).exists() for f in (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE))


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_config(run_dir: str | os.PathLike, cfg: TrainConfig) -> None:
    """Write `run_dir/config.json`."""
    data = config_to_json(cfg).encode()
    _atomic_write(Path(run_dir) / CONFIG_FILE, lambda f: f.write(data))


def load_config(run_dir: str | os.PathLike) -> TrainConfig:
    """Read `run_dir/config.json`."""
    with open(Path(run_dir) / CONFIG_FILE) as f:
        return config_from_dict(json.load(f))


def save_checkpoint(run_dir: str | os.PathLike, state: eqx.Module) -> None:
    """Serialise every leaf of `state` to `run_dir/checkpoint.eqx` (atomically)."""
    _atomic_write(Path(run_dir) / CHECKPOINT_FILE, lambda f: eqx.tree_serialise_leaves(f, state))


def load_checkpoint(run_dir: str | os.PathLike, like: T) -> T:
    """Load `run_dir/checkpoint.eqx` into a PyTree shaped like `like`.

    Raises `ConfigError` when the arrays on disk do not fit `like` (a checkpoint written
    for another configuration, or by a version of `relit_eqx` whose parameters were laid
    out differently: before `nn.Dense`, dense weights were stored `[d_out, d_in]`).
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    with open(path, "rb") as f:
        try:
            return eqx.tree_deserialise_leaves(f, like)
        except (RuntimeError, ValueError) as e:
            raise ConfigError(
                f"{path} does not fit this run's model and optimiser state ({e}); it was "
                "written for another configuration or by another version of relit_eqx"
            ) from None
