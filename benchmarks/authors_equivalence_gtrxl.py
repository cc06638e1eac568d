"""Our `GTrXL` against the authors' Flax GTrXL with the same weights: outputs and gradients.

    pip install flax            # only for this script; never a dependency of relit_eqx
    python benchmarks/authors_equivalence_gtrxl.py --authors-repo /path/to/agalite

The authors' `src/models/gtrxl.py` (`GTrXL`, the baseline their `config/tmaze/gtrxl128.yaml`
trains: 4 layers, d_model 128, 4 heads of 64, memory 128) is imported from the checkout
(not copied here) and initialised with its own initialisers; its weights are written into
our `GTrXL` (`port`). Inputs: batch 4, 256 steps, resets at the first step and at step
200 of two sequences. Compared:

- the training form on the first 128 steps from an empty memory: outputs, and the
  gradients of the summed squared outputs with respect to every one of the authors'
  weights (ours pulled back through `port`);
- the training form on steps 128-255, continuing from the memory of the first segment;
- the per-step (inference) form over all 256 steps, twice the memory length.

Differences between the codes, and what the script does about them:

- **Query input.** Their layer computes the query from the layer's raw input and only
  the keys and values from the layer-normed input (`attention(inputs, ..., x1, ...)`,
  as in DI-engine's GTrXL); ours (and Parisotto et al.) normalise the query too.
  `--query-as-ours` runs their attention with the normalised query (a subclass of their
  `AttentionXL` that passes it on); without it the difference is what is printed.
- **Window of the training form.** Their training form lets the query at step `t` of a
  segment see the whole memory (`M` steps before the segment) and the segment up to `t`,
  i.e. up to `M + t` steps back; their per-step form sees `M`. Ours sees `M` in both
  (the training form equals the per-step form). From an empty memory with `T ≤ M` the
  two agree; on a continuing segment they do not, and neither does their training form
  agree with their own per-step form: both printed.
- **Biases.** Their four attention layers have biases. The key and positional biases add
  a per-query constant to the scores (no effect after the softmax); the query bias is
  folded into our per-layer `u`, `v` (theirs are shared by all layers, ours per layer);
  the value and output biases add a learned constant `W_o b_v + b_o` to the attention
  output, which ours does not have (zero at initialisation; their gradients are printed
  apart). Their GRU gate bias `b_g` is learned (ours a constant 2); printed apart.
- Layer-norm `ε`: theirs 1e-6, ours 1e-5; set to theirs for every comparison except
  the "as shipped" line.
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
SIZES = dict(n_layers=4, d_model=128, n_heads=4, d_head=64, d_ffn=128, memory_length=128)


def _authors_module(repo: Path) -> Any:
    if not (repo / "src" / "models" / "gtrxl.py").exists():
        sys.exit(f"authors_equivalence_gtrxl.py: error: {repo} has no src/models/gtrxl.py")
    sys.path.insert(0, str(repo))
    import src.models.gtrxl as module  # type: ignore[import-not-found]

    return module


def _normed_query(module: Any) -> Any:
    """Give their layers an attention that takes the query from the layer-normed input
    while the returned class's `normed` is true (their layers look the class up when they
    are set up, at each `apply`)."""
    base = module.AttentionXL

    class AttentionNormedQuery(base):  # type: ignore[misc, valid-type]
        normed = True

        def __call__(self, inputs, pos_embedding, full_input, u, v, mask=None):
            if AttentionNormedQuery.normed:
                inputs = full_input[full_input.shape[0] - inputs.shape[0] :]
            return super().__call__(inputs, pos_embedding, full_input, u, v, mask)

    module.AttentionXL = AttentionNormedQuery
    return AttentionNormedQuery


def _gate(g: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
    w = jnp.concatenate([g["Wr"]["kernel"], g["Wz"]["kernel"], g["Wg"]["kernel"]], axis=1)
    u = jnp.concatenate([g["Ur"]["kernel"], g["Uz"]["kernel"]], axis=1)
    return w, u, g["Ug"]["kernel"]


def _ours_view(m: relit_eqx.GTrXL, i: int) -> tuple[jax.Array, ...]:
    b = m.stack.blocks[i]
    a = b.mixer
    return (
        a.query_proj.weight, a.key_proj.weight, a.value_proj.weight, a.output_proj.weight,
        a.position_proj, a.content_bias, a.position_bias,
        b.norm1.weight, b.norm1.bias, b.norm2.weight, b.norm2.bias,
        b.dense1.weight, b.dense1.bias, b.dense2.weight, b.dense2.bias,
        b.gate1.w.weight, b.gate1.u.weight, b.gate1.u_g.weight,
        b.gate2.w.weight, b.gate2.u.weight, b.gate2.u_g.weight,
    )  # fmt: skip


def _theirs_view(tree: dict, i: int, H: int, d: int) -> tuple[jax.Array, ...]:
    layer = tree[f"layers_{i}"]
    a = layer["attention"]
    kv = a["attention_kv"]["kernel"]
    D = kv.shape[0]
    b_q = a["attention_q"]["bias"].reshape(H, d)
    mlp = layer["mlp"]
    return (
        a["attention_q"]["kernel"], kv[:, : H * d], kv[:, H * d :], a["project"]["kernel"],
        jnp.transpose(a["project_pos"]["kernel"].reshape(D, H, d), (1, 2, 0)),
        tree["u"] + b_q, tree["v"] + b_q,
        layer["layernorm1"]["scale"], layer["layernorm1"]["bias"],
        layer["layernorm2"]["scale"], layer["layernorm2"]["bias"],
        mlp["layers_0"]["layers_0"]["kernel"], mlp["layers_0"]["layers_0"]["bias"],
        mlp["layers_2"]["layers_0"]["kernel"], mlp["layers_2"]["layers_0"]["bias"],
        *_gate(layer["gate1"]), *_gate(layer["gate2"]),
    )  # fmt: skip


def port(ours: relit_eqx.GTrXL, theirs: dict) -> relit_eqx.GTrXL:
    """`ours` with the weights of the authors' GTrXL parameter tree `theirs`
    (differentiable in `theirs`). Their value and output biases have no counterpart."""
    mixer = ours.stack.blocks[0].mixer
    emb = theirs["embedding"]["layers_0"]
    ours = eqx.tree_at(
        lambda m: (m.stack.embed.weight, m.stack.embed.bias), ours, (emb["kernel"], emb["bias"])
    )
    for i in range(len(ours.stack.blocks)):
        new = _theirs_view(theirs, i, mixer.n_heads, mixer.d_head)
        ours = eqx.tree_at(lambda m, i=i: _ours_view(m, i), ours, new)
    return ours


def _layer_norm_eps(model: relit_eqx.GTrXL, eps: float) -> None:
    for b in model.stack.blocks:  # static fields: set on the (frozen) modules in place
        object.__setattr__(b.norm1, "eps", eps)
        object.__setattr__(b.norm2, "eps", eps)


def _max(a: jax.Array) -> float:
    return float(jnp.max(jnp.abs(a)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--authors-repo", type=Path, required=True)
    args = p.parse_args()
    module = _authors_module(args.authors_repo)
    shipped_cls = module.GTrXL
    s = SIZES
    H, d, M, L = s["n_heads"], s["d_head"], s["memory_length"], s["n_layers"]

    def authors(module: Any) -> Any:
        return module.GTrXL(
            head_dim=d, embedding_dim=s["d_model"], head_num=H, mlp_num=2, layer_num=L,
            memory_len=M, dropout_ratio=0.0, gru_gating=True, gru_bias=2.0,
            reset_on_terminate=True,
        )  # fmt: skip

    switch = _normed_query(module)
    aligned = authors(module)
    memory0 = shipped_cls.initialize_state(M, s["d_model"], L)
    k_x, k_init, k_ours = jax.random.split(jax.random.PRNGKey(0), 3)
    xs = jax.random.normal(k_x, (2 * T, B, D_IN))
    resets = jnp.zeros((2 * T, B), bool).at[0].set(True).at[200, :2].set(True)
    params = aligned.init(k_init, xs[:T, 0], resets[:T, 0], memory0)
    tree = params["params"]
    memories = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (B, *a.shape)), memory0)

    def their_train(model, params, x, r, mem):  # x [T, B, d_in] -> [T, B, D], memories
        run = lambda x, r, m: model.apply(params, x, r, m)  # noqa: E731
        ys, mem = jax.vmap(run, in_axes=(1, 1, 0), out_axes=(1, 0))(x, r, mem)
        return ys, mem

    @jax.jit
    def their_steps(params, x, r, mem):
        def one(mem, xr):
            y, mem = their_train(aligned, params, xr[0][None], xr[1][None], mem)
            return mem, y[0]

        return jax.lax.scan(one, mem, (x, r))[1]

    base = relit_eqx.GTrXL(D_IN, **s, key=k_ours)
    ours = port(base, tree)
    _layer_norm_eps(ours, 1e-6)

    def our_train(model, x, r, state):
        return jax.vmap(model, in_axes=(1, 1, 0), out_axes=(1, 0))(x, r, state)

    def our_steps(model, x, r):
        state = jax.vmap(lambda _: model.init_state())(jnp.arange(B))

        def one(st, xr):
            y, st = jax.vmap(model.step)(xr[0], xr[1], st)
            return st, y

        return jax.lax.scan(one, state, (x, r))[1]

    state0 = jax.vmap(lambda _: ours.init_state())(jnp.arange(B))
    y1_t, mem1 = their_train(aligned, params, xs[:T], resets[:T], memories)
    y2_t, _ = their_train(aligned, params, xs[T:], resets[T:], mem1)
    y1_o, st1 = our_train(ours, xs[:T], resets[:T], state0)
    y2_o, _ = our_train(ours, xs[T:], resets[T:], st1)
    ys_t = their_steps(params, xs, resets, memories)
    ys_o = our_steps(ours, xs, resets)
    switch.normed = False  # their query as shipped: from the raw layer input
    y1_shipped, _ = their_train(aligned, params, xs[:T], resets[:T], memories)
    switch.normed = True
    plain = port(base, tree)
    y1_plain, _ = our_train(plain, xs[:T], resets[:T], state0)

    print(f"authors' GTrXL vs our GTrXL: M={M}, batch {B}, resets at step 0 and 200; "
          f"max |y_theirs| = {_max(y1_t):.2f}")  # fmt: skip
    print(f"  as shipped (their raw-input query, our layer-norm eps), steps 0-127: "
          f"max |ours - theirs| = {_max(y1_plain - y1_shipped):.2e}")  # fmt: skip
    print("  with their query normalised as ours, layer-norm eps as theirs:")
    print(f"    training form, steps 0-127 (empty memory): {_max(y1_o - y1_t):.2e}")
    print(f"    training form, steps 128-255 (memory of steps 0-127): {_max(y2_o - y2_t):.2e}")
    print(f"    per-step form, steps 0-255: {_max(ys_o - ys_t):.2e}")
    print(f"    their training form vs their per-step form, steps 128-255: "
          f"{_max(y2_t - ys_t[T:]):.2e}; ours: {_max(y2_o - ys_o[T:]):.2e}")  # fmt: skip

    def their_loss(params):
        return jnp.sum(their_train(aligned, params, xs[:T], resets[:T], memories)[0] ** 2)

    def our_loss(tree):
        model = port(base, tree)
        _layer_norm_eps(model, 1e-6)
        return jnp.sum(our_train(model, xs[:T], resets[:T], state0)[0] ** 2)

    g_theirs = jax.grad(their_loss)(params)["params"]
    g_ours = dict(jax.tree_util.tree_leaves_with_path(jax.grad(our_loss)(tree)))
    worst, worst_name, n = 0.0, "", 0
    apart = dict.fromkeys(("b_g", "key bias", "positional bias", "value bias", "output bias"), 0.0)
    for path, gt in jax.tree_util.tree_leaves_with_path(g_theirs):
        name = jax.tree_util.keystr(path)
        if "bgp" in name:
            apart["b_g"] = max(apart["b_g"], _max(gt))
        elif "attention_kv']['bias" in name:  # keys (no effect), values (no counterpart)
            apart["key bias"] = max(apart["key bias"], _max(gt[: H * d]))
            apart["value bias"] = max(apart["value bias"], _max(gt[H * d :]))
        elif "project_pos']['bias" in name:
            apart["positional bias"] = max(apart["positional bias"], _max(gt))
        elif "project']['bias" in name:
            apart["output bias"] = max(apart["output bias"], _max(gt))
        else:
            rel = _max(g_ours[path] - gt) / (_max(gt) + 1e-30)
            n += 1
            if rel > worst:
                worst, worst_name = rel, name
    print(f"  gradients, steps 0-127, {n} of the authors' weight arrays: max over arrays of "
          f"max |ours - theirs| / max |theirs| = {worst:.2e} ({worst_name})")  # fmt: skip
    print(
        "  their weights ours does not have, max |grad| (key and positional biases: no "
        "effect on the function): " + ", ".join(f"{k} {v:.2e}" for k, v in apart.items())
    )


if __name__ == "__main__":
    main()
