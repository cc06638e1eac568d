"""Our `ReLiT` against the authors' Flax GaLiTe (their T-Maze ReLiT) with the same weights.

    pip install flax            # only for this script; never a dependency of relit_eqx
    python benchmarks/authors_equivalence_relit.py --authors-repo /path/to/agalite

The authors' `src/models/agalite/galite.py` (`GaLiTe`, the model their
`config/tmaze/relit.yaml` trains: `update_rule: projected_sigmoid`, kernel `pp_relu`
with `nu: 2`, `flow: gtrxl`) is imported from the checkout (not copied here) and
initialised with its own initialisers; its weights are written into our
`ReLiT(eta=2, kernel="pp_relu", update_rule="projected_sigmoid")` (`port`), and both run
on the same inputs at the paper's sizes: T = 128, batch 4, resets at the first step and
in the middle of two sequences. Printed: the largest difference of the outputs, and of
the gradients of the summed squared outputs with respect to every one of the authors'
weights (ours pulled back through `port`, so an over-parametrised weight of theirs gets
the gradient our model implies for it).

The two codes compute the same function up to these differences, each switchable here:

- **Input embedding.** GaLiTe's first layer embeds the input with a linear layer and no
  activation; our `Stack` (shared by all our transformers, and the authors' AGaLiTe)
  applies `relu` after it unless `embed_relu=False`, which is GaLiTe's (and the paper
  settings' `PAPER_TMAZE_SIZES["relit"]`). Both are run.
- **Constants.** Their layer norms' `ε` is 1e-6 (ours 1e-5) and their readout adds
  1e-10 to `sᵀφ(q)` (ours 1e-6); `--eps-as-authors` sets ours to theirs.
- **Query parametrisation** (no effect on the function): their query is
  `φ(W₂(W₁x + b₁) + b₂, W₃(W₁x + b₁) + b₃)`, two stacked linear layers where ours has
  one (`W_q = W₁W₂`, `W_p2 = W₁W₃`); the gradients are compared in their
  parametrisation. Optimisers see different parameters, so training differs.
- **GRU gate bias** `b_g`: a learned vector in theirs (initially 2), a constant in ours;
  its gradient has no counterpart and is printed apart.
- Feature layout: their outer-product features are x-major, ours p-major; the same
  permutation applies to keys, queries and `γ`, so the function is unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

import relit_eqx

D_IN, T, B = 16, 128, 4
SIZES = dict(n_layers=4, d_model=128, n_heads=4, d_head=64, d_ffn=128)
NU = 2
KERNEL = {"name": "pp_relu", "nu": NU}


def _authors_galite(repo: Path) -> Any:
    if not (repo / "src" / "models" / "agalite" / "galite.py").exists():
        sys.exit(f"authors_equivalence_relit.py: error: {repo} has no src/models/agalite/galite.py")
    if not hasattr(jax, "tree_map"):  # their code calls jax.tree_map, removed in jax 0.6
        jax.tree_map = jax.tree_util.tree_map  # type: ignore[attr-defined]
    sys.path.insert(0, str(repo))
    from src.models.agalite.galite import GaLiTe  # type: ignore[import-not-found]

    return GaLiTe


def _dense(p: dict) -> tuple[jax.Array, jax.Array]:
    return p["kernel"], p["bias"]


def _gate(g: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
    w = jnp.concatenate([g["Wr"]["kernel"], g["Wz"]["kernel"], g["Wg"]["kernel"]], axis=1)
    u = jnp.concatenate([g["Ur"]["kernel"], g["Uz"]["kernel"]], axis=1)
    return w, u, g["Ug"]["kernel"]


def _fused_projection(attn: dict) -> tuple[jax.Array, jax.Array]:
    """Their per-head layers (leading head axis) as our fused projection
    `[k q v β γ p1 p2 p3]` per head, head-major; the query's two stacked layers composed."""
    csop = attn["csop"]
    k, pk = (
        _dense(csop["ParameteredProjection_0"]["Dense_0"]),
        _dense(csop["ParameteredProjection_0"]["Dense_1"]),
    )
    v, beta = _dense(csop["Dense_0"]), _dense(csop["Dense_1"])
    g, pg = (
        _dense(csop["ParameteredProjection_1"]["Dense_0"]),
        _dense(csop["ParameteredProjection_1"]["Dense_1"]),
    )
    (w1, b1) = _dense(attn["Dense_0"])  # [H, D, d]: the query's first layer
    (w2, b2) = _dense(attn["ParameteredProjection_0"]["Dense_0"])  # [H, d, d]
    (w3, b3) = _dense(attn["ParameteredProjection_0"]["Dense_1"])  # [H, d, nu]
    q = (jnp.einsum("hij,hjk->hik", w1, w2), jnp.einsum("hj,hjk->hk", b1, w2) + b2)
    pq = (jnp.einsum("hij,hjk->hik", w1, w3), jnp.einsum("hj,hjk->hk", b1, w3) + b3)
    parts = (k, q, v, beta, g, pk, pq, pg)  # our order per head
    weight = jnp.concatenate([w for w, _ in parts], axis=-1)  # [H, D, width]
    bias = jnp.concatenate([b for _, b in parts], axis=-1)  # [H, width]
    H, D, W = weight.shape
    return jnp.swapaxes(weight, 0, 1).reshape(D, H * W), bias.reshape(H * W)


def _ours_view(m: relit_eqx.ReLiT, i: int) -> tuple[jax.Array, ...]:
    b = m.stack.blocks[i]
    return (
        b.mixer.proj.weight, b.mixer.proj.bias, b.mixer.out.weight, b.mixer.out.bias,
        b.norm1.weight, b.norm1.bias, b.norm2.weight, b.norm2.bias,
        b.dense1.weight, b.dense1.bias, b.dense2.weight, b.dense2.bias,
        b.gate1.w.weight, b.gate1.u.weight, b.gate1.u_g.weight,
        b.gate2.w.weight, b.gate2.u.weight, b.gate2.u_g.weight,
    )  # fmt: skip


def _theirs_view(layer: dict) -> tuple[jax.Array, ...]:
    a = layer["RLTAttentionLayer_0"]
    return (
        *_fused_projection(a), *_dense(a["Dense_1"]),
        layer["LayerNorm_0"]["scale"], layer["LayerNorm_0"]["bias"],
        layer["LayerNorm_1"]["scale"], layer["LayerNorm_1"]["bias"],
        *_dense(layer["Dense_0"]), *_dense(layer["Dense_1"]),
        *_gate(layer["GRUGatingUnit_0"]), *_gate(layer["GRUGatingUnit_1"]),
    )  # fmt: skip


def port(ours: relit_eqx.ReLiT, theirs: dict) -> relit_eqx.ReLiT:
    """`ours` with the weights of the authors' GaLiTe parameter tree `theirs`
    (differentiable in `theirs`)."""
    ours = eqx.tree_at(
        lambda m: (m.stack.embed.weight, m.stack.embed.bias),
        ours,
        _dense(theirs["layer0"]["emb_layer"]),
    )
    for i in range(len(ours.stack.blocks)):
        ours = eqx.tree_at(lambda m, i=i: _ours_view(m, i), ours, _theirs_view(theirs[f"layer{i}"]))
    return ours


def _set_eps(model: relit_eqx.ReLiT, norm_eps: float, readout_eps: float) -> None:
    for b in model.stack.blocks:  # static fields: set on the (frozen) modules in place
        object.__setattr__(b.norm1, "eps", norm_eps)
        object.__setattr__(b.norm2, "eps", norm_eps)
        object.__setattr__(b.mixer, "eps", readout_eps)


def our_outputs(model: relit_eqx.ReLiT, xs: jax.Array, resets: jax.Array) -> jax.Array:
    """Our outputs `[T, B, d_model]`, each sequence from the initial state."""
    return jax.vmap(lambda x, r: model(x, r, model.init_state())[0], in_axes=(1, 1), out_axes=1)(
        xs, resets
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--authors-repo", type=Path, required=True)
    p.add_argument("--method", default="associative", choices=("associative", "scan"))
    p.add_argument("--x64", action="store_true", help="both models in float64")
    args = p.parse_args()
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    GaLiTe = _authors_galite(args.authors_repo)
    s = SIZES
    theirs = GaLiTe(
        n_layers=s["n_layers"], d_model=s["d_model"], d_head=s["d_head"], d_ffc=s["d_ffn"],
        n_heads=s["n_heads"], kernel_config=KERNEL, update_rule="projected_sigmoid",
        reset_on_terminate=True, ret_mem_ax_grad=-1, flow="gtrxl",
    )  # fmt: skip
    memory = GaLiTe.initialize_memory(s["n_layers"], s["n_heads"], s["d_head"], KERNEL)
    k_x, k_init, k_ours = jax.random.split(jax.random.PRNGKey(0), 3)
    xs = jax.random.normal(k_x, (T, B, D_IN))
    resets = jnp.zeros((T, B), bool).at[0].set(True).at[T // 2, :2].set(True)
    params = theirs.init(k_init, xs[:, 0], resets[:, 0], memory)
    if args.x64:
        xs, params, memory = jax.tree_util.tree_map(
            lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, (xs, params, memory)
        )

    def their_outputs(params):
        run = lambda x, r: theirs.apply(params, x, r, memory)[0]  # noqa: E731
        return jax.vmap(run, in_axes=(1, 1), out_axes=1)(xs, resets)

    y_theirs = their_outputs(params)
    g_theirs = jax.grad(lambda p: jnp.sum(their_outputs(p) ** 2))(params)["params"]
    tree = params["params"]
    bases = {
        relu: relit_eqx.ReLiT(
            D_IN,
            **s,
            eta=NU,
            kernel="pp_relu",
            update_rule="projected_sigmoid",
            method=args.method,
            embed_relu=relu,
            key=k_ours,
        )  # fmt: skip
        for relu in (True, False)
    }
    scale = float(jnp.max(jnp.abs(y_theirs)))
    print(f"authors' GaLiTe vs our ReLiT (method={args.method}, {'float64' if args.x64 else 'float32'}): T={T}, B={B}, "
          f"resets mid-sequence; max |y_theirs| = {scale:.2f}")  # fmt: skip
    for relu, eps in ((True, False), (False, False), (False, True)):
        ours = port(bases[relu], tree)
        if eps:
            _set_eps(ours, 1e-6, 1e-10)
        dy = float(jnp.max(jnp.abs(our_outputs(ours, xs, resets) - y_theirs)))
        print(f"  outputs, embed_relu={relu!s:5}, "
              f"eps {'as authors' if eps else 'ours      '}: max |ours - theirs| = {dy:.2e}")  # fmt: skip

    def pulled_back(tree):
        ours = port(bases[False], tree)
        _set_eps(ours, 1e-6, 1e-10)
        return jnp.sum(our_outputs(ours, xs, resets) ** 2)

    g_ours = jax.grad(pulled_back)(tree)
    flat_t = jax.tree_util.tree_leaves_with_path(g_theirs)
    flat_o = dict(jax.tree_util.tree_leaves_with_path(g_ours))
    worst, worst_name, n, bgp = 0.0, "", 0, 0.0
    for path, gt in flat_t:
        name = jax.tree_util.keystr(path)
        if "bgp" in name:
            bgp = max(bgp, float(jnp.max(jnp.abs(gt))))
            continue
        go = flat_o[path]
        rel = float(jnp.max(jnp.abs(go - gt)) / (jnp.max(jnp.abs(gt)) + 1e-30))
        n += 1
        if rel > worst:
            worst, worst_name = rel, name
    print(f"gradients (embed_relu=False, eps as authors), {n} of the authors' weight arrays: max over "
          f"arrays of max |ours - theirs| / max |theirs| = {worst:.2e} ({worst_name})")  # fmt: skip
    print(f"  their learned GRU gate biases b_g (a constant in ours): max |grad| = {bgp:.2e}")


if __name__ == "__main__":
    main()
