"""PPO pieces against independent computations; rollouts; end-to-end determinism, resume."""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from relit_eqx.envs import Box, Discrete, TMazeParams
from relit_eqx.models import get_model
from relit_eqx.rl import (
    Agent,
    AgentConfig,
    Categorical,
    DiagGaussian,
    ModelConfig,
    Trainer,
    Transition,
    bootstrap_values,
    collect_rollout,
    gae,
    get_preset,
    ppo_loss_terms,
    ppo_update,
    read_metrics,
    run_training,
)

# One tiny configuration for every end-to-end test (here and in test_cli.py), so the
# training chunk compiles once per test session.
TINY_ARGS = [
    "--env.corridor-length", "4",
    "--model.kwargs.d-model", "8",
    "--agent.head-hidden", "8",
    "--algo.num-envs", "4",
    "--algo.num-steps", "16",
    "--algo.num-minibatches", "2",
    "--algo.update-epochs", "2",
    "--total-steps", "384",
    "--log-interval", "2",
]  # fmt: skip


def tiny_config(**changes):
    base = get_preset("tmaze-gru")
    cfg = dataclasses.replace(
        base,
        env=dataclasses.replace(base.env, corridor_length=4),
        model=ModelConfig("gru", {"d_model": 8, "n_layers": 1}),
        agent=AgentConfig(head_hidden=(8,), activation=base.agent.activation),
        algo=dataclasses.replace(
            base.algo, num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2
        ),
        total_steps=384,
        log_interval=2,
    )
    return dataclasses.replace(cfg, **changes)


# ------------------------------------------------------------------------------- GAE


def _gae_oracle(rewards, values, last_value, terminated, truncated, final_value, gamma, lam):
    """Per step, the λ-weighted sum of TD errors forward until the episode or data ends."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                if terminated[k, n]:
                    v_next = 0.0
                elif truncated[k, n]:
                    v_next = final_value[k, n]
                else:
                    v_next = values[k + 1, n] if k + 1 < T else last_value[n]
                delta = rewards[k, n] + gamma * v_next - values[k, n]
                total += weight * delta
                if terminated[k, n] or truncated[k, n]:
                    break
                weight *= gamma * lam
            adv[t, n] = total
    return adv


@pytest.mark.parametrize("seed", [0, 1])
def test_gae_matches_plain_loop(seed):
    rng = np.random.default_rng(seed)
    T, N, gamma, lam = 23, 3, 0.97, 0.9
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    last_value = rng.normal(size=N).astype(np.float32)
    final_value = rng.normal(size=(T, N)).astype(np.float32)
    ends = rng.random((T, N))
    terminated = ends < 0.15
    truncated = (ends >= 0.15) & (ends < 0.25)
    final_value = np.where(truncated, final_value, 0.0).astype(np.float32)
    expected = _gae_oracle(
        rewards, values, last_value, terminated, truncated, final_value, gamma, lam
    )
    next_values = bootstrap_values(
        jnp.asarray(values),
        jnp.asarray(last_value),
        jnp.asarray(truncated),
        jnp.asarray(final_value),
    )
    adv, ret = gae(
        jnp.asarray(rewards),
        jnp.asarray(values),
        next_values,
        jnp.asarray(terminated),
        jnp.asarray(terminated | truncated),
        gamma,
        lam,
    )
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, expected + values, rtol=1e-5, atol=1e-5)


def test_gae_lambda_one_is_discounted_return():
    """λ = 1, one episode terminating at the end: A_t + V_t = Σ γ^k r_{t+k}."""
    r = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    v = np.array([0.3, -0.1, 0.7, 0.2], np.float32)
    term = np.array([False, False, False, True])
    nv = bootstrap_values(jnp.asarray(v), jnp.float32(9.0), jnp.zeros(4, bool), jnp.zeros(4))
    _, ret = gae(jnp.asarray(r), jnp.asarray(v), nv, jnp.asarray(term), jnp.asarray(term), 0.9, 1.0)
    expected = [sum(0.9**k * r[t + k] for k in range(4 - t)) for t in range(4)]
    np.testing.assert_allclose(ret, expected, rtol=1e-6)


# ------------------------------------------------------------------------- PPO loss


def test_ppo_loss_terms_by_hand():
    eps = 0.2
    logp = np.log(np.array([1.5, 0.5, 1.1, 0.9]))  # ratios (old log-probs are 0)
    adv = np.array([2.0, -1.0, -3.0, 4.0])
    values = np.array([1.0, 0.0, 2.0, -1.0])
    old_values = np.array([0.5, 0.5, 2.1, -1.0])
    returns = np.array([2.0, 1.0, 2.0, 0.0])
    ent = np.array([0.1, 0.2, 0.3, 0.4])
    terms = ppo_loss_terms(
        jnp.asarray(logp, jnp.float32),
        jnp.zeros(4),
        jnp.asarray(adv, jnp.float32),
        jnp.asarray(values, jnp.float32),
        jnp.asarray(old_values, jnp.float32),
        jnp.asarray(returns, jnp.float32),
        jnp.asarray(ent, jnp.float32),
        clip_eps=eps,
    )
    # Ratio 1.5, A=2: min(3, 1.2*2=2.4) = 2.4.  Ratio 0.5, A=-1: min(-0.5, 0.8*-1=-0.8) = -0.8.
    # Ratio 1.1, A=-3: min(-3.3, -3.3) = -3.3.  Ratio 0.9, A=4: min(3.6, 3.6) = 3.6.
    np.testing.assert_allclose(terms["policy_loss"], -(2.4 - 0.8 - 3.3 + 3.6) / 4, rtol=1e-6)
    # Values: clipped to old ± 0.2: [0.7, 0.3, 2.0, -1.0];
    # max((v-R)², (vc-R)²) = [max(1, 1.69), max(1, 0.49), max(0, 0), max(1, 1)].
    np.testing.assert_allclose(terms["value_loss"], 0.5 * (1.69 + 1 + 0 + 1) / 4, rtol=1e-6)
    np.testing.assert_allclose(terms["entropy"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(terms["clip_frac"], 0.5)
    r = np.array([1.5, 0.5, 1.1, 0.9])
    np.testing.assert_allclose(terms["approx_kl"], np.mean(r - 1 - np.log(r)), rtol=1e-5)
    unclipped = ppo_loss_terms(
        *(jnp.asarray(x, jnp.float32) for x in (logp, np.zeros(4), adv, values, old_values)),
        jnp.asarray(returns, jnp.float32),
        jnp.asarray(ent, jnp.float32),
        clip_eps=eps,
        clip_value=False,
    )
    np.testing.assert_allclose(unclipped["value_loss"], 0.5 * (1 + 1 + 0 + 1) / 4, rtol=1e-6)


def test_one_epoch_ppo_gradient_is_the_policy_gradient():
    """At ratio 1 (A2C: one epoch, one minibatch) clipping changes nothing: the gradient
    of the clipped objective is that of -mean(A log π), and of the clipped value loss that
    of ½ mean((V - R)²)."""
    adv = jnp.array([1.0, -2.0, 0.5])
    ret = jnp.array([0.3, 0.1, -0.4])

    def losses(logp, v):
        t = ppo_loss_terms(
            logp, jax.lax.stop_gradient(logp), adv, v, jax.lax.stop_gradient(v), ret,
            jnp.zeros(3), clip_eps=0.2,
        )  # fmt: skip
        return t["policy_loss"], t["value_loss"]

    logp0, v0 = jnp.log(jnp.array([0.2, 0.5, 0.7])), jnp.array([1.0, -1.0, 0.0])
    g_pg = jax.grad(lambda lp: losses(lp, v0)[0])(logp0)
    g_vf = jax.grad(lambda v: losses(logp0, v)[1])(v0)
    np.testing.assert_allclose(g_pg, -adv / 3, rtol=1e-6)
    np.testing.assert_allclose(g_vf, (v0 - ret) / 3, rtol=1e-6)


def test_distributions_by_hand():
    logits = jnp.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
    d = Categorical(logits)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(d.log_prob(jnp.array([2, 0])), np.log([p[0, 2], p[1, 0]]), rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), -(p * np.log(p)).sum(-1), rtol=1e-6)
    np.testing.assert_allclose(d.entropy()[1], math.log(3), rtol=1e-6)
    g = DiagGaussian(jnp.array([0.0, 1.0]), jnp.log(jnp.array([1.0, 2.0])))
    a = jnp.array([0.5, -1.0])
    expected = sum(
        -0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
        for x, m, s in ((0.5, 0.0, 1.0), (-1.0, 1.0, 2.0))
    )
    np.testing.assert_allclose(g.log_prob(a), expected, rtol=1e-6)
    np.testing.assert_allclose(
        g.entropy(), sum(0.5 * math.log(2 * math.pi * math.e * s**2) for s in (1.0, 2.0)), rtol=1e-6
    )
    samples = jax.vmap(g.sample)(jax.random.split(jax.random.key(0), 4000))
    np.testing.assert_allclose(samples.mean(0), [0.0, 1.0], atol=0.1)
    np.testing.assert_allclose(samples.std(0), [1.0, 2.0], atol=0.1)


# --------------------------------------------------------------------------- agent


def _tiny_agent(space, key=0):
    model = get_model("gru")(5, d_model=8, n_layers=1, key=jax.random.key(key))
    return Agent(model, space, hidden=(8,), key=jax.random.key(key + 1))


@pytest.mark.parametrize("space", [Discrete(3), Box((2,))])
def test_agent_step_matches_call(space):
    agent = _tiny_agent(space)
    T = 7
    obs = jax.random.normal(jax.random.key(2), (T, 5))
    resets = jnp.array([True, False, False, True, False, False, False])

    @eqx.filter_jit
    def both(agent, obs, resets):
        by_call = agent(obs, resets, agent.init_state())

        def body(state, x):
            d, v, state = agent.step(*x, state)
            return state, (d, v)

        final, (d, v) = jax.lax.scan(body, agent.init_state(), (obs, resets))
        return by_call, (d, v, final)

    (dist, values, final), by_step = both(agent, obs, resets)
    for a, b in zip(jax.tree.leaves(by_step), jax.tree.leaves((dist, values, final)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if isinstance(space, Box):
        assert dist.mean.shape == (T, 2) and dist.log_std.shape == (T, 2)
    else:
        assert dist.logits.shape == (T, 3)
        # Orthogonal init with gain 0.01: near-uniform initial policy.
        np.testing.assert_allclose(dist.entropy(), math.log(3), atol=1e-2)


def test_agent_head_gains():
    """The heads' output layers are orthogonal with the configured gain: the columns of a
    `hidden x n` output weight (n <= hidden) have norm `gain`; biases start at zero."""
    model = get_model("gru")(5, d_model=8, n_layers=1, key=jax.random.key(0))
    for policy_gain, value_gain in ((0.01, 1.0), (math.sqrt(2), math.sqrt(2))):
        agent = Agent(
            model,
            Discrete(4),
            hidden=(16,),
            policy_gain=policy_gain,
            value_gain=value_gain,
            key=jax.random.key(1),
        )
        for head, gain in ((agent.policy_head, policy_gain), (agent.value_head, value_gain)):
            w = np.asarray(head.layers[-1].weight).T
            np.testing.assert_allclose(np.linalg.norm(w, axis=1), gain, rtol=1e-5)
            np.testing.assert_allclose(w @ w.T, gain**2 * np.eye(w.shape[0]), atol=1e-5)
            assert not np.any(np.asarray(head.layers[-1].bias))


def test_paper_agent_heads_start_skewed():
    """The paper's heads (gain √2) start from a policy far from uniform on some inputs,
    the PPO default (0.01) from a near-uniform one: the point of `paper_agent`."""
    from relit_eqx.rl.presets import paper_agent

    cfg = paper_agent()
    assert cfg.head_hidden == (128,) and cfg.policy_gain == pytest.approx(math.sqrt(2))
    model = get_model("gru")(16, d_model=32, n_layers=1, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(3), (64, 32))
    entropies = {}
    for gain in (0.01, cfg.policy_gain):
        agent = Agent(
            model, Discrete(4), hidden=cfg.head_hidden, policy_gain=gain, key=jax.random.key(1)
        )
        logits = jax.vmap(agent.policy_head)(x)
        entropies[gain] = np.asarray(Categorical(logits).entropy())
    np.testing.assert_allclose(entropies[0.01], math.log(4), atol=1e-3)
    assert entropies[cfg.policy_gain].min() < math.log(4) - 0.05


def test_continuous_ppo_update_runs():
    """A synthetic rollout for a Gaussian policy: one PPO update moves the parameters
    and reports finite losses."""
    agent = _tiny_agent(Box((2,)))
    import optax

    T, N = 6, 4
    key = jax.random.key(5)
    obs = jax.random.normal(key, (T, N, 5))
    resets = jnp.zeros((T, N), bool).at[0].set(True)
    starts = jax.vmap(lambda _: agent.init_state())(jnp.arange(N))
    dist, values, _ = jax.vmap(agent, in_axes=(1, 1, 0), out_axes=(1, 1, 0))(obs, resets, starts)
    actions = dist.sample(jax.random.key(6))
    zeros = jnp.zeros((T, N))
    traj = Transition(
        obs=obs, reset=resets, action=actions, log_prob=dist.log_prob(actions), value=values,
        reward=zeros, terminated=zeros.astype(bool), truncated=zeros.astype(bool),
        final_value=zeros, episode_done=zeros.astype(bool), episode_return=zeros,
        episode_length=zeros.astype(jnp.int32), episode_success=zeros.astype(bool),
    )  # fmt: skip
    adv = jax.random.normal(jax.random.key(7), (T, N))
    opt = optax.adam(1e-2)
    opt_state = opt.init(eqx.filter(agent, eqx.is_inexact_array))
    cfg = tiny_config().algo
    new, _, metrics = eqx.filter_jit(ppo_update)(
        agent, opt, opt_state, traj, starts, adv, adv + values, jax.random.key(8), cfg
    )
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not np.allclose(new.log_std, agent.log_std)


def test_rollout_reset_flags_and_truncation_bootstrap():
    cfg = tiny_config()
    trainer = Trainer(cfg)
    runner = trainer.init()
    agent = trainer.agent(runner)
    params = TMazeParams(max_steps_in_episode=5)

    @jax.jit
    def roll(carry, key):
        return collect_rollout(agent, trainer.env, params, carry, key, 24)

    carry, traj, last_value = roll(runner.rollout, jax.random.key(0))
    reset = np.asarray(traj.reset)
    done = np.asarray(traj.terminated | traj.truncated)
    assert reset[0].all()  # the first step of training starts episodes
    np.testing.assert_array_equal(reset[1:], done[:-1])  # the step after `done`
    np.testing.assert_array_equal(np.asarray(carry.reset), done[-1])
    truncated = np.asarray(traj.truncated)
    assert truncated.any()  # a random policy rarely finishes L=4 in 5 steps
    final = np.asarray(traj.final_value)
    assert (final[~truncated] == 0).all() and (final[truncated] != 0).all()
    assert last_value.shape == (cfg.algo.num_envs,)
    # Episode statistics: lengths never exceed the limit; returns match the rewards.
    ed = np.asarray(traj.episode_done)
    np.testing.assert_array_equal(ed, done)
    assert (np.asarray(traj.episode_length)[ed] <= 5).all()


# ---------------------------------------------------------------------- end to end


def test_end_to_end_deterministic(tmp_path):
    cfg = tiny_config()
    a = run_training(cfg, tmp_path / "a", progress=False)
    run_training(cfg, tmp_path / "b", progress=False)
    run_training(dataclasses.replace(cfg, seed=1), tmp_path / "c", progress=False)
    assert a.complete and a.updates == 6 and a.env_steps == 384
    text_a = (tmp_path / "a" / "metrics.csv").read_text()
    assert text_a == (tmp_path / "b" / "metrics.csv").read_text()
    assert text_a != (tmp_path / "c" / "metrics.csv").read_text()
    assert (tmp_path / "a" / "checkpoint.eqx").read_bytes() == (
        tmp_path / "b" / "checkpoint.eqx"
    ).read_bytes()
    m = read_metrics(tmp_path / "a" / "metrics.csv")
    np.testing.assert_array_equal(m["update"], np.arange(1, 7))
    np.testing.assert_array_equal(m["env_steps"], 64 * np.arange(1, 7))
    assert np.isfinite(m["loss"]).all() and (m["episodes"] > 0).all()
    assert (tmp_path / "a" / "learning_curve.png").stat().st_size > 0


def test_resume_is_bit_identical(tmp_path):
    cfg = tiny_config()
    full = run_training(cfg, tmp_path / "full", progress=False)
    part = run_training(cfg, tmp_path / "part", stop_after=128, progress=False)
    assert not part.complete and part.updates == 2
    rest = run_training(cfg, tmp_path / "part", resume=True, progress=False)
    assert rest.complete and rest.updates == full.updates
    assert (tmp_path / "part" / "metrics.csv").read_text() == (
        tmp_path / "full" / "metrics.csv"
    ).read_text()
    assert (tmp_path / "part" / "checkpoint.eqx").read_bytes() == (
        tmp_path / "full" / "checkpoint.eqx"
    ).read_bytes()


@pytest.mark.slow
def test_gru_learns_short_tmaze(tmp_path):
    """The GRU preset (PPO, T-Maze with a 6-cell corridor: needs memory) reaches more than
    90% success; a memoryless agent cannot beat 50%."""
    cfg = dataclasses.replace(get_preset("tmaze-gru"), total_steps=60_000)
    assert cfg.env.corridor_length == 6
    result = run_training(cfg, tmp_path / "run", progress=False)
    m = read_metrics(result.metrics_path)
    tail = slice(-max(1, len(m["update"]) // 10), None)
    w = m["episodes"][tail]
    success = float(np.sum(m["success_rate"][tail] * w) / np.sum(w))
    assert success > 0.9, success
