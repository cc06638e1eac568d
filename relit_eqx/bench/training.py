"""Training-form speed: forward + backward of each model over a sequence of `T` steps.

`jax.grad` of the summed outputs with respect to the model's weights, batch by vmap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .inference import D_IN
from .timing import build_model, loglog_plot, markdown_table, time_interleaved, write_results

FULL: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("AReLiT scan", "arelit", {"method": "scan"}),
    ("AReLiT associative", "arelit", {"method": "associative"}),
    ("AReLiT chunked", "arelit", {"method": "chunked"}),
    ("ReLiT scan", "relit", {"method": "scan"}),
    ("ReLiT chunked", "relit", {"method": "chunked"}),
    ("GTrXL M128", "gtrxl", {"memory_length": 128}),
)
# One form per model (the smoke run of `--tiny`; every form is tested in tests/).
SMOKE = tuple(c for c in FULL if c[0] in ("AReLiT chunked", "ReLiT chunked", "GTrXL M128"))


def grad_fn():
    """`jit(grad(sum of outputs))` with respect to the model's weights."""

    @eqx.filter_jit
    def grad(model, xs, resets, state):
        def loss(m):
            return jax.vmap(m)(xs, resets, state)[0].sum()

        return eqx.filter_grad(loss)(model)

    return grad


def run(
    *,
    configs: tuple[tuple[str, str, dict[str, Any]], ...] = FULL,
    lengths: tuple[int, ...] = (128, 1024),
    batch: int = 16,
    repeats: int = 5,
    overrides: dict[str, Any] | None = None,
    long_skip: tuple[str, ...] = ("ReLiT scan", "AReLiT associative"),
    out: Path | None = None,
) -> list[dict[str, Any]]:
    """Median forward+backward time per model and length.

    Configurations named in `long_skip` run only for `T <= 256` (the step form of ReLiT
    keeps a `d × n` state per step for the backward pass, gigabytes at `T = 1024`).
    """
    key = jax.random.PRNGKey(0)
    grad = grad_fn()
    rows: list[dict[str, Any]] = []
    for T in lengths:
        cands: dict[str, Any] = {}
        xs = jax.random.normal(key, (batch, T, D_IN))
        resets = jnp.zeros((batch, T), bool).at[:, 0].set(True)
        for label, name, kwargs in configs:
            if T > 256 and label in long_skip:
                continue
            model = build_model(name, D_IN, key, **{**kwargs, **(overrides or {})})
            state = jax.vmap(lambda _, m=model: m.init_state())(jnp.arange(batch))
            cands[label] = (grad, (model, xs, resets, state))
        timings = time_interleaved(cands, repeats=repeats, warmup=1)
        for label in cands:
            rows.append(
                {"model": label, "T": T, "batch": batch, "fwd_bwd_ms": timings[label].median * 1e3}
            )
    for r in rows:
        base = next((x for x in rows if x["model"] == "GTrXL M128" and x["T"] == r["T"]), None)
        if base is not None:
            r["vs_GTrXL128"] = r["fwd_bwd_ms"] / base["fwd_bwd_ms"]
    cols = ["model", "T", "batch", "fwd_bwd_ms", "vs_GTrXL128"]
    write_results(out, "training", {"rows": rows}, markdown_table(rows, cols))
    if out is not None:
        plot(rows, out / "training.png")
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Forward + backward time against sequence length, one line per model (log-log)."""
    batch = rows[0]["batch"] if rows else "?"
    loglog_plot(
        rows, "T", "fwd_bwd_ms", path,
        xlabel="sequence length T", ylabel="ms (forward + backward)",
        title=f"Training form: grad of the summed outputs, batch {batch}", label_x=True,
    )  # fmt: skip
