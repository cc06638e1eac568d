"""Host (Gymnasium) environments: the vector adapter against Gymnasium itself (both its
vector environment and the adapter's own same-step driver for Gymnasium < 1.1), the
Python rollout loop, and training through the CLI. Gymnasium is installed by the `test`
extra: without it these tests fail rather than skip. Mystery Path (memory-gym, which pins
Gymnasium 0.29) is tested in tests/test_mysterypath.py, in an environment of its own."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from relit_eqx.cli import main
from relit_eqx.envs import Box, Discrete, GymnasiumVectorEnv
from relit_eqx.models import get_model
from relit_eqx.rl import Agent, RolloutCarry, collect_host_rollout, read_metrics


def test_cartpole_matches_gymnasium_and_truncates():
    env = GymnasiumVectorEnv("CartPole-v1", 3, seed=7, max_episode_steps=4)
    ref = gym.make("CartPole-v1", max_episode_steps=4)
    try:
        assert env.observation_shape == (4,) and env.action_space() == Discrete(2)
        obs = env.reset()
        ref_obs, _ = ref.reset(seed=8)  # env 1 is seeded with seed + 1
        np.testing.assert_array_equal(obs[1], ref_obs)
        for t in range(6):
            action = np.array([t % 2] * 3)
            out = env.step(action)
            ref_obs, ref_r, ref_term, ref_trunc, _ = ref.step(t % 2)
            assert out.reward[1] == ref_r and out.terminated[1] == ref_term
            if t < 3:
                np.testing.assert_array_equal(out.obs[1], ref_obs)
                assert not (out.terminated | out.truncated).any()
            elif t == 3:  # the time limit: truncated, the final observation kept
                assert out.truncated.all() and not out.terminated.any()
                np.testing.assert_array_equal(out.final_obs[1], ref_obs)
                assert not np.allclose(out.final_obs, out.obs)
                np.testing.assert_array_equal(out.episode_length, [4, 4, 4])
                np.testing.assert_array_equal(out.episode_return, [4.0, 4.0, 4.0])
                ref_obs, _ = ref.reset()
            else:
                np.testing.assert_array_equal(out.episode_length, [t - 3] * 3)
        assert not env.has_success
    finally:
        env.close()
        ref.close()


def test_spaces_one_hot_box_clip_and_errors():
    lake = GymnasiumVectorEnv("FrozenLake-v1", 2)
    np.testing.assert_array_equal(lake.reset(), np.eye(16, dtype=np.float32)[[0, 0]])
    lake.close()
    a, b = (GymnasiumVectorEnv("Pendulum-v1", 1, seed=3) for _ in range(2))
    assert a.action_space() == Box((1,), -2.0, 2.0)
    a.reset(), b.reset()
    np.testing.assert_array_equal(a.step(np.array([[40.0]])).obs, b.step(np.array([[2.0]])).obs)
    a.close(), b.close()
    with pytest.raises(ValueError, match="unknown Gymnasium id 'CartPol-v1'.*'CartPole-v1'"):
        GymnasiumVectorEnv("CartPol-v1", 1)
    with pytest.raises(TypeError, match="unsupported Gymnasium observation space Tuple"):
        GymnasiumVectorEnv("Blackjack-v1", 1)
    with pytest.raises(ImportError, match="pip install 'relit_eqx\\[gymnasium\\]'"):
        GymnasiumVectorEnv("no_such_module_xyz:Thing-v0", 1)


def test_host_rollout():
    """Reset flags follow episode ends, observations chain, bootstrap values only at
    truncations, and the memory state continues across the rollout."""
    n, t = 3, 9
    env = GymnasiumVectorEnv("CartPole-v1", n, seed=0, max_episode_steps=4)
    model = get_model("gru")(4, d_model=8, key=jax.random.PRNGKey(0))
    agent = Agent(model, env.action_space(), hidden=(8,), key=jax.random.PRNGKey(1))
    state = jax.vmap(lambda _: agent.init_state())(jnp.arange(n))
    carry = RolloutCarry(None, jnp.asarray(env.reset()), jnp.ones((n,), bool), state)
    try:
        end, traj, last_value = collect_host_rollout(agent, env, carry, jax.random.PRNGKey(2), t)
    finally:
        env.close()
    assert traj.obs.shape == (t, n, 4) and traj.action.shape == (t, n)
    done = np.asarray(traj.terminated | traj.truncated)
    np.testing.assert_array_equal(traj.reset[0], True)
    np.testing.assert_array_equal(traj.reset[1:], done[:-1])
    np.testing.assert_array_equal(end.reset, done[-1])
    np.testing.assert_array_equal(traj.episode_done, done)
    assert np.asarray(traj.truncated)[3].all()  # the 4-step limit
    assert (np.asarray(traj.final_value)[~np.asarray(traj.truncated)] == 0).all()
    assert (np.asarray(traj.final_value)[np.asarray(traj.truncated)] != 0).all()
    # The acting pass equals the training pass over the stored inputs.
    _, values, final_state = jax.jit(jax.vmap(agent, in_axes=(1, 1, 0)))(
        traj.obs, traj.reset, state
    )
    np.testing.assert_allclose(values.T, traj.value, rtol=1e-5, atol=1e-6)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        final_state,
        end.model_state,
    )
    assert last_value.shape == (n,)


def test_train_and_resume_on_gymnasium_from_the_cli(tmp_path):
    out = tmp_path / "run"
    args = [
        "train", "--preset", "tmaze-gru", "--env", "gymnasium:CartPole-v1",
        "--model.kwargs.d-model", "8", "--agent.head-hidden", "8",
        "--algo.num-envs", "4", "--algo.num-steps", "16", "--algo.num-minibatches", "2",
        "--algo.update-epochs", "1", "--total-steps", "256", "--log-interval", "2",
        "--no-progress", "--no-compile-cache",
    ]  # fmt: skip
    assert main([*args, "--out", str(out), "--stop-after", "128"]) == 0
    assert len(read_metrics(out / "metrics.csv")["update"]) == 2
    assert main(["train", "--resume", str(out), "--no-progress", "--no-compile-cache"]) == 0
    m = read_metrics(out / "metrics.csv")
    np.testing.assert_array_equal(m["update"], [1, 2, 3, 4])
    assert (m["episodes"] > 0).all() and (m["mean_return"] > 5).all()
    assert np.isnan(m["success_rate"]).all()
    assert np.isfinite(m["loss"]).all()


def test_same_step_driver_equals_gymnasium_vector_env(monkeypatch):
    """Without `gymnasium.vector.AutoresetMode` (Gymnasium < 1.1, e.g. the 0.29 memory-gym
    pins) the adapter steps the environments itself: every output equals Gymnasium's own
    same-step vector environment's, episode ends (time limits and terminations) included."""
    kwargs = dict(seed=5, max_episode_steps=7)
    reference = GymnasiumVectorEnv("CartPole-v1", 3, **kwargs)
    with monkeypatch.context() as m:
        m.delattr(gym.vector, "AutoresetMode")
        ours = GymnasiumVectorEnv("CartPole-v1", 3, **kwargs)
        with pytest.raises(ValueError, match="vectorization_mode='async' needs Gymnasium >= 1.1"):
            GymnasiumVectorEnv("CartPole-v1", 1, vectorization_mode="async")
    assert type(ours.envs).__name__ == "_SameStepVectorEnv"
    assert type(reference.envs).__name__ != "_SameStepVectorEnv"
    rng = np.random.default_rng(0)
    try:
        np.testing.assert_array_equal(ours.reset(), reference.reset())
        ended = 0
        for _ in range(40):
            action = rng.integers(0, 2, 3)
            a, b = ours.step(action), reference.step(action)
            for field in a.__dataclass_fields__:
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
            ended += int((a.terminated | a.truncated).sum())
        assert ended >= 6  # several episodes ended (the 7-step limit at least)
    finally:
        ours.close()
        reference.close()
    with pytest.raises(ValueError, match="vectorization_mode must be 'sync' or 'async'; got 'x'"):
        GymnasiumVectorEnv("CartPole-v1", 1, vectorization_mode="x")
