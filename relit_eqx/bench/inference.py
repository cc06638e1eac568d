"""Per-step inference latency (the `step` form) and state size of every model.

The paper's headline: AReLiT's per-step inference at least 40% cheaper than GTrXL's and
its state more than 50% smaller. Each model's `step` is jitted over a vmapped batch of
states, with the model's arrays passed as arguments (not compile-time constants).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .cost_model import step_cost
from .timing import build_model, loglog_plot, markdown_table, time_interleaved, write_results

D_IN = 16

# (label, registry name, kwargs) at the paper's sizes (constructor defaults).
FULL: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("AReLiT eta4 r1 paper", "arelit", {"r": 1}),
    ("AReLiT eta4 r2 paper", "arelit", {"r": 2}),
    ("AReLiT eta4 r4 paper", "arelit", {"r": 4}),
    ("AReLiT eta8 r2 paper", "arelit", {"eta": 8, "r": 2}),
    ("AReLiT eta4 r2 fourier", "arelit", {"r": 2, "oscillator": "fourier"}),
    ("AReLiT eta4 r4 fourier", "arelit", {"r": 4, "oscillator": "fourier"}),
    ("ReLiT eta4", "relit", {}),
    ("GTrXL M64", "gtrxl", {"memory_length": 64}),
    ("GTrXL M128", "gtrxl", {"memory_length": 128}),
    ("GTrXL M256", "gtrxl", {"memory_length": 256}),
    ("GRU", "gru", {}),
    ("LSTM", "lstm", {}),
)
QUICK = tuple(
    c for c in FULL if c[0] in ("AReLiT eta4 r2 paper", "ReLiT eta4", "GTrXL M128", "GRU", "LSTM")
)


def step_fn(model: Any) -> tuple[Any, list[Any]]:
    """`jit(vmap(model.step))` and the model's arrays as a flat list: `fn(leaves, x, reset,
    state)`.

    The model's structure is closed over, so a call flattens a list, not the Equinox
    module: `eqx.filter_jit` with the model as an argument spends about 1.5 ms per call
    flattening the paper-size AReLiT on a 2-core CPU, more than the step itself; a step
    inside a jitted rollout pays neither.
    """
    params, static = eqx.partition(model, eqx.is_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)

    @jax.jit
    def step(leaves, x, reset, state):
        m = eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)
        return jax.vmap(m.step)(x, reset, state)

    return step, leaves


def run(
    *,
    configs: tuple[tuple[str, str, dict[str, Any]], ...] = FULL,
    batches: tuple[int, ...] = (1, 16, 64, 256),
    repeats: int = 21,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
) -> list[dict[str, Any]]:
    """Median per-step latency for each model and batch size, and state floats per sequence.

    `overrides` replaces constructor arguments of every model (tiny sizes for smoke tests).
    """
    key = jax.random.PRNGKey(0)
    models = {}
    for label, name, kwargs in configs:
        models[label] = build_model(name, D_IN, key, **{**kwargs, **(overrides or {})})
    steps = {label: step_fn(model) for label, model in models.items()}
    rows: list[dict[str, Any]] = []
    costs = {
        label: step_cost(name, D_IN, **{**kwargs, **(overrides or {})})
        for label, name, kwargs in configs
    }
    for B in batches:
        cands: dict[str, Any] = {}
        for label, model in models.items():
            state = jax.vmap(lambda _, m=model: m.init_state())(jnp.arange(B))
            x = jax.random.normal(key, (B, D_IN))
            reset = jnp.zeros((B,), bool)
            step, leaves = steps[label]
            cands[label] = (step, (leaves, x, reset, state))
        timings = time_interleaved(cands, repeats=repeats, warmup=2)
        for label, model in models.items():
            rows.append(
                {
                    "model": label,
                    "batch": B,
                    "step_ms": timings[label].median * 1e3,
                    "state_floats": model.state_size,
                    "model_MFLOP": costs[label]["flops"] / 1e6,
                }
            )
    ref = "GTrXL M128"
    for r in rows:
        base = next((x for x in rows if x["model"] == ref and x["batch"] == r["batch"]), None)
        if base is not None:
            r["time_vs_GTrXL128"] = r["step_ms"] / base["step_ms"]
            r["state_vs_GTrXL128"] = r["state_floats"] / base["state_floats"]
    cols = [
        "model", "batch", "step_ms", "state_floats", "model_MFLOP",
        "time_vs_GTrXL128", "state_vs_GTrXL128",
    ]  # fmt: skip
    write_results(out, "inference", {"rows": rows}, markdown_table(rows, cols))
    if out is not None:
        plot(rows, out / "inference.png")
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Latency against batch size, one line per model (log-log)."""
    loglog_plot(
        rows, "batch", "step_ms", path,
        xlabel="batch size", ylabel="ms per step", title="Per-step inference latency",
    )  # fmt: skip
