"""The authors' Flax AReLiT (AGaLiTe) and GTrXL beside ours, in one process.

    pip install flax            # only for this script; never a dependency of relit_eqx
    git clone <the authors' agalite repository> /path/to/agalite
    python benchmarks/authors_flax.py --authors-repo /path/to/agalite [--out DIR]

The authors' code is not copied here: `--authors-repo` points at a checkout, whose
self-contained `src_pure/models/agalite.py` (`BatchedAGaLiTe`) and
`src_pure/models/gtrxl.py` (`BatchedGTrXL`) are imported from it.

Paper configuration: 4 layers, d_model 128, 4 heads, d_head 64, FFN 128, eta 4, r 2,
GTrXL memory 128, input 16. Two measurements, timed together (interleaved medians
after warm-up, `relit_eqx.bench.timing`):

- training: `grad` of the summed outputs w.r.t. the weights, T = 128, batch 16;
- per-step inference: one step (T = 1) with a carried state, batch 1 and 64, timed two
  ways: interleaved with the other models' steps (each call starts with the caches
  holding another model's weights), and back to back (`warm`: a model's calls in a row,
  as in a rollout, where its weights stay in the caches).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from relit_eqx.bench.inference import step_fn
from relit_eqx.bench.timing import (
    build_model,
    markdown_table,
    time_interleaved,
    write_results,
)
from relit_eqx.bench.training import grad_fn
from relit_eqx.rl.presets import MODEL_SIZES

D_IN, T, B_TRAIN = 16, 128, 16
PAPER = dict(n_layers=4, d_model=128, n_heads=4, d_head=64, d_ffn=128, eta=4, r=2, memory=128)


def _load(path: Path, name: str) -> Any:
    if not path.exists():
        sys.exit(f"authors_flax.py: error: {path} not found; is --authors-repo a checkout?")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def authors_models(repo: Path) -> dict[str, tuple[Any, Any]]:
    """`label -> (flax module, carry(batch))` for the authors' AGaLiTe and GTrXL."""
    ag = _load(repo / "src_pure" / "models" / "agalite.py", "authors_agalite")
    gt = _load(repo / "src_pure" / "models" / "gtrxl.py", "authors_gtrxl")
    p = PAPER
    arelit = ag.BatchedAGaLiTe(
        n_layers=p["n_layers"],
        d_model=p["d_model"],
        d_head=p["d_head"],
        d_ffc=p["d_ffn"],
        n_heads=p["n_heads"],
        eta=p["eta"],
        r=p["r"],
    )
    gtrxl = gt.BatchedGTrXL(
        head_dim=p["d_head"],
        embedding_dim=p["d_model"],
        head_num=p["n_heads"],
        mlp_num=2,
        layer_num=p["n_layers"],
        memory_len=p["memory"],
    )
    return {
        "authors AReLiT": (
            arelit,
            lambda b: ag.BatchedAGaLiTe.initialize_carry(
                b, p["n_layers"], p["n_heads"], p["d_head"], p["eta"], p["r"]
            ),
        ),
        "authors GTrXL M128": (
            gtrxl,
            lambda b: gt.BatchedGTrXL.initialize_carry(b, p["memory"], p["d_model"], p["n_layers"]),
        ),
    }


def time_back_to_back(
    fns: dict[str, tuple[Any, Any]], *, calls: int = 101, rounds: int = 3
) -> dict[str, float]:
    """Median seconds per call of each `fn(*args)`, its calls in a row (after warm-up);
    `rounds` passes over the candidates, in rotated order, pooled."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn, args = fns[name]
            for _ in range(5):
                jax.block_until_ready(fn(*args))
            for _ in range(calls):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(*args))
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-repo", type=Path, required=True, help="a checkout")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="directory for the results")
    args = parser.parse_args()
    key = jax.random.PRNGKey(0)
    theirs = authors_models(args.authors_repo)
    ours = {
        "ours AReLiT": build_model("arelit", D_IN, key, **MODEL_SIZES["arelit"]),
        "ours GTrXL M128": build_model("gtrxl", D_IN, key, **MODEL_SIZES["gtrxl"]),
    }

    def their_inputs(b: int, t: int):
        xs = jax.random.normal(key, (t, b, D_IN))
        resets = jnp.zeros((t, b), bool).at[0].set(t > 1)
        return xs, resets

    rows: list[dict[str, Any]] = []
    # Training: grad of the summed outputs, T = 128, batch 16.
    cands: dict[str, Any] = {}
    xs, resets = their_inputs(B_TRAIN, T)
    for label, (module, carry) in theirs.items():
        c = carry(B_TRAIN)
        params = module.init(key, c, (xs, resets))

        @jax.jit
        def grad(params, c, x, module=module):
            return jax.grad(lambda p: module.apply(p, c, x)[1].sum())(params)

        cands[label] = (grad, (params, c, (xs, resets)))
    ours_grad = grad_fn()
    bxs, bresets = jnp.swapaxes(xs, 0, 1), jnp.swapaxes(resets, 0, 1)
    for label, model in ours.items():
        state = jax.vmap(lambda _, m=model: m.init_state())(jnp.arange(B_TRAIN))
        cands[label] = (ours_grad, (model, bxs, bresets, state))
    for label, t in time_interleaved(cands, repeats=args.repeats, warmup=1).items():
        rows.append({"what": f"fwd+bwd T={T} B={B_TRAIN}", "model": label, "ms": t.median * 1e3})

    # Per-step inference: one step with a carried state.
    steps = {label: step_fn(model) for label, model in ours.items()}
    for b in (1, 64):
        cands = {}
        x1, r1 = their_inputs(b, 1)
        for label, (module, carry) in theirs.items():
            c = carry(b)
            params = module.init(key, c, (x1, r1))
            cands[label] = (jax.jit(module.apply), (params, c, (x1, r1)))
        for label, model in ours.items():
            state = jax.vmap(lambda _, m=model: m.init_state())(jnp.arange(b))
            step, leaves = steps[label]
            cands[label] = (step, (leaves, x1[0], r1[0], state))
        for label, t in time_interleaved(cands, repeats=args.repeats * 3, warmup=2).items():
            rows.append({"what": f"step B={b}", "model": label, "ms": t.median * 1e3})
        for label, seconds in time_back_to_back(cands).items():
            rows.append({"what": f"step B={b} warm", "model": label, "ms": seconds * 1e3})

    for r in rows:
        side = r["model"].split()[0]
        base = next(
            x for x in rows if x["what"] == r["what"] and x["model"] == f"{side} GTrXL M128"
        )
        r["vs_same_side_GTrXL"] = r["ms"] / base["ms"]
        other = r["model"].replace(side, "authors" if side == "ours" else "ours", 1)
        twin = next(x for x in rows if x["what"] == r["what"] and x["model"] == other)
        r["ours_vs_authors"] = r["ms"] / twin["ms"] if side == "ours" else ""
    table = markdown_table(rows, ["what", "model", "ms", "vs_same_side_GTrXL", "ours_vs_authors"])
    write_results(args.out, "authors_flax", {"config": PAPER, "rows": rows}, table)


if __name__ == "__main__":
    main()
