"""`bench ppo`'s chunks of two checkouts timed in one process, interleaved.

    python benchmarks/ppo_before_after.py --before DIR [--models arelit,relit,...]

DIR is a checkout of an earlier commit (e.g. `git worktree add /tmp/before 143a2c6`).
Its package is copied to a temporary directory as `relit_eqx_before`, so that both
versions' compiled training chunks (the `tmaze-<model>` preset: rollout, GAE and the PPO
epochs of one update) are built from the same seed and timed round-robin by
`bench.timing.time_interleaved`: a drift of the machine hits both alike.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import sys
import tempfile
from pathlib import Path

import jax.numpy as jnp

from relit_eqx.bench.timing import time_interleaved
from relit_eqx.rl import Trainer
from relit_eqx.rl.sweep import Cell, cell_config


def _import_before(src: Path) -> object:
    tmp = Path(tempfile.mkdtemp())
    dst = tmp / "relit_eqx_before"
    shutil.copytree(src / "relit_eqx", dst)
    for f in dst.rglob("*.py"):
        text = f.read_text()
        new = re.sub(r"\brelit_eqx\.(models|rl|envs|nn|functional)", r"relit_eqx_before.\1", text)
        if new != text:
            f.write_text(new)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("relit_eqx_before")


def _before_chunk(name: str, length: int, updates: int):  # noqa: ANN202
    sweep = importlib.import_module("relit_eqx_before.rl.sweep")
    train = importlib.import_module("relit_eqx_before.rl.train")
    cfg = sweep.cell_config(
        sweep.Cell(name, length, 0), algo="ppo", total_steps=10**9, log_interval=updates
    )
    setup, runner = train.init_runner(cfg)
    return train._compiled_chunk(setup, runner), runner, cfg.steps_per_update


def _after_chunk(name: str, length: int, updates: int):  # noqa: ANN202
    cfg = cell_config(Cell(name, length, 0), algo="ppo", total_steps=10**9, log_interval=updates)
    trainer = Trainer(cfg)
    runner = trainer.init()
    return trainer.compile(runner), runner, cfg.steps_per_update


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--models", default="arelit,relit,gtrxl,gru,lstm")
    p.add_argument("--length", type=int, default=None, help="corridor (default: the preset's)")
    p.add_argument("--updates", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    _import_before(args.before)
    from relit_eqx.rl.presets import get_preset

    length = args.length or get_preset("tmaze-arelit").env.corridor_length
    cands, steps = {}, {}
    for name in args.models.split(","):
        for tag, build in (("before", _before_chunk), ("after", _after_chunk)):
            chunk, runner, spu = build(name, length, args.updates)
            cands[(name, tag)] = (chunk, (runner, jnp.asarray(args.updates, jnp.int32)))
            steps[(name, tag)] = args.updates * spu
            print(f"compiled {name} {tag}", flush=True)
    timings = time_interleaved(cands, repeats=args.repeats, warmup=1)
    print("| model | before env-steps/s | after env-steps/s | after / before |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        b = steps[(name, "before")] / timings[(name, "before")].median
        a = steps[(name, "after")] / timings[(name, "after")].median
        print(f"| {name} | {b:.0f} | {a:.0f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
