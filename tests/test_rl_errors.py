"""Bad input to `relit-eqx train`: a message on stderr and exit code 2, before anything
is compiled or written."""

import pytest
from cli_helpers import train_fails
from test_ppo import TINY_ARGS

import relit_eqx.cli.train as train_module
from relit_eqx.rl import ConfigError
from relit_eqx.rl.trainer import Trainer


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch):
    """Fail loudly if a bad input gets as far as building or compiling anything."""

    def boom(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(train_module, "run_training", boom)
    monkeypatch.setattr(Trainer, "init", boom)
    monkeypatch.setattr(Trainer, "compile", boom)


def test_unknown_preset(capsys, tmp_path):
    train_fails(
        capsys,
        ["--preset", "nope", "--out", str(tmp_path / "r")],
        "unknown preset 'nope'",
        "tmaze-arelit",
    )
    assert not (tmp_path / "r").exists()


def test_unknown_model(capsys, tmp_path):
    args = [
        "--preset",
        "tmaze-gru",
        *TINY_ARGS,
        "--model.name",
        "nope",
        "--out",
        str(tmp_path / "r"),
    ]
    train_fails(capsys, args, "model.name", "unknown model 'nope'", "gru")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "override, field",
    [
        (["--algo.num-envs", "0"], "algo.num_envs must be positive"),
        (["--algo.num-steps", "-4"], "algo.num_steps must be positive"),
        (["--model.kwargs.d-model", "0"], "model.kwargs.d_model must be positive"),
        (["--env.corridor-length", "0"], "env.corridor_length must be positive"),
        (["--agent.head-hidden", "8", "0"], "agent.head_hidden[1] must be positive"),
        (["--total-steps", "0"], "total_steps must be positive"),
        (["--total-steps", "10"], "total_steps (10) is less than one update"),
        (["--log-interval", "0"], "log_interval must be positive"),
        (["--algo.lr", "-1"], "algo.lr must be positive"),
        (["--agent.policy-gain", "0"], "agent.policy_gain must be a positive number"),
    ],
)
def test_non_positive_sizes(capsys, tmp_path, override, field):
    train_fails(
        capsys,
        ["--preset", "tmaze-gru", *TINY_ARGS, *override, "--out", str(tmp_path / "r")],
        field,
    )
    assert not (tmp_path / "r").exists()


def test_minibatches_must_divide_envs(capsys, tmp_path):
    args = [
        "--preset",
        "tmaze-gru",
        *TINY_ARGS,
        "--algo.num-envs",
        "6",
        "--algo.num-minibatches",
        "4",
    ]
    train_fails(
        capsys,
        [*args, "--out", str(tmp_path / "r")],
        "algo.num_envs (6)",
        "algo.num_minibatches (4)",
    )
    assert not (tmp_path / "r").exists()


def test_out_dir_holding_another_run(capsys, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text("another run")
    (out / "metrics.csv").write_text("update\n1\n")
    train_fails(
        capsys,
        ["--preset", "tmaze-gru", *TINY_ARGS, "--out", str(out)],
        "holds another run",
        "--resume",
    )
    assert (out / "config.json").read_text() == "another run"
    assert (out / "metrics.csv").read_text() == "update\n1\n"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.csv"]


def test_resume_errors(capsys, tmp_path):
    train_fails(capsys, ["--resume", str(tmp_path / "missing")], "no run to resume")
    assert not (tmp_path / "missing").exists()


def test_bad_value_type(capsys):
    train_fails(capsys, ["--preset", "tmaze-gru", "--algo.num-envs", "many"], "--algo.num-envs")


def test_negative_stop_after(capsys):
    train_fails(
        capsys, ["--preset", "tmaze-gru", "--stop-after", "0"], "--stop-after must be positive"
    )


def test_resume_cannot_change_the_config(capsys, tmp_path):
    from test_ppo import tiny_config

    from relit_eqx.rl.run_dir import save_config

    run = tmp_path / "r"
    run.mkdir()
    save_config(run, tiny_config())
    (run / "checkpoint.eqx").write_bytes(b"")
    train_fails(capsys, ["--resume", str(run), "--algo.lr", "0.5"], "cannot change algo.lr")
    train_fails(capsys, ["--resume", str(run), "--preset", "tmaze-gru"], "--preset")
    train_fails(
        capsys, ["--resume", str(run), "--out", str(tmp_path / "x")], "different directories"
    )
    assert (run / "checkpoint.eqx").read_bytes() == b""


def test_unknown_environment(capsys, tmp_path):
    out = str(tmp_path / "r")
    train_fails(capsys, ["--env", "nope", "--out", out], "env.name: unknown environment 'nope'")
    train_fails(capsys, ["--env.name", "atari:Pong", "--out", out], "gymnax:ID", "gymnasium:ID")
    train_fails(
        capsys, ["--env", "craftax:Craftax-Nope-v1", "--out", out], "Craftax-Classic-Symbolic-v1"
    )
    train_fails(
        capsys, ["--env", "tmaze", "--env.name", "tmaze", "--out", out], "--env and --env.name"
    )
    assert not (tmp_path / "r").exists()


def test_unknown_engine_ids(capsys, tmp_path):
    out = str(tmp_path / "r")
    pytest.importorskip("gymnasium")
    train_fails(
        capsys, ["--env", "gymnasium:CartPol-v1", "--out", out], "env.name", "'CartPole-v1'"
    )
    train_fails(
        capsys,
        ["--preset", "tmaze-gru", "--env", "gymnasium:Blackjack-v1", "--out", out],
        "unsupported Gymnasium observation space",
    )
    pytest.importorskip("gymnax")
    train_fails(
        capsys,
        ["--env", "gymnax:Nope-v1", "--out", out],
        "env.name: unknown gymnax id 'Nope-v1'",
        "MemoryChain-bsuite",
    )
    train_fails(
        capsys,
        ["--env", "gymnax:CartPole-v1", "--env.params", "nope", "1", "--out", out],
        "env.params.nope: CartPole-v1 has no parameter 'nope'",
    )
    assert not (tmp_path / "r").exists()


def test_missing_optional_package(capsys, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "gymnax", None)  # `import gymnax` raises ImportError
    train_fails(
        capsys,
        ["--env", "gymnax:CartPole-v1", "--out", str(tmp_path / "r")],
        "env.name 'gymnax:CartPole-v1'",
        "pip install 'relit_eqx[gymnax]'",
    )


def test_bad_device_counts(capsys, tmp_path):
    import jax

    base = ["--preset", "tmaze-gru", *TINY_ARGS, "--out", str(tmp_path / "r")]
    train_fails(capsys, [*base, "--devices", "0"], "--devices must be positive")
    train_fails(
        capsys, [*base, "--devices", "3"], "algo.num_envs (4) must be divisible by --devices (3)"
    )
    n = jax.device_count() * 4
    train_fails(
        capsys,
        [*base, "--algo.num-envs", str(n), "--devices", str(n)],
        f"--devices {n}: this machine has {jax.device_count()}",
    )
    train_fails(capsys, [*base, "--coordinator", "localhost:1234"], "need --distributed")
    assert not (tmp_path / "r").exists()


def test_checkpoint_that_does_not_fit(tmp_path):
    """A checkpoint whose arrays do not fit the run (e.g. weights stored [d_out, d_in] by
    a version before `nn.Dense`) is refused with a message, not a traceback or a silent
    misread."""
    import jax.numpy as jnp

    from relit_eqx.rl.run_dir import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path, {"w": jnp.zeros((16, 128)), "b": jnp.zeros(128)})
    loaded = load_checkpoint(tmp_path, {"w": jnp.ones((16, 128)), "b": jnp.ones(128)})
    assert not jnp.any(loaded["w"])
    with pytest.raises(ConfigError, match="does not fit this run's model"):
        load_checkpoint(tmp_path, {"w": jnp.zeros((128, 16)), "b": jnp.zeros(128)})
