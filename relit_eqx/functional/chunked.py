"""The chunked form (as in gated linear attention): the fastest training form.

The sequence is split into chunks of `L` steps. The state is carried between chunks
(a `lax.scan` over `T/L` chunks, each rematerialised in the backward pass), and inside a
chunk the closed form of the Mathematics page is evaluated with decays relative to the chunk:

    C_t = (Sa_t ⊗ Sg_t) ⊙ C_0 + Σ_{i≤t} (Pa[t,i] ⊙ u_i) ⊗ (Pg[t,i] ⊙ w_i)

where `Pa[t,i] = Π_{i<l≤t} a_l` and `Sa_t = Π_{l≤t} a_l` (likewise `Pg`, `Sg` for `g`).

Overflow-free by construction: every decay product is formed as `exp(Λ_t − Λ_i)` only for
`i ≤ t` (masked to `-inf` otherwise, before `exp`), so each factor is `≤ 1` and an
underflow to `0` is the right answer; `e^{-Λ_i}` is never formed. Exact zero decays
(resets, gates equal to 1) are not logged: a per-channel count of zeros marks which
pairs they separate and the log sums restart after them, so a reset is exactly a zero
decay here too, and no gradient reaches back across it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..update_rules import UpdateRule, get_rule
from . import oscillators
from .state import AReLiTState, ReLiTState

# Decays below e^-40 ≈ 4e-18 (but not zero) are rounded up to it: their products are 0 to
# float32 precision anyway, and the floor keeps within-chunk log sums small and precise.
_LOG_FLOOR = -40.0


def _segmented_cumsum(x: Array, restart: Array) -> Array:
    """Cumulative sum along axis 0 that starts afresh wherever `restart` is true.

    Sums never reach back across a restart, so neither do their gradients: a reset stops
    the gradient exactly (a plain `cumsum` followed by differences would leave round-off).
    """

    def combine(a, b):
        (xa, ra), (xb, rb) = a, b
        return jnp.where(rb, xb, xa + xb), ra | rb

    return jax.lax.associative_scan(combine, (x, restart))[0]


def decay_products(x: Array) -> tuple[Array, Array]:
    """Products of decays `x: [L, w]` (values in `[0, 1]`) inside one chunk.

    **Returns:** `pair: [L, L, w]` with `pair[t, i] = Π_{i<l≤t} x_l` (0 for `i > t`) and
    `start: [L, w]` with `start[t] = Π_{l≤t} x_l`.
    """
    zero = x <= 0
    logx = jnp.where(zero, 0.0, jnp.maximum(jnp.log(jnp.where(zero, 1.0, x)), _LOG_FLOOR))
    cum = _segmented_cumsum(logx, zero)
    zeros_seen = jnp.cumsum(zero.astype(jnp.int32), axis=0)
    L = x.shape[0]
    causal = jnp.tril(jnp.ones((L, L), dtype=bool))[:, :, None]
    linked = causal & (zeros_seen[:, None, :] == zeros_seen[None, :, :])
    pair = jnp.exp(jnp.where(linked, cum[:, None, :] - cum[None, :, :], -jnp.inf))
    start = jnp.exp(jnp.where(zeros_seen == 0, cum, -jnp.inf))
    return pair, start


def _to_chunks(x: Array, L: int, fill: float) -> Array:
    T = x.shape[0]
    pad = (-T) % L
    x = jnp.concatenate([x, jnp.full((pad, *x.shape[1:]), fill, x.dtype)], axis=0)
    return x.reshape(-1, L, *x.shape[1:])


def _factored_inputs(rule: UpdateRule, k, v, beta, gamma, resets):
    if not rule.factored:
        raise NotImplementedError(
            f"update rule {rule.name!r} does not support method 'chunked' "
            f"(its decay does not factor); use one of {sorted(rule.methods)}"
        )
    return rule.factors(k, v, beta, gamma).with_resets(resets)


def relit_chunked(
    rule: UpdateRule,
    q: Array,
    k: Array,
    v: Array,
    beta: Array,
    gamma: Array,
    resets: Array,
    state: ReLiTState,
    eps: float,
    chunk_size: int,
) -> tuple[Array, ReLiTState]:
    """ReLiT in chunks of `chunk_size` steps: `(out [T, d], final state)`."""
    T = q.shape[0]
    L = min(chunk_size, T)
    a, g, u, w = _factored_inputs(rule, k, v, beta, gamma, resets)

    @jax.checkpoint
    def body(carry, xs):
        C, s = carry
        q, a, g, u, w = xs
        Pa, Sa = decay_products(a)
        Pg, Sg = decay_products(g)
        A = jnp.einsum("tn,tin,in->ti", q, Pg, w)  # key-side attention, i ≤ t
        qs = q * Sg
        num = jnp.einsum("ti,tim,im->tm", A, Pa, u) + Sa * (qs @ C.T)
        den = A.sum(axis=1) + qs @ s
        out = num / (den + eps)[:, None]
        ue, we = u * Pa[-1], w * Pg[-1]  # inputs decayed to the chunk's end
        C = jnp.outer(Sa[-1], Sg[-1]) * C + ue.T @ we
        s = Sg[-1] * s + we.sum(axis=0)
        return (C, s), out

    xs = tuple(_to_chunks(x, L, fill) for x, fill in ((q, 0), (a, 1), (g, 1), (u, 0), (w, 0)))
    (C, s), out = jax.lax.scan(body, (state.C, state.s), xs)
    return out.reshape(-1, v.shape[1])[:T], ReLiTState(C=C, s=s)


def arelit_chunked(
    q: Array,
    k: Array,
    v: Array,
    beta: Array,
    gamma: Array,
    resets: Array,
    state: AReLiTState,
    r: int,
    oscillator: str,
    eps: float,
    chunk_size: int,
) -> tuple[Array, AReLiTState]:
    """AReLiT in chunks of `L = chunk_size` steps, sequential depth `L + T/L` instead of `T`.

    AReLiT's per-step state `(ṽ, k̃, s)` is small (`R·(d+n) + n` floats), so this form keeps
    it for every step. Inside each chunk, all chunks at once, the recurrences run from a
    zero state while accumulating decay products `Πa`, `Πg` (no logarithms, no
    exponentials: every factor is a product of numbers in `[0, 1]`):

        ṽ_t = (Πa)_t ⊙ ṽ_start + ṽ^local_t,  k̃_t = (Πg)_t ⊙ k̃_start + k̃^local_t.

    A scan over the `T/L` chunk ends carries `ṽ_start, k̃_start, s_start` between chunks.
    """
    T = q.shape[0]
    L = min(chunk_size, T)
    c = oscillators.normaliser(r, oscillator)
    tau, feats = oscillators.counter_features(resets, state.tick, r, oscillator, v.dtype)
    a, g, u, w = get_rule("gated").factors(k, v, beta, gamma).with_resets(resets)
    # Chunk-major then time-major inside a chunk: [L, N, ...].
    xs = tuple(
        jnp.swapaxes(_to_chunks(x, L, fill), 0, 1)
        for x, fill in ((a, 1), (g, 1), (u, 0), (w, 0), (feats, 0))
    )
    N = xs[0].shape[1]
    R, d, n = feats.shape[1], v.shape[1], k.shape[1]

    def local(carry, x):
        V, K, s, Pa, Pg = carry
        a, g, u, w, f = x
        V = a[:, None, :] * V + f[:, :, None] * u[:, None, :]
        K = g[:, None, :] * K + f[:, :, None] * w[:, None, :]
        s = g * s + w
        carry = (V, K, s, a * Pa, g * Pg)
        return carry, carry

    zeros = jnp.zeros
    init = (
        zeros((N, R, d), v.dtype),
        zeros((N, R, n), v.dtype),
        zeros((N, n), v.dtype),
        jnp.ones((N, d), v.dtype),
        jnp.ones((N, n), v.dtype),
    )
    _, (Vl, Kl, sl, Pa, Pg) = jax.lax.scan(local, init, xs)

    def across(carry, ends):
        V, K, s = carry
        Ve, Ke, se, Pae, Pge = ends
        return (Pae[None, :] * V + Ve, Pge[None, :] * K + Ke, Pge * s + se), carry

    ends = (Vl[-1], Kl[-1], sl[-1], Pa[-1], Pg[-1])
    carry0 = (state.v_tilde, state.k_tilde, state.s)
    (V, K, s), (V0, K0, s0) = jax.lax.scan(across, carry0, ends)
    Vt = Pa[:, :, None, :] * V0[None] + Vl  # [L, N, R, d]
    Kt = Pg[:, :, None, :] * K0[None] + Kl
    st = Pg * s0[None] + sl
    qc = jnp.swapaxes(_to_chunks(q, L, 0), 0, 1)  # [L, N, n]
    num = jnp.einsum("lnrk,lnk,lnrd->lnd", Kt, qc, Vt)
    out = num / (c * jnp.einsum("lnk,lnk->ln", st, qc) + eps)[..., None]
    out = jnp.swapaxes(out, 0, 1).reshape(-1, d)[:T]
    return out, AReLiTState(v_tilde=V, k_tilde=K, s=s, tick=tau[-1])
