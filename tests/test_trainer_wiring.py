"""The trainer's wiring: what the learner receives at truncations, checked against
independent computations (a plain GAE loop, the model's training form)."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from test_ppo import _gae_oracle, tiny_config

import relit_eqx.rl.learner as learner_module
from relit_eqx.envs import AutoResetWrapper, Discrete, Environment, EpisodeStatsWrapper
from relit_eqx.models import get_model
from relit_eqx.rl import Agent, RolloutCarry, Trainer, collect_rollout
from relit_eqx.rl.config import EnvConfig


def test_learner_gae_sees_truncations(monkeypatch):
    """With a 3-step time limit every T-Maze episode (corridor 4) is truncated: the
    advantages the learner hands to the PPO update equal a plain GAE loop over the
    rollout it collected, truncation ending each sum."""
    base = tiny_config()
    cfg = dataclasses.replace(
        base,
        env=EnvConfig(name="tmaze", corridor_length=4, max_steps_in_episode=3),
        algo=dataclasses.replace(base.algo, gamma=0.9, gae_lambda=0.8),
    )
    trainer = Trainer(cfg)
    runner = trainer.init()
    seen = {}
    real_update = learner_module.ppo_update

    def spy(agent, optimizer, opt_state, traj, start_state, advantages, returns, key, algo):
        seen.update(traj=traj, advantages=advantages, returns=returns)
        return real_update(
            agent, optimizer, opt_state, traj, start_state, advantages, returns, key, algo
        )

    monkeypatch.setattr(learner_module, "ppo_update", spy)
    agent = trainer.agent(runner)
    new_runner, _ = trainer.update(runner)
    traj = jax.tree_util.tree_map(np.asarray, seen["traj"])
    truncated = traj.truncated
    assert truncated.sum() >= cfg.algo.num_envs  # every env truncates at least once
    assert not (truncated & traj.terminated).any()
    # V of the observation after the rollout, from the agent that acted.
    carry = new_runner.rollout
    last_value = np.asarray(jax.vmap(agent.step)(carry.obs, carry.reset, carry.model_state)[1])
    expected = _gae_oracle(
        traj.reward,
        traj.value,
        last_value,
        traj.terminated,
        truncated,
        traj.final_value,
        cfg.algo.gamma,
        cfg.algo.gae_lambda,
    )
    np.testing.assert_allclose(seen["advantages"], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(seen["returns"], expected + traj.value, rtol=1e-4, atol=1e-5)


class _Counter(Environment):
    """Observation `[t, 1]` at the `t`-th step of an episode, whatever the action; the
    episode is truncated after `limit` steps; no reward, never terminated."""

    limit: int = eqx.field(static=True)

    @property
    def default_params(self):
        return None

    @property
    def observation_shape(self):
        return (2,)

    def action_space(self, params=None):
        return Discrete(2)

    def _obs(self, t):
        return jnp.stack([t.astype(jnp.float32), jnp.ones((), jnp.float32)])

    def reset(self, key, params=None):
        t = jnp.zeros((), jnp.int32)
        return self._obs(t), t

    def step(self, key, state, action, params=None):
        t = state + 1
        truncated = t >= self.limit
        info = {"terminated": jnp.zeros((), jnp.bool_), "truncated": truncated}
        return self._obs(t), t, jnp.zeros((), jnp.float32), truncated, info


def test_truncation_bootstraps_from_the_state_after_the_step():
    """At a truncation the collector stores `V` of the final observation with the
    memory that has absorbed the whole episode: the training form run over the
    episode's observations `[0, 1], …, [limit, 1]` from a reset gives that value as its
    last output."""
    limit, n, steps = 3, 2, 7
    env = EpisodeStatsWrapper(AutoResetWrapper(_Counter(limit)))
    model = get_model("gru")(2, d_model=8, n_layers=1, key=jax.random.key(0))
    agent = Agent(model, Discrete(2), hidden=(8,), key=jax.random.key(1))
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(jax.random.key(2), n), None
    )
    state = jax.vmap(lambda _: agent.init_state())(jnp.arange(n))
    carry = RolloutCarry(env_state, obs, jnp.ones((n,), jnp.bool_), state)
    _, traj, _ = jax.jit(lambda c, k: collect_rollout(agent, env, None, c, k, steps))(
        carry, jax.random.key(3)
    )
    truncated = np.asarray(traj.truncated)
    np.testing.assert_array_equal(truncated[:, 0], [t % limit == limit - 1 for t in range(steps)])
    episode = jnp.stack([jnp.asarray([float(t), 1.0]) for t in range(limit + 1)])
    resets = jnp.zeros((limit + 1,), jnp.bool_).at[0].set(True)
    _, values, _ = agent(episode, resets, agent.init_state())
    expected = float(values[-1])
    final = np.asarray(traj.final_value)
    np.testing.assert_allclose(final[truncated], expected, rtol=1e-5, atol=1e-6)
    # The memory before the step (episode without its last observation) gives another value.
    before = agent(jnp.concatenate([episode[:-2], episode[-1:]]), resets[:-1], agent.init_state())[
        1
    ][-1]
    assert abs(float(before) - expected) > 1e-4
    assert (final[~truncated] == 0).all()
