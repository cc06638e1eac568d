"""Our `AReLiT` against the authors' Flax AGaLiTe with the same weights: outputs and gradients.

    pip install flax            # only for this script; never a dependency of relit_eqx
    python benchmarks/authors_equivalence.py --authors-repo /path/to/agalite [--eps-as-authors]

The authors' `src_pure/models/agalite.py` (`BatchedAGaLiTe`) is imported from the
checkout (not copied here) and initialised with its own initialisers; its weights are
then written into our model (`port`), and both run on the same inputs: T = 128 steps,
batch 4, resets at the first step and in the middle of two sequences. Printed: the
largest difference of the outputs, and of the gradients of the summed squared outputs
with respect to every weight (as the authors' parameter, mapped to ours).

The two codes differ in three constants: the readout's `ε` (theirs 1e-5, ours 1e-6) and
the layer norms' `ε` (theirs 1e-6, ours 1e-5); `--eps-as-authors` sets ours to theirs for
the comparison (the models are otherwise the same function). The GRU gates' bias `b_g`
is a learned parameter in theirs (initially 2) and a constant in ours.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

import relit_eqx

D_IN, T, B = 16, 128, 4
PAPER = dict(n_layers=4, d_model=128, n_heads=4, d_head=64, d_ffn=128, eta=4, r=2)


def _load(path: Path) -> Any:
    if not path.exists():
        sys.exit(f"authors_equivalence.py: error: {path} not found; is --authors-repo a checkout?")
    spec = importlib.util.spec_from_file_location("authors_agalite", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _proj(attn: dict, H: int, d: int, e: int, leaf: str) -> jax.Array:
    """Their two projections (`[k q v β γ]` and `[p1 p2 p3]`, each head-major) as our
    fused one (`[k q v β γ p1 p2 p3]` per head)."""
    main, ps = attn["linear_kqvbetagammas"][leaf], attn["linear_p1p2p3"][leaf]
    lead = main.shape[:-1]
    fused = jnp.concatenate([main.reshape(*lead, H, 5 * d), ps.reshape(*lead, H, 3 * e)], axis=-1)
    return fused.reshape(*lead, -1)


def _gate(g: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
    w = jnp.concatenate([g["Wr"]["kernel"], g["Wz"]["kernel"], g["Wg"]["kernel"]], axis=1)
    u = jnp.concatenate([g["Ur"]["kernel"], g["Uz"]["kernel"]], axis=1)
    return w, u, g["Ug"]["kernel"]


def _ours_view(m: relit_eqx.AReLiT, i: int) -> tuple[jax.Array, ...]:
    b = m.stack.blocks[i]
    return (
        b.mixer.proj.weight, b.mixer.proj.bias, b.mixer.out.weight, b.mixer.out.bias,
        b.norm1.weight, b.norm1.bias, b.norm2.weight, b.norm2.bias,
        b.dense1.weight, b.dense1.bias, b.dense2.weight, b.dense2.bias,
        b.gate1.w.weight, b.gate1.u.weight, b.gate1.u_g.weight,
        b.gate2.w.weight, b.gate2.u.weight, b.gate2.u_g.weight,
    )  # fmt: skip


def _theirs_view(layer: dict, H: int, d: int, e: int) -> tuple[jax.Array, ...]:
    a = layer["AttentionORLiTLayer_0"]
    return (
        _proj(a, H, d, e, "kernel"), _proj(a, H, d, e, "bias"),
        a["project"]["kernel"], a["project"]["bias"],
        layer["LayerNorm_0"]["scale"], layer["LayerNorm_0"]["bias"],
        layer["LayerNorm_1"]["scale"], layer["LayerNorm_1"]["bias"],
        layer["Dense_0"]["kernel"], layer["Dense_0"]["bias"],
        layer["Dense_1"]["kernel"], layer["Dense_1"]["bias"],
        *_gate(layer["GRUGatingUnit_0"]), *_gate(layer["GRUGatingUnit_1"]),
    )  # fmt: skip


def port(ours: relit_eqx.AReLiT, theirs: dict, n_layers: int) -> relit_eqx.AReLiT:
    """`ours` with the weights of the authors' parameter tree `theirs`."""
    mixer = ours.stack.blocks[0].mixer
    H, d, e = mixer.n_heads, mixer.d_head, mixer.eta
    emb = theirs["layer1"]["emb_layer"]
    ours = eqx.tree_at(
        lambda m: (m.stack.embed.weight, m.stack.embed.bias), ours, (emb["kernel"], emb["bias"])
    )
    for i in range(n_layers):
        new = _theirs_view(theirs[f"layer{i + 1}"], H, d, e)
        ours = eqx.tree_at(lambda m, i=i: _ours_view(m, i), ours, new)
    return ours


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--authors-repo", type=Path, required=True)
    p.add_argument("--eps-as-authors", action="store_true")
    args = p.parse_args()
    ag = _load(args.authors_repo / "src_pure" / "models" / "agalite.py")
    cfg = PAPER
    theirs = ag.BatchedAGaLiTe(
        n_layers=cfg["n_layers"], d_model=cfg["d_model"], d_head=cfg["d_head"],
        d_ffc=cfg["d_ffn"], n_heads=cfg["n_heads"], eta=cfg["eta"], r=cfg["r"],
    )  # fmt: skip
    carry = ag.BatchedAGaLiTe.initialize_carry(
        B, cfg["n_layers"], cfg["n_heads"], cfg["d_head"], cfg["eta"], cfg["r"]
    )
    k_x, k_init, k_ours = jax.random.split(jax.random.PRNGKey(0), 3)
    xs = jax.random.normal(k_x, (T, B, D_IN))
    resets = jnp.zeros((T, B), bool).at[0].set(True).at[T // 2, :2].set(True)
    params = theirs.init(k_init, carry, (xs, resets))
    tree = params["params"]["VmapAGaLiTe_0"]

    ours = relit_eqx.AReLiT(D_IN, key=k_ours, **cfg)
    ours = port(ours, tree, cfg["n_layers"])
    if args.eps_as_authors:
        for b in ours.stack.blocks:  # static fields: set on the (frozen) modules in place
            object.__setattr__(b.norm1, "eps", 1e-6)
            object.__setattr__(b.norm2, "eps", 1e-6)
            object.__setattr__(b.mixer, "eps", 1e-5)

    def their_loss(params):
        return jnp.sum(theirs.apply(params, carry, (xs, resets))[1] ** 2)

    def our_loss(m):
        state = jax.vmap(lambda _: m.init_state())(jnp.arange(B))
        ys, _ = jax.vmap(m, in_axes=(1, 1, 0))(xs, resets, state)
        return jnp.sum(ys**2), ys

    y_theirs = theirs.apply(params, carry, (xs, resets))[1]
    (_, y_ours), g_ours = eqx.filter_value_and_grad(our_loss, has_aux=True)(ours)
    g_theirs = port(ours, jax.grad(their_loss)(params)["params"]["VmapAGaLiTe_0"], cfg["n_layers"])
    dy = float(jnp.max(jnp.abs(jnp.swapaxes(y_ours, 0, 1) - y_theirs)))
    print(f"outputs [T={T}, B={B}, d_model]: max |ours - theirs| = {dy:.2e} "
          f"(max |y| = {float(jnp.max(jnp.abs(y_theirs))):.2f})")  # fmt: skip
    leaves_o = jax.tree_util.tree_leaves(eqx.filter(g_ours, eqx.is_array))
    leaves_t = jax.tree_util.tree_leaves(eqx.filter(g_theirs, eqx.is_array))
    worst = max(
        float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))
        for a, b in zip(leaves_o, leaves_t, strict=True)
    )
    print(f"gradients, {len(leaves_o)} weight arrays: max over arrays of "
          f"max |ours - theirs| / max |theirs| = {worst:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
