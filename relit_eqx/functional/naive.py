"""The step recurrence under `jax.lax.scan`: the reader's specification and the oracle.

Each step first applies the reset (the Concepts page: the state is zeroed before step `t` is
absorbed), then the update rule's own step, written as in the paper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..update_rules import UpdateRule
from . import oscillators
from .state import AReLiTState, ReLiTState


def relit_step(
    rule: UpdateRule,
    q: Array,
    k: Array,
    v: Array,
    beta: Array,
    gamma: Array,
    reset: Array,
    state: ReLiTState,
    eps: float,
) -> tuple[Array, ReLiTState]:
    """One ReLiT step (vectors `q, k, gamma: [n]`, `v, beta: [d]`, `reset: bool []`)."""
    C = jnp.where(reset, 0.0, state.C)
    s = jnp.where(reset, 0.0, state.s)
    out, C, s = rule.step(C, s, q, k, v, beta, gamma, eps)
    return out, ReLiTState(C=C, s=s)


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
        qt, kt, vt, bt, gt, rt = xs
        out, carry = relit_step(rule, qt, kt, vt, bt, gt, rt, carry, eps)
        return carry, out

    final, out = jax.lax.scan(body, state, (q, k, v, beta, gamma, resets))
    return out, final


def arelit_step(
    q: Array,
    k: Array,
    v: Array,
    beta: Array,
    gamma: Array,
    reset: Array,
    state: AReLiTState,
    r: int,
    oscillator: str,
    eps: float,
) -> tuple[Array, AReLiTState]:
    """One AReLiT step (the Mathematics page):

    `τ_t = τ_{t-1} + 1` (1 after a reset), `f = f(τ_t)`,
    `ṽ^j ← (1-β)⊙ṽ^j + f[j]·(β⊙v)`, `k̃^j ← (1-γ)⊙k̃^j + f[j]·(γ⊙φ(k))`,
    `s ← (1-γ)⊙s + γ⊙φ(k)`, `a = Σ_j ṽ^j (k̃^jᵀφ(q)) / (c·sᵀφ(q) + ε)`.
    """
    P = oscillators.period(r, oscillator)
    c = oscillators.normaliser(r, oscillator)
    V, K, s = (jnp.where(reset, 0.0, x) for x in (state.v_tilde, state.k_tilde, state.s))
    tick = jnp.mod(jnp.where(reset, 0, jnp.mod(state.tick, P)) + 1, P).astype(jnp.int32)
    f = oscillators.features(tick, r, oscillator, V.dtype)
    V = (1 - beta)[None, :] * V + f[:, None] * (beta * v)[None, :]
    K = (1 - gamma)[None, :] * K + f[:, None] * (gamma * k)[None, :]
    s = (1 - gamma) * s + gamma * k
    out = (K @ q) @ V / (c * (s @ q) + eps)
    return out, AReLiTState(v_tilde=V, k_tilde=K, s=s, tick=tick)


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
    """AReLiT, one step at a time (`arelit_step` under `lax.scan`)."""

    def body(carry, xs):
        qt, kt, vt, bt, gt, rt = xs
        out, carry = arelit_step(qt, kt, vt, bt, gt, rt, carry, r, oscillator, eps)
        return carry, out

    P = oscillators.period(r, oscillator)
    state = state._replace(tick=jnp.mod(state.tick, P).astype(jnp.int32))
    final, out = jax.lax.scan(body, state, (q, k, v, beta, gamma, resets))
    return out, final
