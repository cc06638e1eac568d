"""The step recurrence under `jax.lax.scan`: the reader's specification and the oracle.

Each step first applies the reset (SPEC §4: the state is zeroed before step `t` is
absorbed), then the update rule's own step, written as in the paper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..update_rules import UpdateRule
from . import oscillators
from .state import AReLiTState, ReLiTState


def relit_scan(
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
    """ReLiT, one step at a time: `(out [T, d], final state)`."""

    def body(carry, xs):
        C, s = carry
        qt, kt, vt, bt, gt, rt = xs
        C = jnp.where(rt, 0.0, C)
        s = jnp.where(rt, 0.0, s)
        out, C, s = rule.step(C, s, qt, kt, vt, bt, gt, eps)
        return (C, s), out

    (C, s), out = jax.lax.scan(body, (state.C, state.s), (q, k, v, beta, gamma, resets))
    return out, ReLiTState(C=C, s=s)


def arelit_scan(
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
    """AReLiT (SPEC §2), one step at a time:

    `τ_t = τ_{t-1} + 1` (1 after a reset), `f = f(τ_t)`,
    `ṽ^j ← (1-β)⊙ṽ^j + f[j]·(β⊙v)`, `k̃^j ← (1-γ)⊙k̃^j + f[j]·(γ⊙φ(k))`,
    `s ← (1-γ)⊙s + γ⊙φ(k)`, `a = Σ_j ṽ^j (k̃^jᵀφ(q)) / (c·sᵀφ(q) + ε)`.
    """
    P = oscillators.period(r, oscillator)
    c = oscillators.normaliser(r, oscillator)

    def body(carry, xs):
        V, K, s, tick = carry
        qt, kt, vt, bt, gt, rt = xs
        V, K, s = (jnp.where(rt, 0.0, x) for x in (V, K, s))
        tick = jnp.where(rt, 0, tick)
        tick = jnp.mod(tick + 1, P)
        f = oscillators.features(tick, r, oscillator, V.dtype)
        V = (1 - bt) * V + f[:, None] * (bt * vt)
        K = (1 - gt) * K + f[:, None] * (gt * kt)
        s = (1 - gt) * s + gt * kt
        out = (K @ qt) @ V / (c * (s @ qt) + eps)
        return (V, K, s, tick), out

    tick0 = jnp.mod(state.tick, P).astype(jnp.int32)
    carry = (state.v_tilde, state.k_tilde, state.s, tick0)
    (V, K, s, tick), out = jax.lax.scan(body, carry, (q, k, v, beta, gamma, resets))
    return out, AReLiTState(v_tilde=V, k_tilde=K, s=s, tick=tick)
