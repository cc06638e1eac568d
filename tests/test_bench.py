"""Smoke runs of every benchmark at tiny sizes through the CLI (no timing assertions)."""

import json

import pytest

from relit_eqx.cli import main


@pytest.mark.parametrize("which", ["forms", "inference", "training"])
def test_bench_smoke(which, tmp_path):
    """Each benchmark runs end to end and writes a table with one finite time per row."""
    assert main(["bench", which, "--tiny", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / f"{which}.json").read_text())["rows"]
    assert rows
    key = {"forms": "fwd_bwd_ms", "inference": "step_ms", "training": "fwd_bwd_ms"}[which]
    assert all(r[key] > 0 for r in rows)
    assert (tmp_path / f"{which}.md").read_text().count("|") > 10
    if which == "inference":
        assert (tmp_path / "inference.png").stat().st_size > 0
        by_model = {r["model"]: r for r in rows if r["batch"] == 1}
        # state accounting: AReLiT's state is smaller than GTrXL's at the same sizes
        assert by_model["AReLiT eta4 r2 paper"]["state_vs_GTrXL128"] < 1


def test_bench_rejects_unknown():
    """An unknown benchmark name is an argument error (exit code 2)."""
    assert main(["bench", "nonsense"]) == 2
