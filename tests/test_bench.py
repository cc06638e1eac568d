"""Smoke runs of every benchmark at tiny sizes through the CLI (no timing assertions)."""

import json
import math

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
    if which in ("inference", "training"):
        assert (tmp_path / f"{which}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if which == "inference":
        by_model = {r["model"]: r for r in rows if r["batch"] == 1}
        # state accounting: AReLiT's state is smaller than GTrXL's at the same sizes
        assert by_model["AReLiT eta4 r2 paper"]["state_vs_GTrXL128"] < 1


def _check_ppo(rows, models):
    assert [r["model"] for r in rows] == models
    for r in rows:
        assert r["env_steps"] > 0 and r["chunk_s"] > 0 and r["compile_s"] > 0
        assert math.isfinite(r["env_steps_per_s"]) and r["env_steps_per_s"] > 0
        assert r["env_steps_per_s"] == pytest.approx(r["env_steps"] / r["chunk_s"])
        assert math.isfinite(r["speed_vs_GTrXL128"]) and r["speed_vs_GTrXL128"] > 0
    assert next(r for r in rows if r["model"] == "GTrXL M128")["speed_vs_GTrXL128"] == 1


def test_bench_ppo_smoke(tmp_path):
    """`bench ppo` times the compiled update of `run_training` per model (two tiny ones)."""
    assert main(["bench", "ppo", "--tiny", "--models", "gru,gtrxl", "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "ppo.json").read_text())
    assert payload["algo"] == "ppo"
    _check_ppo(payload["rows"], ["GRU", "GTrXL M128"])
    table = (tmp_path / "ppo.md").read_text()
    assert "env_steps_per_s" in table and table.count("\n|") == 4  # header, rule, 2 rows


def test_bench_ppo_on_memorychain(tmp_path):
    """`bench ppo --memory-length M` times the MemoryChain run of the sweep: a rollout of
    whole episodes (16 environments x 66 steps at M = 10, from `memorychain_config`)."""
    from relit_eqx.rl.memorychain import rollout_steps

    argv = ["bench", "ppo", "--tiny", "--memory-length", "10", "--models", "gru"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "ppo-memorychain-M10.json").read_text())
    assert payload["env"] == "MemoryChain-bsuite, memory_length 10"
    (row,) = payload["rows"]
    assert row["model"] == "GRU" and row["memory_length"] == 10
    assert row["env_steps"] == 16 * rollout_steps(10) == 16 * 66
    assert math.isfinite(row["env_steps_per_s"]) and row["env_steps_per_s"] > 0


@pytest.mark.slow
def test_bench_ppo_all_models(tmp_path):
    """Every model of `bench ppo --tiny` (several compilations: slow)."""
    assert main(["bench", "ppo", "--tiny", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "ppo.json").read_text())["rows"]
    _check_ppo(rows, ["AReLiT", "ReLiT", "GTrXL M128", "GRU", "LSTM"])


def test_bench_rejects_unknown():
    """An unknown benchmark name is an argument error (exit code 2)."""
    assert main(["bench", "nonsense"]) == 2
    assert main(["bench", "ppo", "--models", "gru,transformer"]) == 2
    assert main(["bench", "training", "--lengths", "0"]) == 2
    assert main(["bench", "ppo", "--memory-length", "0"]) == 2
    assert main(["bench", "forms", "--memory-length", "10"]) == 2
    assert main(["bench", "ppo", "--algo", "a2c", "--memory-length", "10"]) == 2
    assert main(["bench", "ppo", "--memory-length", "10", "--models", "memax-fart"]) == 2
