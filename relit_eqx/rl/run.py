"""`run_training`: train (or continue) one run in its run directory.

Between compiled chunks, Python writes the metrics' rows, a checkpoint (every
`checkpoint_every` seconds and when the run ends, stops or is interrupted) and the
progress bar. SIGINT and SIGTERM (what job schedulers send) both stop the run after
its current chunk is checkpointed.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .config import ConfigError, TrainConfig, changed_fields
from .distributed import fetch, shard_runner
from .learner import episode_weighted_mean
from .plotting import plot_learning_curve
from .progress import Progress
from .run_dir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    PLOT_FILE,
    MetricsWriter,
    check_new_run_dir,
    check_resume,
    load_checkpoint,
    load_config,
    save_checkpoint,
    save_config,
)
from .trainer import Trainer
from .types import RunnerState

__all__ = ["RunResult", "Interrupted", "run_training", "check_same_run", "env_label"]


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (`signum`: SIGINT or SIGTERM) after its last
    chunk was checkpointed."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


@dataclass(frozen=True)
class RunResult:
    """What `run_training` did: the run directory and files, updates and env steps
    done, the last chunk's episode-weighted mean return and success rate, throughput
    (env steps per second of execution, compilation excluded), and wall and compile
    time in seconds."""

    run_dir: Path
    metrics_path: Path
    plot_path: Path
    updates: int
    env_steps: int
    mean_return: float
    success_rate: float
    steps_per_second: float
    wall_seconds: float
    compile_seconds: float
    complete: bool


def env_label(cfg: TrainConfig) -> str:
    """The environment as the figures and messages name it."""
    if cfg.env.name == "tmaze":
        return f"tmaze (L={cfg.env.corridor_length})"
    return cfg.env.name


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM raises `Interrupted(SIGTERM)` like SIGINT raises KeyboardInterrupt (main
    thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_same_run(run_dir: Path, cfg: TrainConfig) -> None:
    """`ConfigError` unless `run_dir` holds a run that `cfg` continues (the same
    configuration; only `total_steps` may change)."""
    if not (run_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir}: no run to resume there (no {CONFIG_FILE})")
    changed = changed_fields(load_config(run_dir), cfg)
    if changed:
        raise ConfigError(
            f"cannot change {', '.join(changed)} when resuming (only total_steps may change)"
        )


def run_training(
    cfg: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    checkpoint_every: float = 30.0,
    devices: int = 1,
    trainer: Trainer | None = None,
) -> RunResult:
    """Train (or continue training) the run `cfg` in `run_dir`.

    **Arguments:**

    - `cfg`: the run (validated here).
    - `run_dir`: where `config.json`, `metrics.csv`, `checkpoint.eqx` and
      `learning_curve.png` go. A new run needs a directory holding no run.
    - `resume`: continue the run in `run_dir` (the same `cfg`, except possibly a
      larger `total_steps`) from its checkpoint, or from its start when it stopped
      before its first checkpoint.
    - `stop_after`: stop (checkpointed, resumable) after the first chunk reaching this
      many env steps.
    - `progress`: show the progress bar.
    - `checkpoint_every`: seconds between checkpoints; one is also written when the
      run ends, stops or is interrupted (SIGINT or SIGTERM: `Interrupted` is raised
      then). Any checkpoint resumes bit-identically, since every chunk runs the same
      compiled update whatever its length.
    - `devices`: run data-parallel on this many devices (the result is the one-device
      result up to floating-point reassociation). A run may resume on another count.
    - `trainer`: a `Trainer` of this configuration to reuse (its compiled programs
      serve any seed); by default one is built (and closed) here.

    A host environment (`gymnasium:…`) is not in the checkpoint: a resumed host run
    restarts its episodes (from freshly reset environments, zero memory), so it is not
    bit-identical to an uninterrupted one. In a multi-process run
    (`jax.distributed.initialize`), process 0 writes the files.
    """
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    if resume:
        check_same_run(run_dir, cfg)
        check_resume(run_dir, cfg)
    else:
        check_new_run_dir(run_dir)
    own = trainer is None
    if trainer is None:
        trainer = Trainer(cfg, devices=devices)
    elif not trainer.serves(cfg) or trainer.devices != devices:
        raise ValueError("trainer was built for another configuration or device count")
    try:
        progress = progress and jax.process_index() == 0
        if progress:
            print("building the agent and compiling the update…", file=sys.stderr, flush=True)
        runner = trainer.init(cfg.seed)
        if resume and (run_dir / CHECKPOINT_FILE).exists():
            runner = _load(trainer, run_dir, runner)
        with _stop_on_signals():
            return _run(trainer, cfg, run_dir, runner, resume, stop_after, progress,
                        checkpoint_every, t_start)  # fmt: skip
    finally:
        if own:
            trainer.close()


def _load(trainer: Trainer, run_dir: Path, fresh: RunnerState) -> RunnerState:
    mesh = trainer.mesh
    runner = load_checkpoint(run_dir, fresh if mesh is None else fetch(fresh))
    if trainer.host:  # host environments restart their episodes
        runner = eqx.tree_at(lambda r: r.rollout, runner, fresh.rollout)
    return runner if mesh is None else shard_runner(runner, mesh)


def _run(
    trainer: Trainer,
    cfg: TrainConfig,
    run_dir: Path,
    runner: RunnerState,
    resume: bool,
    stop_after: int | None,
    progress: bool,
    checkpoint_every: float,
    t_start: float,
) -> RunResult:
    main = jax.process_index() == 0
    done_updates = int(runner.update)
    writer = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        writer = MetricsWriter(run_dir / METRICS_FILE, keep_updates=done_updates)
        save_config(run_dir, cfg)  # total_steps may have changed
    spu = cfg.steps_per_update
    n_updates = cfg.num_updates
    t0 = time.perf_counter()
    trainer.compile(runner)
    compile_s = time.perf_counter() - t0
    bar = Progress(total=n_updates * spu, initial=done_updates * spu, enabled=progress)
    exec_s, exec_steps = 0.0, 0
    last_ret, last_succ = math.nan, math.nan
    interrupted: Interrupted | None = None
    saved_at = time.perf_counter()
    try:
        while done_updates < n_updates:
            length = min(cfg.log_interval, n_updates - done_updates)
            t1 = time.perf_counter()
            # `runner` moves on only once the chunk's rows are written, so a signal
            # arriving in between checkpoints the state the metrics describe.
            advanced, out = trainer.chunk(runner, length)
            metrics: dict[str, np.ndarray] = {k: v[:length] for k, v in fetch(out).items()}
            if not trainer.reports_success:
                metrics["success_rate"] = np.full(length, np.nan, np.float32)
            exec_s += time.perf_counter() - t1
            exec_steps += length * spu
            rows = []
            for i in range(length):
                u = done_updates + i + 1
                rows.append(
                    dict({k: v[i] for k, v in metrics.items()}, update=u, env_steps=u * spu)
                )
            if writer is not None:
                writer.append(rows)
            runner = advanced
            done_updates += length
            if time.perf_counter() - saved_at >= checkpoint_every:
                _save(run_dir, runner)
                saved_at = time.perf_counter()
            last_ret = episode_weighted_mean(metrics["mean_return"], metrics["episodes"])
            last_succ = episode_weighted_mean(metrics["success_rate"], metrics["episodes"])
            bar.update(length * spu, done_updates * spu, last_ret, last_succ, exec_steps / exec_s)
            if stop_after is not None and done_updates * spu >= stop_after:
                break
    except Interrupted as e:
        interrupted = e
    except KeyboardInterrupt:
        interrupted = Interrupted(signal.SIGINT)
    finally:
        bar.close()
    _save(run_dir, runner)  # the last completed chunk
    if main:
        title = f"{cfg.model.name} on {env_label(cfg)}, seed {cfg.seed}"
        plot_learning_curve(run_dir / METRICS_FILE, run_dir / PLOT_FILE, title=title)
    if interrupted is not None:
        raise interrupted
    return RunResult(
        run_dir=run_dir,
        metrics_path=run_dir / METRICS_FILE,
        plot_path=run_dir / PLOT_FILE,
        updates=done_updates,
        env_steps=done_updates * spu,
        mean_return=last_ret,
        success_rate=last_succ,
        steps_per_second=exec_steps / exec_s if exec_s > 0 else math.nan,
        wall_seconds=time.perf_counter() - t_start,
        compile_seconds=compile_s,
        complete=done_updates >= n_updates,
    )


def _save(run_dir: Path, runner: RunnerState) -> None:
    """Checkpoint `runner` (gathered on the host; written by process 0 only)."""
    host = fetch(runner)
    if jax.process_index() == 0:
        save_checkpoint(run_dir, host)
