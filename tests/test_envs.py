"""T-Maze dynamics and the wrappers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from relit_eqx.envs import (
    AutoResetWrapper,
    Discrete,
    EpisodeStatsWrapper,
    TMaze,
    TMazeParams,
    gray_code_bits,
)

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
L = 6
ENV = TMaze(corridor_length=L)
# Compiled once for every test (eager op-by-op dispatch is slow).
RESET = jax.jit(ENV.reset)
STEP = jax.jit(ENV.step)


def _run(key, actions_fn, n_steps):
    """Roll one T-Maze episode in Python; returns lists of (obs, reward, done, info)."""
    k0, key = jax.random.split(key)
    obs, state = RESET(k0)
    out = [(obs, None, False, None)]
    for t in range(n_steps):
        key, k = jax.random.split(key)
        obs, state, reward, done, info = STEP(k, state, actions_fn(t, state))
        out.append((obs, float(reward), bool(done), info))
        if done:
            break
    return state, out


def _oracle(t, state):
    return jnp.where(state.position == L - 1, state.goal, RIGHT)


def _wrong(t, state):
    return jnp.where(state.position == L - 1, 1 - state.goal, RIGHT)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_oracle_and_wrong_turn_returns(seed):
    for policy, final, success in ((_oracle, 4.0, True), (_wrong, -1.0, False)):
        _, out = _run(jax.random.key(seed), policy, 50)
        rewards = [r for _, r, _, _ in out[1:]]
        assert len(rewards) == L
        assert all(d is False for _, _, d, _ in out[1:-1]) and out[-1][2] is True
        np.testing.assert_allclose(sum(rewards), final - 0.1 * (L - 1), rtol=1e-6)
        info = out[-1][3]
        assert bool(info["terminated"]) and not bool(info["truncated"])
        assert bool(info["success"]) == success


def test_observation_layout():
    env = ENV
    assert env.observation_shape == (16,)
    assert env.num_actions == 4 and env.action_space() == Discrete(4)
    for seed in range(6):
        obs, state = RESET(jax.random.key(seed))
        assert obs.shape == (16,) and obs.dtype == jnp.float32
        expected_cue = [0.0, 1.0] if int(state.goal) == UP else [1.0, 0.0]
        np.testing.assert_array_equal(obs[:2], expected_cue)
        np.testing.assert_array_equal(obs[2:], 0.0)
    obs, state, _, _, _ = STEP(jax.random.key(9), state, jnp.int32(RIGHT))
    np.testing.assert_array_equal(obs[:2], 0.0)
    np.testing.assert_array_equal(obs[2:10], gray_code_bits(jnp.int32(1)))
    assert set(np.unique(np.asarray(obs[10:]))) <= {0.0, 1.0}


def test_gray_code():
    p = jnp.arange(256)
    bits = np.asarray(gray_code_bits(p)).astype(int)
    assert bits.shape == (256, 8)
    # Known values, most significant bit first.
    np.testing.assert_array_equal(bits[0], [0] * 8)
    np.testing.assert_array_equal(bits[1], [0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(bits[2], [0, 0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(bits[3], [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(bits[255], [1, 0, 0, 0, 0, 0, 0, 0])
    # Consecutive codes differ in exactly one bit; all codes are distinct.
    assert (np.abs(np.diff(bits, axis=0)).sum(axis=1) == 1).all()
    assert len({tuple(b) for b in bits}) == 256
    # Decoding (prefix XOR) recovers the position.
    decoded = np.bitwise_xor.accumulate(bits, axis=1) @ (1 << np.arange(7, -1, -1))
    np.testing.assert_array_equal(decoded, np.arange(256))


def test_moves_and_no_ops():
    _, state = RESET(jax.random.key(0))
    key = jax.random.key(1)

    def step(state, a):
        _, state, r, d, _ = STEP(key, state, jnp.int32(a))
        return state, float(r), bool(d)

    state, r, d = step(state, LEFT)  # wall at 0
    assert int(state.position) == 0 and r == pytest.approx(-0.1) and not d
    for a in (UP, DOWN):  # no-ops in the corridor
        state, r, d = step(state, a)
        assert int(state.position) == 0 and r == pytest.approx(-0.1) and not d
    for i in range(L - 1):
        state, r, d = step(state, RIGHT)
        assert int(state.position) == i + 1
    for a in (LEFT, RIGHT):  # no-ops at the junction
        state, r, d = step(state, a)
        assert int(state.position) == L - 1 and r == pytest.approx(-0.1) and not d
    assert int(state.time) == 3 + (L - 1) + 2


def test_truncation_at_time_limit():
    env = AutoResetWrapper(TMaze(corridor_length=L))
    params = env.default_params
    assert params.max_steps_in_episode == 1000
    obs, state = env.reset(jax.random.key(0), params)

    def body(carry, key):
        state = carry
        _, state, r, d, info = env.step(key, state, jnp.int32(LEFT), params)
        return state, (r, d, info["terminated"], info["truncated"])

    _, (r, d, term, trunc) = jax.jit(lambda s, k: jax.lax.scan(body, s, k))(
        state, jax.random.split(jax.random.key(1), 1001)
    )
    d, term, trunc = np.asarray(d), np.asarray(term), np.asarray(trunc)
    assert not term.any()
    assert np.flatnonzero(d).tolist() == [999] and np.flatnonzero(trunc).tolist() == [999]
    np.testing.assert_allclose(np.asarray(r), -0.1)
    # A custom limit through the params.
    short = TMazeParams(max_steps_in_episode=7)
    _, state = env.reset(jax.random.key(0), short)
    for t in range(7):
        _, state, _, d, info = env.step(jax.random.key(t), state, jnp.int32(LEFT), short)
    assert bool(d) and bool(info["truncated"]) and int(state.time) == 0  # auto-reset


def test_memoryless_policy_is_at_chance():
    """The junction observation does not depend on the goal, so any reactive policy
    succeeds half the time."""
    env = ENV
    key = jax.random.key(3)
    # Same keys, both goals: every observation after the first is identical.
    _, s = RESET(key)
    s_up, s_down = (
        s.__class__(jnp.int32(0), s.position, s.time),
        s.__class__(jnp.int32(1), s.position, s.time),
    )
    for t in range(L):
        k = jax.random.fold_in(key, t)
        o_up, s_up, *_ = STEP(k, s_up, jnp.int32(RIGHT))
        o_down, s_down, *_ = STEP(k, s_down, jnp.int32(RIGHT))
        np.testing.assert_array_equal(o_up, o_down)

    # Empirically, over many vmapped episodes: two fixed reactive policies.
    wrapped = EpisodeStatsWrapper(AutoResetWrapper(env))
    n = 4096

    def policy(obs, which):
        """Right in the corridor; at the junction: up (which=0) or a distractor's guess."""
        at_junction = jnp.all(obs[2:10] == gray_code_bits(jnp.int32(L - 1)))
        turn = jnp.where(which == 0, UP, jnp.where(obs[10] > 0.5, UP, DOWN))
        return jnp.where(at_junction, turn, RIGHT)

    @jax.jit
    def episodes(which, key):
        keys = jax.random.split(key, n)
        obs, state = jax.vmap(wrapped.reset)(keys)

        def body(carry, k):
            obs, state = carry
            obs, state, _, _, info = jax.vmap(lambda k, s, o: wrapped.step(k, s, policy(o, which)))(
                jax.random.split(k, n), state, obs
            )
            return (obs, state), info

        return jax.lax.scan(body, (obs, state), jax.random.split(key, L))[1]

    infos = [episodes(jnp.int32(w), jax.random.key(w)) for w in (0, 1)]

    for info in infos:
        done = np.asarray(info["episode_done"])[-1]
        assert done.all()  # every episode ends at step L
        np.testing.assert_allclose(np.asarray(info["episode_length"])[-1], L)
        rate = np.asarray(info["episode_success"])[-1].mean()
        # Binomial(n, 1/2): 4.5 standard deviations.
        assert abs(rate - 0.5) < 4.5 * np.sqrt(0.25 / n), rate
        returns = np.asarray(info["episode_return"])[-1]
        np.testing.assert_allclose(np.unique(np.round(returns, 4)), [-1.5, 3.5])


def test_vmap_jit_and_episode_stats():
    env = EpisodeStatsWrapper(AutoResetWrapper(TMaze(corridor_length=3)))
    n = 5
    obs, state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), n))
    assert obs.shape == (n, 16)
    step = jax.jit(jax.vmap(env.step))
    acts = [RIGHT, RIGHT, UP, RIGHT]
    for t, a in enumerate(acts):
        goal = np.asarray(state.env_state.goal)
        obs, state, r, d, info = step(
            jax.random.split(jax.random.key(t + 1), n), state, jnp.full((n,), a, jnp.int32)
        )
        if t < 2:
            assert not np.asarray(d).any()
        if t == 2:
            assert np.asarray(d).all()
            np.testing.assert_array_equal(np.asarray(info["episode_success"]), goal == UP)
            np.testing.assert_allclose(
                np.asarray(info["episode_return"]), np.where(goal == UP, 3.8, -1.2), rtol=1e-6
            )
            np.testing.assert_array_equal(np.asarray(info["episode_length"]), 3)
            # Auto-reset: fresh cue, position 0, and the final observation kept.
            np.testing.assert_array_equal(np.asarray(obs[:, :2]).sum(axis=1), 1.0)
            np.testing.assert_array_equal(np.asarray(state.env_state.position), 0)
            np.testing.assert_array_equal(
                np.asarray(info["final_obs"][:, 2:10]),
                np.broadcast_to(np.asarray(gray_code_bits(jnp.int32(2))), (n, 8)),
            )
            np.testing.assert_array_equal(np.asarray(state.episode_return), 0.0)
    assert int(state.episode_length[0]) == 1


def test_bad_corridor_length():
    for bad in (0, -3, 257):
        with pytest.raises(ValueError, match="corridor_length"):
            TMaze(corridor_length=bad)
    with pytest.raises(TypeError, match="corridor_length"):
        TMaze(corridor_length=2.5)
