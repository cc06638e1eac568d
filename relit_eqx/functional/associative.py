"""The associative-scan form: every step's state at once, in `O(log T)` depth.

A step is an affine map of the state. Composing two of them is again one:
`(D1, C1) ∘ (D2, C2) = (D1 ⊙ D2, D2 ⊙ C1 + C2)`; with a factored decay `D = a ⊗ g`
the decays compose factor-wise, `(a1⊙a2) ⊗ (g1⊙g2)` (the Mathematics page). The starting state is
folded into the first element. A reset is applied by selection: an element carries a flag
"starts afresh", and composing with a flagged element selects zeros for what came before
(never a multiplication by a zero decay, which would turn an earlier NaN into NaN).
Memory is `O(T·d·n)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..update_rules import UpdateRule, get_rule, normalised_readout
from . import oscillators
from .state import AReLiTState, ReLiTState


def _outer(a: Array, g: Array) -> Array:
    return a[..., :, None] * g[..., None, :]


def _forget(r: Array, x: Array) -> Array:
    """`x` with zeros selected where the flag `r` (leading axes of `x`) is set."""
    return jnp.where(r.reshape(*r.shape, *(1,) * (x.ndim - r.ndim)), 0.0, x)


def _combine_factored(e1, e2):
    a1, g1, C1, s1, r1 = e1
    a2, g2, C2, s2, r2 = e2
    C1, s1, a1, g1 = (_forget(r2, x) for x in (C1, s1, a1, g1))
    return a1 * a2, g1 * g2, _outer(a2, g2) * C1 + C2, g2 * s1 + s2, r1 | r2


def _combine_full(e1, e2):
    D1, g1, C1, s1, r1 = e1
    D2, g2, C2, s2, r2 = e2
    C1, s1, D1, g1 = (_forget(r2, x) for x in (C1, s1, D1, g1))
    return D1 * D2, g1 * g2, D2 * C1 + C2, g2 * s1 + s2, r1 | r2


def relit_associative(
    rule: UpdateRule,
    q: Array,
    k: Array,
    v: Array,
    beta: Array,
    gamma: Array,
    resets: Array,
    state: ReLiTState,
    eps: float,
) -> tuple[Array, ReLiTState]:
    """ReLiT by `jax.lax.associative_scan`: `(out [T, d], final state)`."""
    C0, s0 = (jnp.where(resets[0], 0.0, x) for x in (state.C, state.s))
    if rule.factored:
        a, g, u, w = rule.factors(k, v, beta, gamma)
        C = _outer(u, w).at[0].add(_outer(a[0], g[0]) * C0)
        s = w.at[0].add(g[0] * s0)
        _, _, Cs, ss, _ = jax.lax.associative_scan(_combine_factored, (a, g, C, s, resets))
    else:
        D, U, g, w = rule.full(k, v, beta, gamma)
        C = U.at[0].add(D[0] * C0)
        s = w.at[0].add(g[0] * s0)
        _, _, Cs, ss, _ = jax.lax.associative_scan(_combine_full, (D, g, C, s, resets))
    out = jax.vmap(normalised_readout, in_axes=(0, 0, 0, None))(Cs, ss, q, eps)
    return out, ReLiTState(C=Cs[-1], s=ss[-1])


def _combine_arelit(e1, e2):
    a1, g1, V1, K1, s1, r1 = e1
    a2, g2, V2, K2, s2, r2 = e2
    V1, K1, s1, a1, g1 = (_forget(r2, x) for x in (V1, K1, s1, a1, g1))
    return (
        a1 * a2,
        g1 * g2,
        a2[..., None, :] * V1 + V2,
        g2[..., None, :] * K1 + K2,
        g2 * s1 + s2,
        r1 | r2,
    )


def arelit_associative(
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
) -> tuple[Array, AReLiTState]:
    """AReLiT by `jax.lax.associative_scan` over `(1-β, 1-γ, ṽ, k̃, s)` elements."""
    c = oscillators.normaliser(r, oscillator)
    tau, f = oscillators.counter_features(resets, state.tick, r, oscillator, v.dtype)
    a, g, u, w = get_rule("gated").factors(k, v, beta, gamma)
    V0, K0, s0 = (jnp.where(resets[0], 0.0, x) for x in (state.v_tilde, state.k_tilde, state.s))
    V = f[:, :, None] * u[:, None, :]
    K = f[:, :, None] * w[:, None, :]
    V = V.at[0].add(a[0][None] * V0)
    K = K.at[0].add(g[0][None] * K0)
    s = w.at[0].add(g[0] * s0)
    elems = (a, g, V, K, s, resets)
    _, _, Vs, Ks, ss, _ = jax.lax.associative_scan(_combine_arelit, elems)
    num = jnp.einsum("trn,tn,trd->td", Ks, q, Vs)
    out = num / (c * jnp.einsum("tn,tn->t", ss, q) + eps)[:, None]
    return out, AReLiTState(v_tilde=Vs[-1], k_tilde=Ks[-1], s=ss[-1], tick=tau[-1])
