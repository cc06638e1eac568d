"""Data parallelism over devices (`jax.sharding`): two host devices give the one-device
result, up to floating-point reassociation, for the same global batch.

Runs in a subprocess, since the device count (XLA_FLAGS) is fixed when JAX starts."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys

    import jax
    import numpy as np
    from test_ppo import tiny_config

    from relit_eqx.rl import Trainer, read_metrics, run_training
    from relit_eqx.rl.run_dir import load_checkpoint

    assert jax.device_count() == 2, jax.devices()
    out = sys.argv[1]
    cfg = tiny_config()
    runner = Trainer(cfg, devices=2).init()
    # The environment axis is split over both devices; parameters are replicated.
    obs = runner.rollout.obs
    assert len(obs.sharding.device_set) == 2 and not obs.sharding.is_fully_replicated
    assert {s.data.shape[0] for s in obs.addressable_shards} == {cfg.algo.num_envs // 2}
    leaf = jax.tree_util.tree_leaves(runner.params)[0]
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 2

    one = run_training(cfg, f"{out}/one", progress=False, devices=1)
    # Two devices for the first chunks, then resumed on one: the checkpoint moves freely.
    run_training(cfg, f"{out}/two", progress=False, devices=2, stop_after=256)
    two = run_training(cfg, f"{out}/two", progress=False, devices=1, resume=True)
    assert one.updates == two.updates == 6
    a, b = read_metrics(one.metrics_path), read_metrics(two.metrics_path)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=1e-6, err_msg=k)
    like = Trainer(cfg).init()
    pa, pb = (load_checkpoint(r.run_dir, like).params for r in (one, two))
    for x, y in zip(jax.tree_util.tree_leaves(pa), jax.tree_util.tree_leaves(pb)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    print("OK")
    """
)


def test_two_devices_match_one(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["JAX_PLATFORMS"] = "cpu"
    tests = os.path.dirname(__file__)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tests, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK")
