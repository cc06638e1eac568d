"""The chunked form (as in gated linear attention): the fastest training form.

The sequence is split into chunks of `L` steps. The state is carried between chunks
(a `lax.scan` over `T/L` chunks, each rematerialised in the backward pass), and inside a
chunk the closed form of the Mathematics page is evaluated with decays relative to the chunk:

    C_t = (Sa_t ⊗ Sg_t) ⊙ C_0 + Σ_{i≤t} (Pa[t,i] ⊙ u_i) ⊗ (Pg[t,i] ⊙ w_i)

where `Pa[t,i] = Π_{i<l≤t} a_l` and `Sa_t = Π_{l≤t} a_l` (likewise `Pg`, `Sg` for `g`).

Overflow-free by construction: every decay product is formed as `exp(Λ_t − Λ_i)` only for
`i ≤ t` (masked to `-inf` otherwise, before `exp`), so each factor is `≤ 1` and an
underflow to `0` is the right answer; `e^{-Λ_i}` is never formed.

Resets are applied by selection, never as a zero decay: a pair `(t, i)` on two sides of a
reset, and the carried state for the steps after a reset, are replaced by exact zeros
(`jnp.where`), so nothing before a reset (not even a NaN or an infinity, whose product
with zero is NaN) reaches the outputs, the final state or the gradients after it.

A decay that is exactly zero (a gate exactly 1) is a factor like any other: its
logarithm is not formed, a per-channel count of zeros sets the products spanning it to
exactly 0, and the derivative of such a product with respect to its single zero factor
(the product of the other factors) is carried by a term that is zero in value
(`z − stop_gradient(z)`), so gradients agree with the step loop's there too.
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
    """Cumulative sum along axis 0 that starts afresh wherever `restart` is true
    (`restart` broadcasts against `x`, e.g. `[L, 1]` or `[L, w]`).

    Sums never reach back across a restart (selection, not subtraction), so neither do
    their values (a NaN before a restart stays there) nor their gradients.
    """
    restart = jnp.broadcast_to(restart, x.shape)

    def combine(a, b):
        (xa, ra), (xb, rb) = a, b
        return jnp.where(rb, xb, xa + xb), ra | rb

    return jax.lax.associative_scan(combine, (x, restart))[0]


def segments(resets: Array) -> tuple[Array, Array]:
    """Masks of one chunk with resets `[L]`: `linked [L, L]`, true where `i ≤ t` and no
    reset lies in `(i, t]`, and `fresh [L]`, true where a reset lies in `[0, t]` (the
    state carried into the chunk no longer counts)."""
    seg = jnp.cumsum(resets.astype(jnp.int32))
    L = resets.shape[0]
    causal = jnp.tril(jnp.ones((L, L), dtype=bool))
    return causal & (seg[:, None] == seg[None, :]), seg > 0


def decay_products(
    x: Array, inputs: Array, resets: Array, linked: Array, fresh: Array
) -> tuple[Array, Array]:
    """Products of decays `x: [L, w]` (values in `[0, 1]`) inside one chunk, applied to
    the chunk's `inputs: [L, w]`.

    **Arguments:** `x`, `inputs`; the chunk's `resets [L]` and their masks from `segments`.

    **Returns:** `pair: [L, L, w]` with `pair[t, i] = (Π_{i<l≤t} x_l) ⊙ inputs_i` where
    `linked[t, i]` (exactly 0 elsewhere, by selection) and `start: [L, w]` with
    `start[t] = Π_{l≤t} x_l` where not `fresh[t]` (exactly 0 elsewhere).
    """
    zero = x <= 0
    logx = jnp.where(zero, 0.0, jnp.maximum(jnp.log(jnp.where(zero, 1.0, x)), _LOG_FLOOR))
    cum = _segmented_cumsum(logx, resets[:, None])  # log-products of the non-zero decays
    # `dz` is exactly 0 in value, with the derivative of the zero decays; `Dz[t]` is that
    # of the last zero decay at or before `t`.
    z = jnp.where(zero, x, 1.0)
    Dz = _segmented_cumsum(z - jax.lax.stop_gradient(z), zero | resets[:, None])
    zeros_seen = jnp.cumsum(zero.astype(jnp.int32), axis=0)
    count = zeros_seen[:, None, :] - zeros_seen[None, :, :]  # zero decays in (i, t]
    link = linked[:, :, None]
    expo = jnp.exp(jnp.where(link, cum[:, None, :] - cum[None, :, :], -jnp.inf))
    # A product with one zero factor is 0, and its derivative in that factor is the product
    # of the others, `expo`; with two or more zeros both are 0.
    prod = jnp.where(count == 0, expo, jnp.where(count == 1, expo * Dz[:, None, :], 0.0))
    pair = jnp.where(link, prod * inputs[None], 0.0)
    s_expo = jnp.exp(jnp.where(fresh[:, None], -jnp.inf, cum))
    start = jnp.where(zeros_seen == 0, s_expo, jnp.where(zeros_seen == 1, s_expo * Dz, 0.0))
    return pair, start


def _to_chunks(x: Array, L: int, fill: float | int) -> Array:
    T = x.shape[0]
    pad = (-T) % L
    x = jnp.concatenate([x, jnp.full((pad, *x.shape[1:]), fill, x.dtype)], axis=0)
    return x.reshape(-1, L, *x.shape[1:])


def _factored_inputs(rule: UpdateRule, k, v, beta, gamma):
    if not rule.factored:
        raise NotImplementedError(
            f"update rule {rule.name!r} does not support method 'chunked' "
            f"(its decay does not factor); use one of {sorted(rule.methods)}"
        )
    return rule.factors(k, v, beta, gamma)


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
    a, g, u, w = _factored_inputs(rule, k, v, beta, gamma)

    @jax.checkpoint
    def body(carry, xs):
        C, s = carry
        q, a, g, u, w, r = xs
        linked, fresh = segments(r)
        PaU, Sa = decay_products(a, u, r, linked, fresh)  # [L, L, d]: Pa[t, i] ⊙ u_i
        PgW, Sg = decay_products(g, w, r, linked, fresh)  # [L, L, n]: Pg[t, i] ⊙ w_i
        A = jnp.einsum("tn,tin->ti", q, PgW)  # key-side attention, i ≤ t
        keep = ~fresh[:, None]  # the carried state reaches steps before a reset only
        qs = jnp.where(keep, q * Sg, 0.0)
        num = jnp.einsum("ti,tim->tm", A, PaU) + jnp.where(keep, Sa * (qs @ C.T), 0.0)
        den = A.sum(axis=1) + jnp.where(fresh, 0.0, qs @ s)
        out = num / (den + eps)[:, None]
        ue, we = PaU[-1], PgW[-1]  # inputs decayed to the chunk's end
        C = jnp.where(fresh[-1], 0.0, jnp.outer(Sa[-1], Sg[-1]) * C) + ue.T @ we
        s = jnp.where(fresh[-1], 0.0, Sg[-1] * s) + we.sum(axis=0)
        return (C, s), out

    xs = tuple(
        _to_chunks(x, L, fill)
        for x, fill in ((q, 0), (a, 1), (g, 1), (u, 0), (w, 0), (resets, False))
    )
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
    a, g, u, w = get_rule("gated").factors(k, v, beta, gamma)
    # Chunk-major then time-major inside a chunk: [L, N, ...].
    xs = tuple(
        jnp.swapaxes(_to_chunks(x, L, fill), 0, 1)
        for x, fill in ((a, 1), (g, 1), (u, 0), (w, 0), (feats, 0), (resets, False))
    )
    N = xs[0].shape[1]
    R, d, n = feats.shape[1], v.shape[1], k.shape[1]

    def local(carry, x):
        V, K, s, Pa, Pg, fresh = carry
        a, g, u, w, f, r = x
        keep = ~r[:, None]  # a reset selects zeros: nothing before it is multiplied in
        V = jnp.where(keep[..., None], a[:, None, :] * V, 0.0) + f[:, :, None] * u[:, None, :]
        K = jnp.where(keep[..., None], g[:, None, :] * K, 0.0) + f[:, :, None] * w[:, None, :]
        s = jnp.where(keep, g * s, 0.0) + w
        carry = (V, K, s, jnp.where(keep, a * Pa, 0.0), jnp.where(keep, g * Pg, 0.0), fresh | r)
        return carry, carry

    zeros = jnp.zeros
    init = (
        zeros((N, R, d), v.dtype),
        zeros((N, R, n), v.dtype),
        zeros((N, n), v.dtype),
        jnp.ones((N, d), v.dtype),
        jnp.ones((N, n), v.dtype),
        jnp.zeros((N,), bool),
    )
    _, (Vl, Kl, sl, Pa, Pg, fresh) = jax.lax.scan(local, init, xs)

    def across(carry, ends):
        V, K, s = carry
        Ve, Ke, se, Pae, Pge, fe = ends
        V, K, s = (jnp.where(fe, 0.0, x) for x in (V, K, s))  # select, then multiply
        return (Pae[None, :] * V + Ve, Pge[None, :] * K + Ke, Pge * s + se), carry

    ends = (Vl[-1], Kl[-1], sl[-1], Pa[-1], Pg[-1], fresh[-1])
    carry0 = (state.v_tilde, state.k_tilde, state.s)
    (V, K, s), (V0, K0, s0) = jax.lax.scan(across, carry0, ends)
    fr = fresh[..., None]  # [L, N, 1]: the state carried into the chunk no longer counts
    Vt = Pa[:, :, None, :] * jnp.where(fr[..., None], 0.0, V0[None]) + Vl  # [L, N, R, d]
    Kt = Pg[:, :, None, :] * jnp.where(fr[..., None], 0.0, K0[None]) + Kl
    st = Pg * jnp.where(fr, 0.0, s0[None]) + sl
    qc = jnp.swapaxes(_to_chunks(q, L, 0), 0, 1)  # [L, N, n]
    num = jnp.einsum("lnrk,lnk,lnrd->lnd", Kt, qc, Vt)
    out = num / (c * jnp.einsum("lnk,lnk->ln", st, qc) + eps)[..., None]
    out = jnp.swapaxes(out, 0, 1).reshape(-1, d)[:T]
    return out, AReLiTState(v_tilde=V, k_tilde=K, s=s, tick=tau[-1])
