"""The MemoryChain memory-length experiment: its settings, its early stop, its sweep."""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from relit_eqx.cli import main
from relit_eqx.envs.registry import make_env
from relit_eqx.rl import ConfigError, validate
from relit_eqx.rl import memorychain as mc


@pytest.mark.parametrize("m", [1, 10, 30, 63, 64, 100, 300, 1000])
def test_a_rollout_is_a_whole_number_of_episodes(m):
    n = mc.rollout_steps(m)
    assert n % (m + 1) == 0 and n >= 64 and n - (m + 1) < 64


def test_budgets_grow_with_the_memory_length_up_to_2m():
    budgets = [mc.budget_steps(m) for m in (1, 10, 11, 30, 100, 300, 1000, 5000)]
    assert budgets == sorted(budgets) and budgets[-1] == 2_000_000
    assert [mc.stretch_steps(m) for m in (10, 1000)] == [10_000, 200_000]


@pytest.mark.parametrize("model", mc.MC_MODELS)
def test_every_cell_is_a_valid_run(model):
    for m in mc.MC_LENGTHS:
        cfg = mc.memorychain_config(model, m, 2)
        validate(cfg)
        assert cfg.env.params == {"memory_length": m}
        assert cfg.env.max_steps_in_episode == m + 1  # the 1000-step default cuts M = 1000
        assert cfg.algo.num_steps % (m + 1) == 0
        assert cfg.total_steps == mc.budget_steps(m) and cfg.seed == 2


def test_model_kwargs_reach_the_models_that_take_them():
    gru = mc.memorychain_config("gru", 10, 0, model_kwargs={"d_model": 8, "eta": 2})
    relit = mc.memorychain_config("relit", 10, 0, model_kwargs={"d_model": 8, "eta": 2})
    assert gru.model.kwargs == {"d_model": 8, "n_layers": 1}
    assert relit.model.kwargs == {**mc.MC_SIZES["relit"], "d_model": 8, "eta": 2}


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown model 'transformer'"):
        mc.memorychain_config("transformer", 10, 0)
    with pytest.raises(ConfigError, match="memory_length must be a positive integer; got 0"):
        mc.memorychain_config("gru", 0, 0)
    with pytest.raises(ConfigError, match="AlgoConfig has no field 'learning_rate'"):
        mc.memorychain_config("gru", 10, 0, algo_kwargs={"learning_rate": 1.0})


def test_episodes_last_m_plus_1_steps_and_pay_plus_or_minus_1_at_the_end():
    """The environment the sweep builds: an episode ends exactly after M + 1 steps, with
    reward ±1 at its last step only, so rollouts of `k (M + 1)` steps hold whole
    episodes; the right answer is the context bit of the first observation."""
    m = 7
    cfg = mc.memorychain_config("gru", m, 0)
    env, params = make_env(cfg.env, num_envs=1, seed=0)
    for seed in range(4):
        obs, state = env.reset(jax.random.key(seed), params)
        answer = int(obs[2] > 0)  # context shown as ±1 at the first step
        rewards, dones = [], []
        for t in range(2 * (m + 1)):
            action = jnp.asarray(answer if seed % 2 == 0 else 1 - answer)
            obs, state, r, done, info = env.step(jax.random.key(100 + t), state, action, params)
            rewards.append(float(r))
            dones.append(bool(done))
            if done:
                break
        assert len(dones) == m + 1 and dones[-1] and not any(dones[:-1])
        assert rewards[:-1] == [0.0] * m
        assert rewards[-1] == (1.0 if seed % 2 == 0 else -1.0)


def test_solved_at_is_the_episodes_mean_over_the_stretch():
    steps = np.arange(1, 11) * 100.0
    ret = np.array([0.0, 0.95, 0.95, 0.5, 0.9, 0.92, np.nan, 1.0, 0.8, 1.0])
    eps = np.array([4, 4, 4, 4, 4, 4, 0, 4, 12, 4])
    metrics = {"env_steps": steps, "mean_return": ret, "episodes": eps}
    # One update (100 steps): the first at 0.9 or more is update 2.
    assert mc.solved_at(metrics, 100) == 200
    # Two updates: (0.95 + 0.95) / 2 at updates 2-3.
    assert mc.solved_at(metrics, 200) == 300
    # Three updates: 1-3 average 0.63, 2-4 0.80, 3-5 0.78, 4-6 0.77; 5-7, 6-8 and 7-9
    # hold update 7, which ended no episode and breaks the stretch; 8-10 weigh 0.8 by 12
    # episodes: (4 + 9.6 + 4) / 20 = 0.88 < 0.9. Never.
    assert mc.solved_at(metrics, 300) is None
    # Weighted by episodes, not by updates: updates 9-10 with 12 and 4 episodes.
    assert mc.solved_at({**metrics, "episodes": np.where(eps == 12, 1, eps)}, 300) == 1000
    assert mc.solved_at(metrics, 250) is None  # a part-update stretch rounds up to 300
    assert mc.solved_at(metrics, 1100) is None  # longer than the run
    empty = {k: v[:0] for k, v in metrics.items()}
    assert mc.solved_at(empty, 100) is None


TINY = [
    "--task", "memorychain", "--models", "gru", "--lengths", "3", "--seeds", "0",
    "--model-kwargs", '{"d_model": 8}', "--no-progress",
]  # fmt: skip


def test_the_sweep_stops_a_solved_run_and_aggregates(tmp_path, monkeypatch):
    out = tmp_path / "mc"
    # A stand-in criterion that calls every run solved at its first logged update.
    monkeypatch.setattr(mc, "solved_at", lambda metrics, stretch: int(metrics["env_steps"][0]))
    assert main(["sweep", "--out", str(out), *TINY, "--total-steps", "100000"]) == 0
    run = out / "gru-M3-s0"
    lines = (run / "metrics.csv").read_text().splitlines()
    steps_per_update = 16 * mc.rollout_steps(3)
    with open(out / "memorychain.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == mc.MC_CSV_COLUMNS
        (row,) = list(reader)
    # The first segment runs one update; the run stops there, solved, far from 100k.
    assert len(lines) == 2
    assert row["solved_at"] == str(steps_per_update) and row["status"] == "solved"
    assert row["env_steps"] == str(steps_per_update) and row["budget_steps"] == "100000"
    assert (row["model"], row["memory_length"], row["seed"]) == ("gru", "3", "0")
    assert -1 <= float(row["final_return"]) <= 1
    assert float(row["final_success"]) == pytest.approx((1 + float(row["final_return"])) / 2)
    assert int(row["state_floats"]) == 8 and int(row["parameters"]) > 0
    assert (out / "memorychain.png").stat().st_size > 0
    # Rerunning trains nothing more: the run is complete.
    assert main(["sweep", "--out", str(out), *TINY, "--total-steps", "100000"]) == 0
    assert (run / "metrics.csv").read_text().splitlines() == lines


def test_the_sweep_rejects_models_outside_the_experiment(tmp_path, capsys):
    args = ["sweep", "--task", "memorychain", "--out", str(tmp_path), "--models", "memax-nope"]
    assert main(args) == 2
    assert "--models: unknown model 'memax-nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
