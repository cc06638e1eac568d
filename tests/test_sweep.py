"""`relit-eqx sweep`: a tiny sweep that stops, resumes, skips finished work and aggregates."""

import csv

import pytest

from relit_eqx.cli import main
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
    ],
)
def test_sweep_bad_input(tmp_path, capsys, args, message):
    """Bad input exits 2 with the reason, before anything is written."""
    assert main(["sweep", "--out", str(tmp_path / "s"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
