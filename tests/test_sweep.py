"""`relit-eqx sweep`: a tiny sweep that stops, resumes, skips finished work and aggregates."""

import csv
import json

import numpy as np
import pytest

from relit_eqx.cli import main
from relit_eqx.cli import sweep as cli_sweep
from relit_eqx.rl import sweep
from relit_eqx.rl.sweep import CSV_COLUMNS

# Two cells of one tiny configuration (the seed is not compiled in: one compilation).
TINY = [
    "--models", "gru", "--lengths", "4", "--seeds", "0,1", "--algo", "a2c",
    "--total-steps", "6144", "--log-interval", "1", "--model-kwargs", '{"d_model": 8}',
    "--no-progress",
]  # fmt: skip


def _csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_sweep_stops_resumes_and_aggregates(tmp_path):
    out = tmp_path / "sweep"
    # A spent budget stops each run after its first chunk (one update of 8 x 256 steps).
    assert main(["sweep", "--out", str(out), *TINY, "--budget-minutes", "1e-6"]) == 0
    cells = [out / "gru-L4-s0", out / "gru-L4-s1"]
    first_rows = {}
    for d in cells:
        assert (d / "checkpoint.eqx").exists()
        lines = (d / "metrics.csv").read_text().splitlines()
        assert len(lines) == 2  # header + one update
        first_rows[d] = lines[1]
    fields, rows = _csv(out / "tmaze.csv")
    assert [r["env_steps"] for r in rows] == ["2048", "2048"]

    # Without a budget the same command continues each run from its checkpoint.
    assert main(["sweep", "--out", str(out), *TINY]) == 0
    for d in cells:
        lines = (d / "metrics.csv").read_text().splitlines()
        assert len(lines) == 4
        assert lines[1] == first_rows[d]  # the first update was not redone
    stamps = {p: p.stat().st_mtime_ns for d in cells for p in d.iterdir()}

    # Once finished, a rerun trains nothing and rewrites no run file.
    assert main(["sweep", "--out", str(out), *TINY]) == 0
    assert {p: p.stat().st_mtime_ns for d in cells for p in d.iterdir()} == stamps

    fields, rows = _csv(out / "tmaze.csv")
    assert tuple(fields) == CSV_COLUMNS
    assert [(r["model"], r["corridor_length"], r["seed"]) for r in rows] == [
        ("gru", "4", "0"),
        ("gru", "4", "1"),
    ]
    for r in rows:
        assert r["env_steps"] == "6144"
        assert 0 <= float(r["final_success_rate"]) <= 1
        assert float(r["final_return"]) == float(r["final_return"])  # not NaN
        assert float(r["wall_seconds"]) > 0
    png = out / "tmaze-L4.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Aggregation alone, elsewhere, gives the same table.
    results = tmp_path / "results"
    assert (
        main(["sweep", "--out", str(out), *TINY, "--aggregate-only", "--results", str(results)])
        == 0
    )
    assert _csv(results / "tmaze.csv") == (fields, rows)
    assert (results / "tmaze-L4.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "gru,transformer"], "unknown model 'transformer'"),
        (["--lengths", "40,0"], "corridor lengths must be positive; got 0"),
        (["--lengths", "40,x"], "comma-separated integers"),
        (["--seeds", ""], "--seeds is empty"),
        (["--total-steps", "-5"], "--total-steps must be positive"),
        (["--budget-minutes", "0"], "--budget-minutes must be positive"),
        (["--model-kwargs", "[1]"], "must be a JSON object"),
        (["--algo-kwargs", "[1]"], "--algo-kwargs must be a JSON object"),
        (["--algo-kwargs", "{lr: 1}"], "--algo-kwargs is not JSON"),
        (["--algo-kwargs", '{"learning_rate": 1e-3}'], "no field 'learning_rate'"),
        (["--algo-kwargs", '{"lr": -1.0}'], "algo.lr must be positive"),
        (["--task", "memorychain", "--run-to-end"], "--run-to-end is for --task tmaze"),
    ],
)
def test_sweep_bad_input(tmp_path, capsys, args, message):
    """Bad input exits 2 with the reason, before anything is written."""
    assert main(["sweep", "--out", str(tmp_path / "s"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _metrics(steps, episodes, success, length):
    return {
        "env_steps": np.asarray(steps, dtype=np.int64),
        "episodes": np.asarray(episodes, dtype=np.int64),
        "success_rate": np.asarray(success, dtype=np.float64),
        "mean_length": np.asarray(length, dtype=np.float64),
    }


def test_tmaze_stop_rule():
    """The rule, on hand-made metrics: never reached by 1.5M, held 95% over 0.5M, or
    neither (the run goes on)."""
    per = 100_000  # env steps per update
    steps = np.arange(1, 21) * per  # 0.1M ... 2.0M
    n = len(steps)
    timeouts = _metrics(steps, [8] * n, [0.0] * n, [1000.0] * n)
    # Never reached: the last whole update within 1.5M, and nothing before it.
    assert sweep.junction_reached_at(timeouts, 1000) is None
    assert sweep.tmaze_stop(timeouts) == (1_500_000, "never reached")
    assert sweep.tmaze_stop({k: v[:14] for k, v in timeouts.items()}) is None
    odd = _metrics(np.arange(1, 23) * 70_000, [8] * 22, [0.0] * 22, [1000.0] * 22)
    assert sweep.tmaze_stop(odd) == (1_470_000, "never reached")  # a 22nd would pass 1.5M
    # An update with no ended episode (NaN length) is not a visit either.
    empty = _metrics(steps, [0] * n, [np.nan] * n, [np.nan] * n)
    assert sweep.tmaze_stop(empty) == (1_500_000, "never reached")
    # One early ending (a turn at the junction) at 1.2M: the run goes on past 1.5M ...
    length = np.full(n, 1000.0)
    length[11] = 990.0
    reached = _metrics(steps, [8] * n, [0.5] * n, length)
    assert sweep.junction_reached_at(reached, 1000) == 1_200_000
    assert sweep.junction_reached_at(reached, 990) is None  # 990 is the limit there
    assert sweep.tmaze_stop(reached) is None
    # ... until success holds 95% over 0.5M steps (five updates here, episode-weighted).
    success = np.array([0.5] * 10 + [1.0] * 10)
    success[13:15] = 0.8, 0.9  # every stretch holding both is at 0.94; then 0.9, 1, 1, 1, 1
    held = _metrics(steps, [8] * n, success, length)
    assert sweep.first_held(held, "success_rate", 0.95, 500_000) == 1_900_000
    assert sweep.tmaze_stop(held) == (1_900_000, "held")
    # One update with no ended episode breaks the stretch.
    gap = _metrics(steps, [8] * 16 + [0] + [8] * 3, success, length)
    assert sweep.first_held(gap, "success_rate", 0.95, 500_000) is None


def test_sweep_stops_by_the_rule_and_reports_it(tmp_path, monkeypatch):
    """A run the rule stops is complete: its state and the CSV say why, and neither a
    rerun nor a longer --total-steps trains it further; --run-to-end ignores the rule."""
    out = tmp_path / "sweep"
    one = [*TINY[:5], "0", *TINY[6:]]  # seed 0 only
    assert main(["sweep", "--out", str(out), *one, "--run-to-end"]) == 0
    run = out / "gru-L4-s0"
    lines = (run / "metrics.csv").read_text().splitlines()
    assert len(lines) == 4  # three updates: the whole run
    # A stand-in rule that stops every run at its first update.
    monkeypatch.setattr(
        cli_sweep, "tmaze_stop", lambda m, time_limit: (int(m["env_steps"][0]), "never reached")
    )
    longer = [a if a != "6144" else "20480" for a in one]
    assert main(["sweep", "--out", str(out), *longer]) == 0
    assert (run / "metrics.csv").read_text().splitlines() == lines  # resumed: no training
    state = json.loads((run / "sweep.json").read_text())
    assert (state["stopped_at"], state["stop_reason"], state["complete"]) == (
        2048,
        "never reached",
        True,
    )
    _, rows = _csv(out / "tmaze.csv")
    assert rows[0]["status"] == "never reached"
    table = (out / "tmaze.md").read_text().splitlines()
    assert len(table) == 3 and table[2].startswith("| gru | 4 | 0 |")
    assert table[2].endswith(" | never reached |")
    # --run-to-end trains past the rule, to the longer total.
    fresh = tmp_path / "fresh"
    assert main(["sweep", "--out", str(fresh), *longer, "--run-to-end"]) == 0
    _, rows = _csv(fresh / "tmaze.csv")
    assert rows[0]["env_steps"] == "20480" and rows[0]["status"] == "ran to 0.02M"
    # A run that has started but logged no update yet is left out of the aggregate.
    started = fresh / "gru-L4-s9"
    started.mkdir()
    (started / "config.json").write_text(
        (fresh / "gru-L4-s0" / "config.json").read_text().replace('"seed": 0', '"seed": 9')
    )
    header = (fresh / "gru-L4-s0" / "metrics.csv").read_text().splitlines()[0]
    (started / "metrics.csv").write_text(header + "\n")
    assert main(["sweep", "--out", str(fresh), *longer, "--aggregate-only"]) == 0
    assert _csv(fresh / "tmaze.csv")[1] == rows
