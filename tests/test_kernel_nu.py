"""The authors' `pp_relu` with `nu` is our `pp_relu` with `eta = nu`, and their ReLiT
(GaLiTe, `projected_sigmoid`) layer is our `ReLiTAttention` with their weights.

The reference is written here in NumPy (float64) from the equations of the authors'
`src/models/agalite/galite.py` and `layers.py`: per head, separate dense layers for
`φ(k)`, `v`, `β`, `γ`, and a query of two stacked dense layers; outer-product features
x-major (`ParameteredProjection`: `vec(f(x W + b) ⊗ f(x W' + b'))` with `W'` of width
`nu`); the readout `C q / (sᵀq + ε)`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from relit_eqx.kernels import get_kernel
from relit_eqx.nn.attention import ReLiTAttention

D, H, d, NU, T = 8, 2, 4, 2, 7
EPS = 1e-6


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x):
    return np.maximum(x, 0.0)


def _projection(x, w, b, w_nu, b_nu, f):
    """The authors' `ParameteredProjection`: x-major `vec(f(xW + b) ⊗ f(xW' + b'))`."""
    return np.outer(f(x @ w + b), f(x @ w_nu + b_nu)).reshape(-1)


def _head_weights(rng):
    def dense(n_in, n_out):
        return rng.normal(size=(n_in, n_out)) / np.sqrt(n_in), 0.3 * rng.normal(size=n_out)

    names = ("k", "pk", "v", "beta", "g", "pg", "q1", "q2", "pq")
    shapes = ((D, d), (D, NU), (D, d), (D, d), (D, d), (D, NU), (D, d), (d, d), (d, NU))
    return {n: dense(*s) for n, s in zip(names, shapes, strict=True)}


def _authors_layer(x, resets, heads, out):
    """Their multi-head GaLiTe attention with `projected_sigmoid`, one step at a time."""
    outs = []
    for w in heads:
        C, s = np.zeros((d, d * NU)), np.zeros(d * NU)
        o = []
        for t in range(T):
            if resets[t]:
                C, s = np.zeros_like(C), np.zeros_like(s)
            xt = x[t]
            k = _projection(xt, *w["k"], *w["pk"], _relu)
            v = xt @ w["v"][0] + w["v"][1]
            beta = _sigmoid(xt @ w["beta"][0] + w["beta"][1])
            gamma = _projection(xt, *w["g"], *w["pg"], _sigmoid)
            cw = np.outer(beta, gamma)
            C = C * (1 - cw) + np.outer(v, k) * cw
            s = s * (1 - gamma) + k * gamma
            z = xt @ w["q1"][0] + w["q1"][1]
            q = _projection(z, *w["q2"], *w["pq"], _relu)
            o.append(C @ q / (s @ q + EPS))
        outs.append(np.stack(o))
    return np.concatenate(outs, axis=-1) @ out[0] + out[1]


def _ours(heads, out, method):
    """Our layer with their weights: the query's two layers composed, per head
    `[k q v β γ p1 p2 p3]`."""
    weights, biases = [], []
    for w in heads:
        (w1, b1), (w2, b2), (w3, b3) = w["q1"], w["q2"], w["pq"]
        parts = (w["k"], (w1 @ w2, b1 @ w2 + b2), w["v"], w["beta"], w["g"], w["pk"],
                 (w1 @ w3, b1 @ w3 + b3), w["pg"])  # fmt: skip
        weights.append(np.concatenate([p[0] for p in parts], axis=1))
        biases.append(np.concatenate([p[1] for p in parts]))
    layer = ReLiTAttention(
        D, n_heads=H, d_head=d, eta=NU, kernel="pp_relu", update_rule="projected_sigmoid",
        method=method, eps=EPS, key=jax.random.PRNGKey(0),
    )  # fmt: skip
    new = (np.concatenate(weights, axis=1), np.concatenate(biases), *out)
    return eqx.tree_at(
        lambda m: (m.proj.weight, m.proj.bias, m.out.weight, m.out.bias),
        layer,
        tuple(jnp.asarray(a, jnp.float32) for a in new),
    )


def test_nu_is_eta_feature_width():
    """Their `kernel_config_to_output_dim` for `pp_relu` is `nu·d`: ours at `eta = nu`."""
    assert get_kernel("pp_relu").feature_dim(d, NU) == NU * d


def test_features_are_theirs_permuted():
    rng = np.random.default_rng(0)
    x, p = rng.normal(size=d), rng.normal(size=NU)
    ours = np.asarray(
        get_kernel("pp_relu")(jnp.asarray(x, jnp.float32), jnp.asarray(p, jnp.float32))
    )
    theirs = np.outer(_relu(x), _relu(p)).reshape(-1)  # x-major: feature i_x·nu + i_p
    perm = np.arange(d * NU).reshape(d, NU).T.reshape(-1)  # ours p-major: i_p·d + i_x
    np.testing.assert_allclose(ours, theirs[perm], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["scan", "associative"])
def test_relit_attention_is_authors_galite_layer(method):
    rng = np.random.default_rng(1)
    heads = [_head_weights(rng) for _ in range(H)]
    out = (rng.normal(size=(H * d, D)) / np.sqrt(H * d), 0.3 * rng.normal(size=D))
    x = rng.normal(size=(T, D))
    resets = np.zeros(T, bool)
    resets[[0, 4]] = True
    expected = _authors_layer(x, resets, heads, out)

    layer = _ours(heads, out, method)
    xs, rs = jnp.asarray(x, jnp.float32), jnp.asarray(resets)
    ys, _ = layer(xs, rs, layer.init_state())
    np.testing.assert_allclose(np.asarray(ys), expected, rtol=1e-4, atol=1e-5)

    state, steps = layer.init_state(), []
    for t in range(T):
        y, state = layer.step(xs[t], rs[t], state)
        steps.append(y)
    np.testing.assert_allclose(np.asarray(jnp.stack(steps)), expected, rtol=1e-4, atol=1e-5)


def test_embed_relu_false_is_galites_linear_embedding():
    """`ReLiT(embed_relu=False)` runs its blocks on the linear embedding (the authors'
    GaLiTe); the default applies relu first. The reference runs the same blocks by
    hand on both embeddings."""
    from relit_eqx.models import get_model
    from relit_eqx.rl.presets import PAPER_TMAZE_SIZES

    assert PAPER_TMAZE_SIZES["relit"]["embed_relu"] is False
    kw = dict(d_model=8, n_layers=2, n_heads=2, d_head=4, d_ffn=8, eta=2)
    key = jax.random.PRNGKey(3)
    xs = jax.random.normal(jax.random.PRNGKey(4), (6, 5))
    resets = jnp.zeros(6, bool).at[3].set(True)
    # Jitted: op by op, every scan of the blocks compiles anew (~40 s).
    run = eqx.filter_jit(lambda m: m(xs, resets, m.init_state())[0])

    @eqx.filter_jit
    def by_hand(model, relu):
        h = xs @ model.stack.embed.weight + model.stack.embed.bias[None]  # weight [d_in, d_out]
        h = jnp.maximum(h, 0.0) if relu else h
        for block, st in zip(model.stack.blocks, model.init_state(), strict=True):
            h, _ = block(h, resets, st)
        return h

    for relu in (False, True):
        model = get_model("relit")(5, **kw, embed_relu=relu, key=key)
        ys = run(model)
        np.testing.assert_allclose(ys, by_hand(model, relu), rtol=1e-5, atol=1e-6)
    # With these weights the two embeddings differ, so the switch is not a no-op.
    other = get_model("relit")(5, **kw, embed_relu=True, key=key)
    assert float(jnp.max(jnp.abs(run(other) - ys))) == 0.0
    linear = get_model("relit")(5, **kw, embed_relu=False, key=key)
    assert float(jnp.max(jnp.abs(run(linear) - ys))) > 1e-3
