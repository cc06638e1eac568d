"""Metrics CSV, learning-curve plot and progress lines, with and without a success rate."""

from __future__ import annotations

import math
import struct

import pytest

from relit_eqx.rl.plotting import plot_learning_curve
from relit_eqx.rl.progress import Progress
from relit_eqx.rl.run_dir import METRIC_COLUMNS, MetricsWriter


def _png_width(path) -> int:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", head[16:20])[0]


def _write(path, success: float) -> None:
    w = MetricsWriter(path)
    rows = []
    for u in range(1, 6):
        row = {c: 0.5 for c in METRIC_COLUMNS}
        row.update(update=u, env_steps=100 * u, mean_return=float(u), success_rate=success)
        rows.append(row)
    w.append(rows)


@pytest.mark.parametrize("success", [0.75, math.nan])
def test_plot_has_a_success_panel_only_when_reported(tmp_path, success):
    _write(tmp_path / "m.csv", success)
    plot_learning_curve(tmp_path / "m.csv", tmp_path / "c.png", title="t")
    width = _png_width(tmp_path / "c.png")
    # Two panels are 10 inches wide, one is 5 (110 dpi).
    assert width == (1100 if not math.isnan(success) else 550)


def test_progress_line_omits_an_unreported_success(capsys):
    p = Progress(total=200, enabled=True)  # stderr is not a terminal here: plain lines
    p.update(100, 100, 1.5, math.nan, 10.0)
    p.update(100, 200, 1.5, 0.25, 10.0)
    p.update(0, 200, math.nan, math.nan, 10.0)  # no episode ended in this chunk
    lines = capsys.readouterr().err.strip().splitlines()
    assert "success" not in lines[0] and "return 1.50" in lines[0]
    assert "success 25%" in lines[1]
    assert "return nan, success nan" in lines[2]


def test_no_plot_before_the_first_row(tmp_path):
    MetricsWriter(tmp_path / "m.csv")  # header only: interrupted before the first chunk
    plot_learning_curve(tmp_path / "m.csv", tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
