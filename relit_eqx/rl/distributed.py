"""Data parallelism: a one-axis device mesh, the runner state's placement on it.

With `devices > 1` the runner state lives on a `jax.sharding.Mesh` of one axis
(`ENV_AXIS`): the environment axis of the rollout state is sharded across the devices,
parameters and optimiser state are replicated, and XLA partitions the compiled update
(the gradient reduction included). The result equals the one-device result up to
floating-point reassociation.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, PyTree

from ..envs import get_engine
from .config import ConfigError, TrainConfig
from .types import RunnerState

__all__ = ["ENV_AXIS", "check_devices", "make_mesh", "runner_shardings", "shard_runner", "fetch"]

#: The mesh axis the environments (the batch) are sharded over.
ENV_AXIS = "envs"


def check_devices(cfg: TrainConfig, devices: int) -> None:
    """`ConfigError` unless `cfg` can run data-parallel over the first `devices` devices
    (`jax.devices()`): there must be that many, they must divide `algo.num_envs`, and
    the environment must be a JAX one. Nothing is compiled."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices <= 0:
        raise ConfigError(f"--devices must be a positive integer; got {devices!r}")
    if devices == 1:
        return
    if cfg.algo.num_envs % devices:
        raise ConfigError(
            f"algo.num_envs ({cfg.algo.num_envs}) must be divisible by --devices ({devices}): "
            "the environments are split evenly across the devices"
        )
    available = jax.device_count()
    if devices > available:
        hint = (
            " (on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N host devices)"
            if jax.default_backend() == "cpu"
            else ""
        )
        raise ConfigError(
            f"--devices {devices}: this machine has {available} "
            f"{jax.default_backend()} device(s){hint}"
        )
    if jax.process_count() > 1 and devices != available:
        raise ConfigError(
            f"--devices {devices}: a multi-process run uses every device ({available})"
        )
    if get_engine(cfg.env.name)[0].host:
        raise ConfigError(
            f"--devices {devices}: host environments ({cfg.env.name}) run on one device"
        )


def make_mesh(devices: int) -> Mesh:
    """A one-axis mesh (`ENV_AXIS`) over the first `devices` devices."""
    return Mesh(np.asarray(jax.devices()[:devices]), (ENV_AXIS,))


def runner_shardings(runner: RunnerState, mesh: Mesh) -> RunnerState:
    """Rollout state sharded on its leading (environment) axis; the rest replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    by_env = NamedSharding(mesh, PartitionSpec(ENV_AXIS))
    shardings = jax.tree_util.tree_map(lambda _: replicated, runner)
    rollout = jax.tree_util.tree_map(lambda _: by_env, runner.rollout)
    return eqx.tree_at(lambda r: r.rollout, shardings, rollout)


def shard_runner(runner: RunnerState, mesh: Mesh) -> RunnerState:
    """Place `runner` on `mesh`: the rollout state (environments, observations, memory
    states) split along the environment axis, parameters, optimiser state, key and
    counter replicated. Works across processes (every process holds the same `runner`)."""
    host = fetch(runner)

    def put(x: np.ndarray, sharding: NamedSharding) -> Array:
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree_util.tree_map(put, host, runner_shardings(runner, mesh))


def fetch(tree: PyTree) -> PyTree:
    """`tree` as numpy arrays on this host (gathered across processes if need be)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(np.asarray, tree)
