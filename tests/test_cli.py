"""The `relit-eqx` command line, run in-process on the tiny configuration of test_ppo."""

import dataclasses
import json

import pytest
from test_ppo import TINY_ARGS, tiny_config

from relit_eqx.cli import COMMANDS, main
from relit_eqx.cli.train import parse_overrides
from relit_eqx.rl import DEFAULT_PRESET, PRESETS, get_preset
from relit_eqx.rl.config import ModelConfig, config_from_dict

RUN_ARGS = ["--no-progress", "--no-compile-cache"]


def _train(*args):
    return main(["train", "--preset", "tmaze-gru", *TINY_ARGS, *RUN_ARGS, *args])


def test_overrides_give_the_tiny_config():
    assert parse_overrides(get_preset("tmaze-gru"), TINY_ARGS) == tiny_config()
    cfg = parse_overrides(get_preset("tmaze-gru"), ["--seed", "3", "--algo.lr", "3e-4"])
    assert cfg.seed == 3 and cfg.algo.lr == 3e-4


def test_train_writes_metrics_plot_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--out", str(out)) == 0
    for name in ("metrics.csv", "learning_curve.png", "checkpoint.eqx", "config.json"):
        assert (out / name).stat().st_size > 0, name
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("update,env_steps,episodes,mean_return,success_rate")
    assert len(lines) == 1 + 6
    assert config_from_dict(json.loads((out / "config.json").read_text())) == tiny_config()
    stdout = capsys.readouterr().out
    assert str(out / "metrics.csv") in stdout and str(out / "learning_curve.png") in stdout


def test_cli_resume_is_bit_identical(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert _train("--out", str(full)) == 0
    assert _train("--out", str(part), "--stop-after", "200") == 0
    assert len((part / "metrics.csv").read_text().splitlines()) == 1 + 4
    assert main(["train", "--resume", str(part), *RUN_ARGS]) == 0
    assert (part / "metrics.csv").read_text() == (full / "metrics.csv").read_text()
    assert (part / "checkpoint.eqx").read_bytes() == (full / "checkpoint.eqx").read_bytes()
    # Resuming a finished run does nothing more.
    assert main(["train", "--resume", str(part), *RUN_ARGS]) == 0
    assert (part / "metrics.csv").read_text() == (full / "metrics.csv").read_text()


def test_usage_and_subcommands(capsys):
    assert "train" in COMMANDS
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert main(["train", "--help"]) == 0
    help_text = capsys.readouterr().out
    for name in PRESETS:
        assert name in help_text
    assert "--total-steps" in help_text and "--algo.lr" in help_text


def test_presets():
    assert DEFAULT_PRESET == "tmaze-arelit"
    assert {"tmaze-arelit", "tmaze-relit", "tmaze-gtrxl", "tmaze-gru", "tmaze-lstm"} <= set(PRESETS)
    paper = {"d_model": 128, "n_layers": 4, "n_heads": 4, "d_head": 64, "d_ffn": 128, "eta": 4}
    assert get_preset("tmaze-arelit").model.kwargs == {**paper, "r": 2}
    assert get_preset("tmaze-relit").model.kwargs == paper
    gtrxl = {k: v for k, v in paper.items() if k != "eta"}  # no feature map in softmax attention
    assert get_preset("tmaze-gtrxl").model.kwargs == {**gtrxl, "memory_length": 128}
    for rnn in ("gru", "lstm"):
        cfg = get_preset(f"tmaze-{rnn}")
        assert cfg.model.name == rnn and cfg.model.kwargs == {"d_model": 128, "n_layers": 1}
    # A copy: changing it leaves the preset alone.
    get_preset("tmaze-gru").model.kwargs["d_model"] = 1
    assert PRESETS["tmaze-gru"].model.kwargs["d_model"] == 128


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_models_build(name):
    """Presets whose model is registered build (abstractly, nothing compiled)."""
    from relit_eqx.models import model_names
    from relit_eqx.rl import Trainer

    cfg = get_preset(name)
    if cfg.model.name not in model_names():
        pytest.skip(f"model {cfg.model.name!r} not registered yet")
    Trainer(cfg).close()


def test_paper_a2c():
    from relit_eqx.rl import paper_a2c
    from relit_eqx.rl.config import ConfigError

    a = paper_a2c()
    assert (a.num_envs, a.num_steps, a.update_epochs, a.num_minibatches) == (8, 256, 1, 1)
    assert (a.lr, a.ent_coef, a.max_grad_norm, a.gamma, a.gae_lambda, a.vf_coef) == (
        1e-4,
        1e-3,
        0.5,
        0.99,
        0.95,
        1.0,
    )
    assert paper_a2c(lr=3e-4).lr == 3e-4
    # The authors' config/tmaze/*.yaml: learning_rate and entropy_coef per model.
    assert (paper_a2c("gru").lr, paper_a2c("gru").ent_coef) == (5e-4, 1e-2)
    assert (paper_a2c("gtrxl").lr, paper_a2c("gtrxl").ent_coef) == (5e-4, 1e-2)
    assert (paper_a2c("lstm").lr, paper_a2c("lstm").ent_coef) == (1e-4, 1e-3)
    assert paper_a2c("gru", lr=1e-3).lr == 1e-3
    with pytest.raises(ConfigError, match="no paper settings for model 'mlp'"):
        paper_a2c("mlp")


def test_sweep_cells_use_the_authors_settings_per_model():
    from relit_eqx.rl.sweep import Cell, cell_config

    gru = cell_config(Cell("gru", 120, 0))
    assert gru.model.kwargs["d_model"] == 680 and gru.algo.lr == 5e-4
    assert cell_config(Cell("lstm", 120, 0)).model.kwargs["d_model"] == 600
    arelit = cell_config(Cell("arelit", 120, 0))
    assert arelit.model.kwargs["d_model"] == 128 and arelit.algo.vf_coef == 1.0
    assert arelit.model.kwargs["authors_init"] is True
    assert (
        "authors_init" not in cell_config(Cell("arelit", 120, 0), algo="a2c-uniform").model.kwargs
    )
    # The earlier sweep's settings stay reproducible.
    old = cell_config(Cell("gru", 120, 0), algo="a2c-uniform")
    assert old.model.kwargs["d_model"] == 128
    assert (old.algo.lr, old.algo.ent_coef, old.algo.vf_coef) == (1e-4, 1e-3, 0.5)
    # Explicit overrides win over the per-model widths.
    assert cell_config(Cell("gru", 4, 0), model_kwargs={"d_model": 8}).model.kwargs["d_model"] == 8
    faster = cell_config(Cell("arelit", 120, 0), algo_kwargs={"lr": 5e-4}).algo
    assert faster == dataclasses.replace(arelit.algo, lr=5e-4)


def test_metrics_rows_past_the_checkpoint_are_dropped_on_resume(tmp_path):
    from relit_eqx.rl.run_dir import METRIC_COLUMNS, MetricsWriter, read_metrics

    path = tmp_path / "metrics.csv"
    w = MetricsWriter(path)
    w.append([dict.fromkeys(METRIC_COLUMNS, 0.5) | {"update": u} for u in range(1, 7)])
    MetricsWriter(path, keep_updates=4)
    assert read_metrics(path)["update"].tolist() == [1, 2, 3, 4]


def test_sigterm_checkpoints_and_resumes(tmp_path, monkeypatch, capsys):
    """SIGTERM (what job schedulers send) stops a run like SIGINT: the chunk in flight
    is finished and checkpointed, the exit code is 128 + 15, and `--resume` completes it."""
    import os
    import signal

    import relit_eqx.rl.run as run_module

    real = run_module.MetricsWriter.append

    def append_then_terminate(self, rows):
        real(self, rows)
        os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(run_module.MetricsWriter, "append", append_then_terminate)
        assert _train("--out", str(out)) == 128 + signal.SIGTERM
    assert "continue with: relit-eqx train --resume" in capsys.readouterr().err
    assert (out / "checkpoint.eqx").exists()
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2  # one chunk
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is undone
    assert main(["train", "--resume", str(out), *RUN_ARGS]) == 0
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 6


def test_a_signal_before_a_chunks_rows_are_written_checkpoints_the_chunk_before(
    tmp_path, monkeypatch, capsys
):
    """A signal that lands after a chunk has run but before its rows are written: the
    checkpoint is the last chunk whose rows are in metrics.csv, so `--resume` goes on
    (a checkpoint ahead of the metrics would be refused as missing rows)."""
    import os
    import signal

    import relit_eqx.rl.run as run_module

    real = run_module.MetricsWriter.append
    calls = []

    def terminate_before_the_second(self, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        real(self, rows)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(run_module.MetricsWriter, "append", terminate_before_the_second)
        assert _train("--out", str(out)) == 128 + signal.SIGTERM
    capsys.readouterr()
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2  # the first chunk
    assert main(["train", "--resume", str(out), *RUN_ARGS]) == 0, capsys.readouterr().err
    resumed = (out / "metrics.csv").read_text()
    again = tmp_path / "again"
    assert _train("--out", str(again)) == 0
    assert resumed == (again / "metrics.csv").read_text()  # as if never stopped


def test_naming_another_model_starts_from_that_models_sizes():
    """`--model.name X` on a preset of another model gives X its own sizes (memax's
    models take none of AReLiT's arguments); `--model.kwargs.*` then apply on top."""
    base = get_preset("tmaze-arelit")
    memax = parse_overrides(base, ["--model.name", "memax-lru"])
    assert memax.model == ModelConfig(name="memax-lru", kwargs={"d_model": 128, "n_layers": 2})
    gru = parse_overrides(base, ["--model.name", "gru", "--model.kwargs.d-model", "16"])
    assert gru.model.kwargs == {"d_model": 16, "n_layers": 1}
    assert parse_overrides(base, ["--model.name=arelit"]) == base


def test_missing_rl_extra_names_the_package_and_the_extra():
    from relit_eqx.cli.common import missing_rl_extra

    assert missing_rl_extra("json") is None
    one = missing_rl_extra("json", "no_such_module_xyz")
    assert one is not None
    assert "package 'no_such_module_xyz' of the 'rl' extra is not installed" in one
    assert "pip install 'relit_eqx[rl]'" in one
    two = missing_rl_extra("no_such_module_a", "no_such_module_b")
    assert two is not None and "packages 'no_such_module_a', 'no_such_module_b'" in two
    assert "are not installed; install them" in two
