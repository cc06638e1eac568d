"""gymnax and Craftax adapters: spaces, flattening, terminated vs truncated, resets,
against the engines themselves; training through the CLI on a gymnax memory task.

gymnax and craftax are optional extras that the `test` extra installs: without them these
tests fail rather than skip."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from relit_eqx.cli import main
from relit_eqx.envs import (
    AutoResetWrapper,
    Box,
    Discrete,
    EpisodeStatsWrapper,
    GymnaxEnv,
    make_gymnax,
)
from relit_eqx.rl import read_metrics


def _run(env, actions, key=0):
    """Reset `env` (wrapped for auto-reset and statistics) and step it through
    `actions`, in one jitted function."""
    env = EpisodeStatsWrapper(AutoResetWrapper(env))

    def body(state, xs):
        k, a = xs
        obs, state, reward, done, info = env.step(k, state, a)
        keep = ("terminated", "truncated", "episode_return", "episode_length", "final_obs")
        return state, (obs, reward, done, {k: info[k] for k in keep})

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        obs, state = env.reset(k_reset)
        keys = jax.random.split(k_steps, len(actions))
        return obs, jax.lax.scan(body, state, (keys, actions))[1]

    return jax.jit(run)(jax.random.PRNGKey(key))


def test_cartpole_matches_the_engine():
    env = make_gymnax("CartPole-v1")
    genv, gparams = gymnax.make("CartPole-v1")
    assert env.observation_shape == (4,) and env.action_space() == Discrete(2)
    assert not env.has_success
    key = jax.random.PRNGKey(3)
    obs, state = env.reset(key)
    gobs, gstate = genv.reset(key, gparams)
    np.testing.assert_array_equal(obs, gobs)
    for t in range(30):  # gymnax's own auto-resetting step agrees until the episode ends
        k = jax.random.PRNGKey(100 + t)
        a = t % 2
        obs, state, reward, done, info = env.step(k, state, a)
        with jax.numpy_dtype_promotion("standard"):  # gymnax's own code mixes dtypes
            gobs, gstate, greward, gterm, gtrunc, ginfo = genv.step(k, gstate, a, gparams)
        assert float(reward) == float(greward)
        assert bool(info["terminated"]) == bool(gterm)
        np.testing.assert_allclose(obs, ginfo["final_observation"], rtol=1e-5, atol=1e-6)
        if done:
            break


def test_time_limit_is_truncation_not_termination():
    env = make_gymnax("CartPole-v1", max_steps_in_episode=5)
    _, (obs, reward, done, info) = _run(env, jnp.tile(jnp.array([0, 1]), 6))
    # Alternating pushes keep the pole up for 5 steps: every episode hits the limit.
    np.testing.assert_array_equal(done, np.arange(1, 13) % 5 == 0)
    np.testing.assert_array_equal(info["truncated"], done)
    assert not info["terminated"].any()
    np.testing.assert_array_equal(info["episode_length"][done], [5, 5])
    np.testing.assert_array_equal(info["episode_return"][done], [5.0, 5.0])
    # The final observation is kept; the returned one starts the next episode.
    assert not np.allclose(info["final_obs"][4], obs[4])


def test_memory_chain_needs_memory():
    """MemoryChain shows a context bit (±1) at the start only and rewards recalling it
    at the end (+1 right, -1 wrong): recalling it always wins, a fixed action does not."""
    env = make_gymnax("MemoryChain-bsuite")
    assert env.observation_shape == (3,) and env.action_space() == Discrete(2)
    wrapped = EpisodeStatsWrapper(AutoResetWrapper(env))
    step = jax.jit(wrapped.step)
    for remember in (True, False):
        obs, state = wrapped.reset(jax.random.PRNGKey(0))
        cue, returns = obs[2], []
        for t in range(60):
            action = jnp.int32(cue > 0) if remember else jnp.int32(0)
            obs, state, reward, done, info = step(jax.random.PRNGKey(t), state, action)
            if done:
                assert bool(info["terminated"]) and not bool(info["truncated"])
                assert int(info["episode_length"]) == 6
                returns.append(float(info["episode_return"]))
                cue = obs[2]  # the next episode's first observation
        assert len(returns) == 10
        if remember:
            assert returns == [1.0] * 10
        else:
            assert set(returns) == {1.0, -1.0}


def test_continuous_actions_are_clipped():
    env = make_gymnax("Pendulum-v1")
    assert env.action_space() == Box((1,), -2.0, 2.0)
    _, state = env.reset(jax.random.PRNGKey(0))
    k = jax.random.PRNGKey(1)
    far = env.step(k, state, jnp.array([50.0]))
    edge = env.step(k, state, jnp.array([2.0]))
    np.testing.assert_array_equal(far[0], edge[0])
    assert float(far[2]) == float(edge[2])
    assert not bool(far[3])


def test_observations_are_flattened():
    catch = make_gymnax("Catch-bsuite")  # [10, 5] int32 board
    obs, _ = catch.reset(jax.random.PRNGKey(0))
    assert catch.observation_shape == (50,) and obs.shape == (50,) and obs.dtype == jnp.float32
    lake = make_gymnax("FrozenLake-misc")  # a Discrete(16) observation: one-hot
    obs, _ = lake.reset(jax.random.PRNGKey(0))
    assert lake.observation_shape == (16,)
    np.testing.assert_array_equal(obs, np.eye(16, dtype=np.float32)[0])


def test_bad_ids_params_and_spaces():
    with pytest.raises(ValueError, match="unknown gymnax id 'Nope-v0'.*CartPole-v1"):
        make_gymnax("Nope-v0")
    with pytest.raises(ValueError, match="env.params.nope.*max_steps_in_episode"):
        make_gymnax("CartPole-v1", params={"nope": 1})
    env = make_gymnax("MemoryChain-bsuite", params={"memory_length": 3})
    assert env.default_params.memory_length == 3

    genv, _ = gymnax.make("CartPole-v1")

    class TupleActions(type(genv)):
        def action_space(self, params=None):
            return gymnax.environments.spaces.Tuple([gymnax.environments.spaces.Discrete(2)] * 2)

    with pytest.raises(TypeError, match="unsupported gymnax action space"):
        GymnaxEnv(TupleActions())

    class DictObs(type(genv)):
        def observation_space(self, params):
            return gymnax.environments.spaces.Dict({"a": gymnax.environments.spaces.Discrete(2)})

    with pytest.raises(TypeError, match="unsupported gymnax observation space"):
        GymnaxEnv(DictObs())


def test_train_on_memory_chain_from_the_cli(tmp_path):
    out = tmp_path / "run"
    args = [
        "train", "--preset", "tmaze-gru", "--env", "gymnax:MemoryChain-bsuite",
        "--model.kwargs.d-model", "8", "--agent.head-hidden", "8",
        "--algo.num-envs", "4", "--algo.num-steps", "12", "--algo.num-minibatches", "2",
        "--algo.update-epochs", "1", "--total-steps", "192", "--log-interval", "4",
        "--no-progress", "--no-compile-cache", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    m = read_metrics(out / "metrics.csv")
    assert len(m["update"]) == 4
    assert (m["episodes"] == 8).all()  # 4 envs x 12 steps, episodes of 6 steps
    np.testing.assert_array_equal(m["mean_length"], 6.0)
    assert set(np.unique(np.round(m["mean_return"] * 8))) <= set(range(-8, 9, 2))
    assert np.isnan(m["success_rate"]).all()  # MemoryChain reports no success
    assert np.isfinite(m["loss"]).all()


def test_craftax_classic_smoke():
    """Craftax-Classic (symbolic) through the adapter and the `craftax-arelit` preset:
    flat observations, 17 actions, reset and step traced (not compiled: that takes
    half a minute on a CPU, see the slow test below)."""
    from relit_eqx.envs import make_craftax, make_env
    from relit_eqx.rl import Trainer, get_preset

    env = make_craftax("Craftax-Classic-Symbolic-v1", max_steps_in_episode=3)
    assert env.observation_shape == (1345,) and env.action_space() == Discrete(17)
    assert not env.has_success and env.default_params.max_timesteps == 3

    def run(key):
        obs, state = env.reset(key)
        return obs, env.step(key, state, jnp.int32(0))

    obs, (obs1, _, reward, done, info) = jax.eval_shape(run, jax.random.PRNGKey(0))
    assert obs.shape == obs1.shape == (1345,) and obs.dtype == jnp.float32
    assert reward.shape == done.shape == info["terminated"].shape == info["truncated"].shape == ()
    cfg = get_preset("craftax-arelit")
    a, kw = cfg.algo, cfg.model.kwargs
    assert (a.num_envs, a.num_steps, a.update_epochs, a.num_minibatches) == (1024, 128, 4, 8)
    assert (a.gae_lambda, a.lr, a.anneal_lr) == (0.8, 4e-4, True)
    assert cfg.model.name == "arelit"
    assert (kw["n_layers"], kw["d_model"], kw["n_heads"], kw["eta"], kw["r"]) == (4, 128, 4, 8, 2)
    Trainer(cfg).close()
    wrapped, _ = make_env(cfg.env, num_envs=1, seed=0)
    assert wrapped.observation_shape == (1345,)


@pytest.mark.slow
def test_craftax_classic_steps():
    """Craftax-Classic stepped for real: the time limit is a truncation (about 30 s of
    compilation on a CPU)."""
    from relit_eqx.envs import make_craftax

    env = make_craftax("Craftax-Classic-Symbolic-v1", max_steps_in_episode=3)

    def run(key):
        obs, state = env.reset(key)

        def body(state, k):
            obs, state, reward, done, info = env.step(k, state, jnp.int32(0))
            return state, (obs, reward, done, info["terminated"], info["truncated"])

        return obs, jax.lax.scan(body, state, jax.random.split(key, 3))[1]

    obs0, (obs, reward, done, terminated, truncated) = jax.jit(run)(jax.random.PRNGKey(0))
    assert obs0.shape == (1345,) and obs.shape == (3, 1345)
    assert np.isfinite(np.asarray(reward)).all()
    np.testing.assert_array_equal(done, [False, False, True])
    np.testing.assert_array_equal(truncated, done)
    assert not terminated.any()
