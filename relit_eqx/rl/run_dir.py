"""Run directories: the saved configuration, the checkpoint and the metrics.

A run directory holds `config.json` (the `TrainConfig`), `checkpoint.eqx` (the whole
runner state: parameters, optimiser state, environment and memory states, key, update
count; `eqx.tree_serialise_leaves`), `metrics.csv` (one row per update,
`METRIC_COLUMNS`) and `learning_curve.png`. Files are written to a temporary file and
renamed, so a crash leaves the previous one intact. A directory holding `config.json`
but no checkpoint (a run stopped before its first checkpoint) resumes from the start.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import equinox as eqx
import numpy as np

from .config import ConfigError, TrainConfig, config_from_dict, config_to_json

__all__ = [
    "CONFIG_FILE",
    "CHECKPOINT_FILE",
    "METRICS_FILE",
    "PLOT_FILE",
    "METRIC_COLUMNS",
    "holds_run",
    "check_new_run_dir",
    "save_config",
    "load_config",
    "save_checkpoint",
    "load_checkpoint",
    "MetricsWriter",
    "read_metrics",
    "check_resume",
]

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.eqx"
METRICS_FILE = "metrics.csv"
PLOT_FILE = "learning_curve.png"

#: Columns of `metrics.csv`, one row per update.
METRIC_COLUMNS = (
    "update",
    "env_steps",
    "episodes",
    "mean_return",
    "success_rate",
    "mean_length",
    "loss",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_frac",
    "grad_norm",
    "lr",
)

T = TypeVar("T")


def holds_run(path: str | os.PathLike) -> bool:
    """Whether `path` holds (part of) a run: any of its config, checkpoint or metrics."""
    p = Path(path)
    return any((p / f).exists() for f in (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE))


def check_new_run_dir(path: str | os.PathLike) -> None:
    """`ConfigError` unless a new run can be written to `path`: no run there, and the
    path is a directory or can be created (nothing is created)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{p} exists and is not a directory")
    if holds_run(p):
        stopped = (p / CONFIG_FILE).exists() and not (p / CHECKPOINT_FILE).exists()
        note = " (stopped before its first checkpoint)" if stopped else ""
        raise ConfigError(
            f"{p} holds another run{note}; pass --resume {p} to continue it "
            "or choose another directory"
        )
    ancestor = p
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot create {p}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot create {p}: {ancestor} is not writable")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_config(run_dir: str | os.PathLike, cfg: TrainConfig) -> None:
    """Write `run_dir/config.json`."""
    _atomic_write(Path(run_dir) / CONFIG_FILE, config_to_json(cfg).encode())


def load_config(run_dir: str | os.PathLike) -> TrainConfig:
    """Read `run_dir/config.json`; `ConfigError` if it is missing, damaged (not JSON) or
    names fields a `TrainConfig` does not have."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is damaged (not JSON: {e})") from None
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def save_checkpoint(run_dir: str | os.PathLike, state: Any) -> None:
    """Serialise every leaf of `state` to `run_dir/checkpoint.eqx` (atomically)."""
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    _atomic_write(Path(run_dir) / CHECKPOINT_FILE, buf.getvalue())


def _records(data: bytes) -> list[np.ndarray] | None:
    """The `.npy` records of a checkpoint's bytes, or `None` if they are not whole."""
    if not data:
        return None
    f = io.BytesIO(data)
    out = []
    try:
        while f.tell() < len(data):
            out.append(np.load(f, allow_pickle=False))
    except Exception:
        return None
    return out


def check_resume(run_dir: str | os.PathLike, cfg: TrainConfig) -> int:
    """The updates the run in `run_dir` has done (0 without a checkpoint: a run stopped
    before its first one starts again), checking that `cfg` can continue it: the
    checkpoint is whole, `cfg.total_steps` is not below what was done, and
    `metrics.csv` holds a row for every update done. `ConfigError` otherwise; nothing
    is written."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        return 0
    records = _records(path.read_bytes())
    if not records or records[-1].shape != () or records[-1].dtype.kind not in "iu":
        raise ConfigError(
            f"{path} is damaged (empty, truncated or not a checkpoint); delete it to "
            "restart the run from its beginning"
        )
    done = int(records[-1])  # RunnerState.update, its last leaf
    if done > cfg.num_updates:
        raise ConfigError(
            f"--total-steps {cfg.total_steps:,} is below the {done * cfg.steps_per_update:,} "
            f"env steps the run in {run_dir} has done"
        )
    metrics = run_dir / METRICS_FILE
    if done and not metrics.exists():
        raise ConfigError(f"{metrics} is missing; the checkpoint is at update {done}")
    if done:
        have = [int(r[0]) for r in _complete_rows(metrics) if int(r[0]) <= done]
        if have != list(range(1, done + 1)):
            raise ConfigError(
                f"{metrics} does not agree with the checkpoint (at update {done}): "
                f"{_what_is_wrong(have, done)}"
            )
    return done


def _what_is_wrong(have: list[int], done: int) -> str:
    missing = sorted(set(range(1, done + 1)) - set(have))
    if missing:
        return f"rows of updates {missing[0]}…{missing[-1]} are missing"
    return "rows are repeated or out of order"


def load_checkpoint(run_dir: str | os.PathLike, like: T) -> T:
    """Load `run_dir/checkpoint.eqx` into a PyTree shaped like `like`.

    `ConfigError` when the file is damaged (empty, truncated, not a checkpoint), and
    when its arrays do not fit `like` (a checkpoint written for another configuration,
    or by a version of `relit_eqx` whose parameters were laid out differently: before
    `nn.Dense`, dense weights were stored `[d_out, d_in]`).
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    data = path.read_bytes()
    if _records(data) is None:
        raise ConfigError(
            f"{path} is damaged (empty, truncated or not a checkpoint); delete it to "
            "restart the run from its beginning"
        )
    try:
        loaded = eqx.tree_deserialise_leaves(io.BytesIO(data), like)
    except (RuntimeError, ValueError, EOFError) as e:
        raise ConfigError(
            f"{path} does not fit this run's model and optimiser state ({e}); it was "
            "written for another configuration or by another version of relit_eqx"
        ) from None
    expected = io.BytesIO()
    eqx.tree_serialise_leaves(expected, like)
    if len(expected.getvalue()) != len(data):
        raise ConfigError(
            f"{path} does not fit this run's model and optimiser state (it holds "
            f"{len(data)} bytes, this run's state {len(expected.getvalue())}); it was "
            "written for another configuration or by another version of relit_eqx"
        )
    return loaded


def _fmt(x: Any) -> str:
    if isinstance(x, int | np.integer):
        return str(int(x))
    return repr(float(x))  # shortest exact round trip of the float32 value


def _complete_rows(path: Path) -> list[list[str]]:
    """The rows of a metrics CSV that are whole (every column, numbers), header
    excluded; a partial last row (a write cut short) is dropped."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(rows[0]) != METRIC_COLUMNS:
        raise ConfigError(f"{path} is damaged (its header is not {','.join(METRIC_COLUMNS)})")
    body = []
    for r in rows[1:]:
        try:
            if len(r) == len(METRIC_COLUMNS):
                [float(v) for v in r]
                int(r[0])
                body.append(r)
        except ValueError:
            pass
    return body


class MetricsWriter:
    """Appends one row per update to a CSV file (columns `METRIC_COLUMNS`).

    **Arguments:**

    - `path`: the CSV file.
    - `keep_updates`: when resuming from a checkpoint at this update, the file is made
      to agree with it: rows past it (written after the checkpoint) and a partial row
      are dropped; `ConfigError` if rows `1 … keep_updates` are not all there. `None`
      (or `0`) starts a new file.
    """

    def __init__(self, path: str | os.PathLike, keep_updates: int | None = None):
        self.path = Path(path)
        if not keep_updates:
            _atomic_write(self.path, (",".join(METRIC_COLUMNS) + "\r\n").encode())
            return
        if not self.path.exists():
            raise ConfigError(f"{self.path} is missing; the checkpoint is at update {keep_updates}")
        body = [r for r in _complete_rows(self.path) if int(r[0]) <= keep_updates]
        have = [int(r[0]) for r in body]
        if have != list(range(1, keep_updates + 1)):
            raise ConfigError(
                f"{self.path} does not agree with the checkpoint (at update {keep_updates}): "
                f"{_what_is_wrong(have, keep_updates)}"
            )
        out = io.StringIO(newline="")
        w = csv.writer(out)
        w.writerow(METRIC_COLUMNS)
        w.writerows(body)
        _atomic_write(self.path, out.getvalue().encode())

    def append(self, rows: Sequence[Mapping[str, object]]) -> None:
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            for row in rows:
                w.writerow([_fmt(row[c]) for c in METRIC_COLUMNS])


def read_metrics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Columns of a metrics CSV as float arrays."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: np.array([float(r[c]) for r in rows], dtype=np.float64) for c in METRIC_COLUMNS}
