"""PPO throughput: environment steps per second of the whole update on T-Maze.

Each model at the paper's size (`rl.presets.MODEL_SIZES`) under one algorithm
configuration: the compiled training chunk of `run_training` (`Trainer.init`,
`Trainer.compile`: rollout, GAE and the PPO epochs, `updates` of them fused) is timed
after warm-up, compilation excluded, medians of interleaved repeats.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .timing import markdown_table, time_interleaved, write_results

MODELS = ("arelit", "relit", "gtrxl", "gru", "lstm")
LABELS = {"arelit": "AReLiT", "relit": "ReLiT", "gtrxl": "GTrXL M128", "gru": "GRU", "lstm": "LSTM"}
#: memax's models (`pip install 'relit_eqx[memax]'`), beside ours with `--models`:
#: the `tmaze-gru` preset's PPO and heads, `MEMAX_SIZE` for the model.
MEMAX_MODELS = ("memax-lru", "memax-ffm", "memax-s6", "memax-gdn", "memax-fart", "memax-gru")
MEMAX_SIZE: dict[str, Any] = {"d_model": 128, "n_layers": 2}


def run(
    *,
    models: tuple[str, ...] = MODELS,
    algo: str = "ppo",
    corridor_length: int | None = None,
    memory_length: int | None = None,
    updates: int = 2,
    repeats: int = 5,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
) -> list[dict[str, Any]]:
    """Env-steps/s of `updates` fused updates per model.

    - `algo="ppo"`: the `tmaze-<model>` preset (16 envs × 64 steps, 4 epochs × 4
      minibatches), at its corridor length unless `corridor_length` is given.
    - `algo="a2c"`: the sweep's A2C cell (`rl.sweep.cell_config`: 8 envs × 256 steps,
      one gradient step, the authors' per-model settings with GRU and LSTM at widths 680
      and 600), at `corridor_length` (default 120).

    - `memory_length=M`: bsuite MemoryChain at memory length M instead of T-Maze, each model
      in its MemoryChain run (`rl.memorychain.memorychain_config`: the sweep's PPO, sizes
      and rollout of `k (M + 1)` steps); `algo` must be `"ppo"`.

    `overrides` replaces constructor arguments of every model (tiny sizes for smoke tests).
    A `memax-<name>` model (`MEMAX_MODELS`) runs with the `tmaze-gru` preset's settings
    (or the GRU cell's A2C ones) at `MEMAX_SIZE`. Every row also gives the model's state
    floats per sequence and its parameters (the memory model, without the heads).
    """
    from ..rl import Trainer
    from ..rl.config import ModelConfig
    from ..rl.memorychain import memorychain_config
    from ..rl.presets import get_preset
    from ..rl.sweep import Cell, cell_config

    if memory_length is not None:
        if algo != "ppo" or corridor_length is not None:
            raise ValueError(
                "memory_length selects MemoryChain: algo must be 'ppo' and corridor_length None"
            )
        length = memory_length
    elif algo == "ppo":
        length = corridor_length or get_preset("tmaze-arelit").env.corridor_length
    else:
        length = corridor_length or 120
    cands: dict[str, Any] = {}
    info: dict[str, dict[str, Any]] = {}
    for name in models:
        if memory_length is not None:
            cfg = memorychain_config(
                name, memory_length, 0, total_steps=10**9, model_kwargs=overrides
            )
            cfg = dataclasses.replace(cfg, log_interval=updates)
        else:
            memax = name.startswith("memax-")
            cfg = cell_config(
                Cell("gru" if memax else name, length, 0),
                algo=algo,
                total_steps=10**9,
                model_kwargs=overrides,
                log_interval=updates,
            )
            if memax:
                kwargs = {
                    **MEMAX_SIZE,
                    **{k: v for k, v in (overrides or {}).items() if k in MEMAX_SIZE},
                }
                cfg = dataclasses.replace(cfg, model=ModelConfig(name=name, kwargs=kwargs))
        trainer = Trainer(cfg)
        runner = trainer.init()
        agent = trainer.agent(runner)
        t0 = time.perf_counter()
        chunk = trainer.compile(runner)
        compile_s = time.perf_counter() - t0
        label = LABELS.get(name, name)
        cands[label] = (chunk, (runner, jnp.asarray(updates, jnp.int32)))
        info[label] = {
            "steps": updates * cfg.steps_per_update,
            "compile_s": compile_s,
            "state_floats": agent.model.state_size,
            "parameters": sum(
                x.size for x in jax.tree.leaves(eqx.filter(agent.model, eqx.is_inexact_array))
            ),
        }
    timings = time_interleaved(cands, repeats=repeats, warmup=1)
    rows: list[dict[str, Any]] = []
    for label, t in timings.items():
        steps = info[label]["steps"]
        rows.append(
            {
                "model": label,
                "algo": algo,
                ("memory_length" if memory_length is not None else "corridor_length"): length,
                "env_steps": steps,
                "chunk_s": t.median,
                "env_steps_per_s": steps / t.median,
                "state_floats": info[label]["state_floats"],
                "parameters": info[label]["parameters"],
                "compile_s": info[label]["compile_s"],
            }
        )
    base = next((r for r in rows if r["model"] == "GTrXL M128"), None)
    for r in rows:
        if base is not None:
            r["speed_vs_GTrXL128"] = r["env_steps_per_s"] / base["env_steps_per_s"]
    cols = [
        "model",
        "env_steps",
        "chunk_s",
        "env_steps_per_s",
        "speed_vs_GTrXL128",
        "state_floats",
        "parameters",
        "compile_s",
    ]
    payload: dict[str, Any] = {"algo": algo, "rows": rows}
    if memory_length is not None:
        name = f"ppo-memorychain-M{memory_length}"
        payload["env"] = f"MemoryChain-bsuite, memory_length {memory_length}"
    else:
        name = "ppo" if algo == "ppo" else f"ppo-{algo}"
    write_results(out, name, payload, markdown_table(rows, cols))
    return rows
