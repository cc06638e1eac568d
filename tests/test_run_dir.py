"""Run directories through the command line: what can be resumed, what is refused (exit
code 2, a message naming the problem, nothing written), and what is repaired."""

import json

import jax.numpy as jnp
import pytest
from cli_helpers import train_fails
from test_ppo import TINY_ARGS, tiny_config

import relit_eqx.cli.train as train_cli
from relit_eqx.cli import main
from relit_eqx.rl.run_dir import (
    METRIC_COLUMNS,
    MetricsWriter,
    read_metrics,
    save_checkpoint,
    save_config,
)
from relit_eqx.rl.trainer import Trainer


class Started(Exception):
    pass


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch):
    """Training never starts: reaching it raises `Started` (good input) instead."""

    def started(*args, **kwargs):
        raise Started

    monkeypatch.setattr(train_cli, "run_training", started)
    monkeypatch.setattr(Trainer, "init", started)
    monkeypatch.setattr(Trainer, "compile", started)


def _run(tmp_path, update=None, rows=None):
    """A run directory of the tiny configuration: its config, optionally a checkpoint
    at `update` and a metrics file of `rows` (text lines after the header)."""
    run = tmp_path / "r"
    run.mkdir()
    save_config(run, tiny_config())
    if update is not None:
        save_checkpoint(run, {"a": jnp.zeros(3), "update": jnp.int32(update)})
    if rows is not None:
        text = ",".join(METRIC_COLUMNS) + "\r\n" + "".join(r + "\r\n" for r in rows)
        (run / "metrics.csv").write_text(text)
    return run


def _row(u):
    return ",".join([str(u), str(64 * u), "1"] + ["0.5"] * (len(METRIC_COLUMNS) - 3))


def test_a_run_stopped_before_its_first_checkpoint_resumes(tmp_path):
    run = _run(tmp_path)
    with pytest.raises(Started):
        main(["train", "--resume", str(run)])


def test_out_naming_a_stopped_run_points_to_resume(capsys, tmp_path):
    run = _run(tmp_path)
    train_fails(
        capsys, ["--preset", "tmaze-gru", "--out", str(run)], f"--resume {run}", "first checkpoint"
    )


def test_out_that_cannot_be_a_run_directory(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    base = ["--preset", "tmaze-gru", *TINY_ARGS]
    train_fails(capsys, [*base, "--out", str(f)], "exists and is not a directory")
    train_fails(capsys, [*base, "--out", str(f / "sub")], "is not a directory")
    assert f.read_text() == "x"


def test_damaged_config_and_unknown_keys(capsys, tmp_path):
    run = _run(tmp_path, update=2, rows=[_row(1), _row(2)])
    text = (run / "config.json").read_text()
    (run / "config.json").write_text(text[: len(text) // 2])
    train_fails(capsys, ["--resume", str(run)], "config.json is damaged")
    d = json.loads(text)
    d["algo"]["learning_rate"] = 1.0
    (run / "config.json").write_text(json.dumps(d))
    train_fails(capsys, ["--resume", str(run)], "unknown field algo.'learning_rate'")


@pytest.mark.parametrize("data", [b"", b"\x93NUMPY", bytes(range(256)) * 3])
def test_damaged_checkpoint(capsys, tmp_path, data):
    run = _run(tmp_path, rows=[])
    (run / "checkpoint.eqx").write_bytes(data)
    train_fails(capsys, ["--resume", str(run)], "checkpoint.eqx is damaged")
    assert (run / "checkpoint.eqx").read_bytes() == data


def test_total_steps_below_what_was_done(capsys, tmp_path):
    run = _run(tmp_path, update=4, rows=[_row(u) for u in range(1, 5)])
    before = (run / "config.json").read_text()
    train_fails(capsys, ["--resume", str(run), "--total-steps", "128"], "below the 256 env steps")
    assert (run / "config.json").read_text() == before


def test_metrics_missing_rows_are_refused(capsys, tmp_path):
    run = _run(tmp_path, update=4, rows=[_row(1), _row(2), _row(4)])
    train_fails(
        capsys, ["--resume", str(run)], "metrics.csv does not agree", "updates 3…3 are missing"
    )


def test_metrics_agree_with_the_checkpoint_on_resume(tmp_path):
    """Rows past the checkpoint and a partial last row (a write cut short) go."""
    run = _run(tmp_path, update=2, rows=[_row(1), _row(2), _row(3), _row(4)[:7]])
    with pytest.raises(Started):
        main(["train", "--resume", str(run)])
    MetricsWriter(run / "metrics.csv", keep_updates=2)
    m = read_metrics(run / "metrics.csv")
    assert list(m["update"]) == [1, 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model-kwargs", '{"d_modle": 16}'], "no model of the sweep (gru) takes 'd_modle'"),
        (["--algo-kwargs", '{"lr": "fast"}'], "algo.lr must be a number; got 'fast'"),
    ],
)
def test_sweep_typos_and_wrong_types(tmp_path, capsys, args, message):
    rc = main(["sweep", "--models", "gru", "--lengths", "4", "--out", str(tmp_path / "s"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert not (tmp_path / "s").exists()
