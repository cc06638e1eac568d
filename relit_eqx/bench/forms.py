"""The three evaluation forms of the functional core, forward and forward+backward.

Shapes as in the foundation issue: `H` heads, `d = 64`, `n = eta·d = 256`, batch by vmap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..functional import relit
from .timing import markdown_table, time_interleaved, write_results


def _inputs(batch: int, heads: int, T: int, d: int, n: int, seed: int = 0) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    sh = (batch, heads, T)
    f32 = np.float32
    return (
        jnp.asarray(rng.random((*sh, n)), f32),
        jnp.asarray(rng.random((*sh, n)), f32),
        jnp.asarray(rng.normal(size=(*sh, d)), f32),
        jnp.asarray(rng.random((*sh, d)), f32),
        jnp.asarray(rng.random((*sh, n)), f32),
        jnp.asarray(rng.random(sh) < 0.01),
    )


def _fns(method: str, chunk_size: int):
    def one(q, k, v, b, g, r):
        return relit(q, k, v, b, g, r, method=method, chunk_size=chunk_size)[0]

    batched = jax.vmap(jax.vmap(one))
    fwd = jax.jit(batched)
    grad = jax.jit(jax.grad(lambda *a: batched(*a).sum(), argnums=(0, 1, 2, 3, 4)))
    return fwd, grad


def run(
    *,
    lengths: tuple[int, ...] = (128, 1024, 4096),
    batch: int = 8,
    heads: int = 4,
    d: int = 64,
    n: int = 256,
    chunk_size: int = 64,
    methods: tuple[str, ...] = ("scan", "associative", "chunked"),
    repeats: int = 5,
    out: Path | None = None,
) -> list[dict[str, Any]]:
    """Time every form at every length; returns one row per (T, method)."""
    rows: list[dict[str, Any]] = []
    for T in lengths:
        args = _inputs(batch, heads, T, d, n)
        cands: dict[str, Any] = {}
        for m in methods:
            fwd, grad = _fns(m, chunk_size)
            cands[f"{m}/fwd"] = (fwd, args)
            cands[f"{m}/fwd+bwd"] = (grad, args)
        timings = time_interleaved(cands, repeats=repeats, warmup=1)
        for m in methods:
            fwd, _ = _fns(m, chunk_size)
            mem = fwd.lower(*args).compile().memory_analysis()
            temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
            rows.append(
                {
                    "T": T,
                    "method": m,
                    "fwd_ms": timings[f"{m}/fwd"].median * 1e3,
                    "fwd_bwd_ms": timings[f"{m}/fwd+bwd"].median * 1e3,
                    "fwd_temp_MiB": None if temp is None else temp / 2**20,
                }
            )
        scan = next(r for r in rows if r["T"] == T and r["method"] == "scan")
        for r in rows:
            if r["T"] == T:
                r["fwd_bwd_speedup_vs_scan"] = scan["fwd_bwd_ms"] / r["fwd_bwd_ms"]
    cols = ["T", "method", "fwd_ms", "fwd_bwd_ms", "fwd_bwd_speedup_vs_scan", "fwd_temp_MiB"]
    config = dict(batch=batch, heads=heads, d=d, n=n, chunk_size=chunk_size)
    write_results(out, "forms", {"config": config, "rows": rows}, markdown_table(rows, cols))
    return rows
