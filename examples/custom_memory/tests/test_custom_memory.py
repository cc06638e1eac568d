"""The user project proves its kernel, update rule and model with `relit_eqx.testing`,
and trains the model through `relit_eqx.rl` on T-Maze for a few updates."""

from __future__ import annotations

import jax.random as jr
import numpy as np
from custom_memory import SOFTPLUS, GatedLinearAttention, gla_step_numpy

from relit_eqx.rl import AlgoConfig, EnvConfig, ModelConfig, TrainConfig, read_metrics, run_training
from relit_eqx.testing import check_kernel, check_sequence_model, check_update_rule


def test_kernel():
    """softplus: its features, then every property under the gla rule in every form (the
    library's own rules and AReLiT take it too: `rules=None` and the default
    `oscillators` walk them all, at a few minutes of compiling on a CPU)."""
    check_kernel(SOFTPLUS, rules=["gla"], oscillators=(), max_examples=2)


def test_update_rule():
    """gla against its own float64 numpy step (`gla_step_numpy`), over two kernels."""
    check_update_rule("gla", kernels=[SOFTPLUS, "relu"], oracle=gla_step_numpy, max_examples=3)


def test_model():
    check_sequence_model(
        lambda d_in, key: GatedLinearAttention(d_in, d_model=16, d_key=4, d_value=4, key=key)
    )


def test_model_chunked_form():
    """The chunked training form obeys the same contract (its `step` is the scan form)."""
    check_sequence_model(
        lambda d_in, key: GatedLinearAttention(
            d_in, d_model=16, d_key=4, d_value=4, method="chunked", key=key
        ),
        properties=["call_equals_step", "split_and_carry", "reset"],
    )


def test_trains_on_tmaze(tmp_path):
    """Three PPO updates of the registered model on a short T-Maze (384 env steps)."""
    cfg = TrainConfig(
        env=EnvConfig(name="tmaze", corridor_length=4),
        model=ModelConfig(name="custom_gla", kwargs={"d_model": 16, "d_key": 4, "d_value": 4}),
        algo=AlgoConfig(num_envs=4, num_steps=32),
        total_steps=3 * 4 * 32,
        log_interval=1,
    )
    result = run_training(cfg, tmp_path / "run", progress=False)
    assert (result.updates, result.env_steps) == (3, 384)
    columns = read_metrics(result.metrics_path)
    assert all(len(values) == 3 for values in columns.values())
    for name in ("loss", "value_loss", "entropy"):
        if name in columns:
            assert np.all(np.isfinite(columns[name])), f"{name}: {columns[name]}"


def test_model_builds_from_its_registered_name():
    from relit_eqx.models import get_model, small_kwargs

    model = get_model("custom_gla")(3, key=jr.PRNGKey(0), **small_kwargs("custom_gla"))
    assert isinstance(model, GatedLinearAttention)
    assert model.state_size == 4 * 4 + 4
