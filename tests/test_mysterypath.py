"""memory-gym's Mystery Path through the host adapter and the `mysterypath-arelit` preset.

memory-gym 1.0.2 pins Gymnasium 0.29.0, which gymnax excludes, so these tests run in an
environment of their own (`pip install -e '.[mysterypath]' pytest hypothesis`, then
`pytest -m mysterypath tests/test_mysterypath.py`; `make test` does both); the default
run deselects them (the `mysterypath` marker). Without memory-gym they fail, not skip.
"""

import numpy as np
import pytest

from relit_eqx.cli import main
from relit_eqx.envs import Discrete, make_env
from relit_eqx.rl import Trainer, get_preset, read_metrics

pytestmark = pytest.mark.mysterypath


def test_mysterypath_preset_builds_and_steps():
    """The preset's environment: 84x84x3 images flattened and scaled to [0, 1],
    `MultiDiscrete([3, 3])` as 9 joint actions, episodes ending with `success`."""
    import gymnasium as gym
    import memory_gym  # noqa: F401

    cfg = get_preset("mysterypath-arelit")
    a = cfg.algo
    assert (a.num_envs, a.num_steps, a.num_minibatches, a.update_epochs, a.lr) == (
        128, 128, 8, 3, 2.5e-4,
    )  # fmt: skip
    Trainer(cfg).close()
    env, _ = make_env(cfg.env, num_envs=2, seed=cfg.seed)
    reference = gym.make("MysteryPath-v0")
    try:
        assert env.observation_shape == (84 * 84 * 3,) and env.action_space() == Discrete(9)
        obs = env.reset()
        ref_obs, _ = reference.reset(seed=cfg.seed + 1)  # environment i is seeded seed + i
        assert obs.dtype == np.float32 and 0 <= obs.min() and obs.max() <= 1
        np.testing.assert_allclose(obs[1], ref_obs.reshape(-1) / np.float32(255), rtol=1e-6)
        rng = np.random.default_rng(0)
        ended = 0
        for _ in range(600):  # memory-gym ends an episode after 512 steps at the latest
            joint = rng.integers(0, 9, 2)
            out = env.step(joint)
            ref = reference.step(np.array(np.unravel_index(joint[1], (3, 3))))
            assert out.reward[1] == np.float32(ref[1])
            if out.terminated[1] or out.truncated[1]:
                np.testing.assert_allclose(
                    out.final_obs[1], ref[0].reshape(-1) / np.float32(255), rtol=1e-6
                )
                reference.reset()
            else:
                np.testing.assert_allclose(out.obs[1], ref[0].reshape(-1) / np.float32(255))
            ended += int((out.terminated | out.truncated).sum())
        assert ended >= 2 and env.has_success
    finally:
        env.close()
        reference.close()


def test_mysterypath_trains_a_few_hundred_steps(tmp_path):
    """The preset trains from the CLI (a tiny AReLiT, 2 environments, 512 steps)."""
    out = tmp_path / "run"
    args = [
        "train", "--preset", "mysterypath-arelit",
        "--model.kwargs.d-model", "8", "--model.kwargs.n-layers", "1",
        "--model.kwargs.n-heads", "1", "--model.kwargs.d-head", "4",
        "--model.kwargs.d-ffn", "8", "--model.kwargs.eta", "2", "--model.kwargs.r", "2",
        "--agent.head-hidden", "8",
        "--algo.num-envs", "2", "--algo.num-steps", "64", "--algo.num-minibatches", "2",
        "--algo.update-epochs", "1", "--total-steps", "512", "--log-interval", "1",
        "--no-progress", "--no-compile-cache", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    m = read_metrics(out / "metrics.csv")
    np.testing.assert_array_equal(m["update"], [1, 2, 3, 4])
    assert np.isfinite(m["loss"]).all()
