"""AReLiT's step loop with a hand-written backward pass: the training form of `AReLiTAttention`.

The loop runs on the gated rule's factors (`Factors` of `update_rules`), held in a
`LoopInputs`: decays `a = 1-β` `[d]` and `g = 1-γ` `[n]`, inputs `u = β⊙v` and
`w = γ⊙φ(k)`, the query features `q = φ(q)` and the oscillator features `f = f(τ_t)`:

    ṽ' = a⊙ṽ + f⊗u,   k̃' = g⊙k̃ + f⊗w,   s' = g⊙s + w,
    κ = k̃'q,   z = c·s'ᵀq + ε,   out = κᵀṽ' / z.

That is `arelit_step` (`naive.py`, the specification) with the counters' features given.
A reset selects a zero carry before the step (`jnp.where`, never a zero decay times the
carry), forward and backward, so nothing before it, not even a NaN, reaches what follows. Forward, the loop keeps only the carry
`(ṽ, k̃, s)` at the start of each chunk of `L` steps. Backward, chunk by chunk from the
last, it reruns the chunk to recover the carry before each step and runs the adjoint
equations in reverse (`x̄` is the cotangent of `x`):

    κ̄ = ṽ' out̄ / z,   ṽ̄' += κ ⊗ out̄ / z,   z̄ = −κᵀκ̄ / z,
    k̃̄' += κ̄ ⊗ q,   s̄' += c z̄ q,   q̄ = k̃'ᵀκ̄ + c z̄ s',
    ṽ̄ = a⊙ṽ̄',   ā = Σ_j ṽ̄'_j⊙ṽ_j,   ū = Σ_j f_j ṽ̄'_j,
    k̃̄ = g⊙k̃̄',   s̄ = g⊙s̄',   ḡ = Σ_j k̃̄'_j⊙k̃_j + s̄'⊙s,   w̄ = Σ_j f_j k̃̄'_j + s̄'.

`arelit_loop_outer` runs the same loop on learned outer-product features held as their
factors (`OuterLoopInputs`), `φ(q) = vec(q_p ⊗ q_x)`, `γ = vec(γ_p ⊗ γ_x)`,
`w = vec(w_p ⊗ w_x)`, `g = 1−γ`: each step forms its `n`-wide vectors from
`E + M` numbers (`n = E·M`), and the backward pass maps their cotangents back onto the
factors (reverse mode of that expansion, inside the step). No `[T, n]` array is formed
in either pass.

Why by hand: JAX's reverse mode of the same loop saves some thirty intermediate arrays per
step and runs about a hundred small kernels per step backward. The inputs are formed for
all steps before the loop (not inside it), because XLA on the CPU fuses a feature map into
each consumer and recomputes it for every element of the `[R, n]` state, at ten times the
cost of the update itself. Only reverse mode is defined (`jax.custom_vjp`); the other forms
differentiate in any mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ..kernels import vec_outer

__all__ = ["arelit_loop", "arelit_loop_outer", "Outer", "LoopInputs", "OuterLoopInputs"]

Carry = tuple[Array, Array, Array]  # (ṽ [H, R, d], k̃ [H, R, n], s [H, n])


class Outer(NamedTuple):
    """Features `vec(p ⊗ x)` of width `E·M`, held as their factors (p-major, as the
    outer-product kernels lay them out): `p [T, H, E]`, `x [T, H, M]`."""

    p: Array
    x: Array

    def full(self) -> Array:
        """The features `[T, H, E·M]`."""
        return vec_outer(self.p, self.x)


class LoopInputs(NamedTuple):
    """The inputs of `arelit_loop`, time first and heads second (one step: drop `T`).

    `q`: query features `φ(q)` `[T, H, n]`; `a = 1-β` `[T, H, d]`; `g = 1-γ` `[T, H, n]`;
    `u = β⊙v` `[T, H, d]`; `w = γ⊙φ(k)` `[T, H, n]`; `f`: oscillator features `[T, H, R]`.
    """

    q: Float[Array, "T H n"]
    a: Float[Array, "T H d"]
    g: Float[Array, "T H n"]
    u: Float[Array, "T H d"]
    w: Float[Array, "T H n"]
    f: Float[Array, "T H R"]


class OuterLoopInputs(NamedTuple):
    """The inputs of `arelit_loop_outer`: `LoopInputs` with `φ(q)`, `γ` and `w` held as
    outer-product factors, `vec(p ⊗ x)` (each pair may split `n = E·M` differently;
    `p = ones [T, H, 1]` holds any `x` of width `n`). The decay is `g = 1 − vec(γ_p ⊗ γ_x)`.
    """

    q_p: Float[Array, "T H E1"]
    q_x: Float[Array, "T H M1"]
    a: Float[Array, "T H d"]
    gamma_p: Float[Array, "T H E2"]
    gamma_x: Float[Array, "T H M2"]
    u: Float[Array, "T H d"]
    w_p: Float[Array, "T H E3"]
    w_x: Float[Array, "T H M3"]
    f: Float[Array, "T H R"]


Expand = Callable[[tuple[Array, ...]], LoopInputs]


def arelit_loop(
    inputs: LoopInputs,
    resets: Bool[Array, " T"],
    carry: Carry,
    *,
    c: float,
    eps: float,
    chunk_size: int,
) -> tuple[Float[Array, "T H d"], Carry]:
    """AReLiT over `T` steps of `H` heads from their factors: `(out [T, H, d], final carry)`.

    **Arguments:** the `LoopInputs`; `resets` (`bool [T]`, shared by the heads: the carry
    is replaced by zeros before that step); the carry `(ṽ [H, R, d], k̃ [H, R, n], s [H, n])`
    before step 0; the readout's normaliser `c` and `ε`; and `chunk_size`, the number of
    steps between the carries kept for the backward pass.

    Time is the leading axis of every input and heads the second: the heads are mapped
    inside each step, so the inputs are read in the layout they are given in. Reverse mode
    only (`jax.custom_vjp`).
    """
    _check_inputs(inputs, resets, chunk_size)
    return _loop(c, eps, int(chunk_size), _identity, tuple(inputs), resets, carry)


def arelit_loop_outer(
    inputs: OuterLoopInputs,
    resets: Bool[Array, " T"],
    carry: Carry,
    *,
    c: float,
    eps: float,
    chunk_size: int,
) -> tuple[Float[Array, "T H d"], Carry]:
    """`arelit_loop` with `φ(q)`, `γ` and `w` held as outer-product factors.

    **Arguments:** as `arelit_loop`, with `OuterLoopInputs` (the pairs' widths multiply to
    the state's `n`). Returns what `arelit_loop` returns; reverse mode gives the factors'
    cotangents.
    """
    _check_inputs(inputs, resets, chunk_size)
    n = carry[1].shape[-1]
    for name in ("q", "gamma", "w"):
        p, x = getattr(inputs, f"{name}_p"), getattr(inputs, f"{name}_x")
        if p.shape[-1] * x.shape[-1] != n:
            raise ValueError(
                f"{name}: its factors' widths {p.shape[-1]} x {x.shape[-1]} must "
                f"multiply to the state's feature width n={n}"
            )
    return _loop(c, eps, int(chunk_size), _expand_outer, tuple(inputs), resets, carry)


def _check_inputs(inputs: LoopInputs | OuterLoopInputs, resets: Array, chunk_size: int) -> None:
    T_H = inputs[0].shape[:2]
    for name, x in zip(inputs._fields, inputs, strict=True):
        if x.ndim != 3 or x.shape[:2] != T_H:
            raise ValueError(
                f"{name} must have shape [T, H, width] with q's [T, H] = {T_H}; got {x.shape}"
            )
    if resets.shape != (T_H[0],) or resets.dtype != jnp.bool_:
        raise ValueError(
            f"resets must be a boolean [T] = [{T_H[0]}]; got {resets.dtype} {resets.shape}"
        )
    if T_H[0] < 1:
        raise ValueError("q has length T=0; sequences need at least one step")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")


def _identity(x: tuple[Array, ...]) -> LoopInputs:
    return LoopInputs(*x)


def _expand_outer(x: tuple[Array, ...]) -> LoopInputs:
    """One step's `LoopInputs` of one head from `OuterLoopInputs`' factors."""
    o = OuterLoopInputs(*x)
    return LoopInputs(
        q=vec_outer(o.q_p, o.q_x),
        a=o.a,
        g=1 - vec_outer(o.gamma_p, o.gamma_x),
        u=o.u,
        w=vec_outer(o.w_p, o.w_x),
        f=o.f,
    )


def _forget(carry: Carry, reset: Array) -> Carry:
    """The carry, or zeros selected at a reset (NaN-safe: nothing is multiplied by 0)."""
    return tuple(jnp.where(reset, 0.0, x) for x in carry)  # type: ignore[return-value]


def _update(carry: Carry, x: LoopInputs, reset: Array) -> Carry:
    """The carry after one step of one head."""
    V, K, s = _forget(carry, reset)
    a, g = x.a[None], x.g[None]  # [1, d], [1, n]: the rows' decays (same rank as V, K)
    return a * V + x.f[:, None] * x.u[None], g * K + x.f[:, None] * x.w[None], x.g * s + x.w


def _step(carry: Carry, x: tuple[Array, ...], reset: Array, c: float, eps: float, expand: Expand):
    """One step of one head: `(carry after it, out [d])`."""
    xe = expand(x)
    V, K, s = carry = _update(carry, xe, reset)
    return carry, (K @ xe.q) @ V / (c * (s @ xe.q) + eps)


def _carry_only(carry: Carry, x: tuple[Array, ...], reset: Array, expand: Expand):
    """The update without the readout; returns the carry before the step as output."""
    return _update(carry, expand(x), reset), carry


def _step_adjoint(c: float, eps: float, expand: Expand, dnext: Carry, inputs):
    """The adjoint equations of one step: `(carry cotangent before it, input cotangents)`;
    the cotangents of the step's `LoopInputs` are mapped back through `expand`."""
    raw, reset, prev, dout = inputs
    x, expand_vjp = jax.vjp(expand, raw)
    V0, K0, s0 = _forget(prev, reset)
    dV1, dK1, ds1 = dnext
    V1, K1, s1 = _update((V0, K0, s0), x, reset)
    kappa = K1 @ x.q
    z = c * (s1 @ x.q) + eps
    dkappa = (V1 @ dout) / z
    dV1 = dV1 + kappa[:, None] * (dout / z)[None]
    cdz = -c * (kappa @ dkappa) / z
    dK1 = dK1 + dkappa[:, None] * x.q[None]
    ds1 = ds1 + cdz * x.q
    dx = LoopInputs(
        q=dkappa @ K1 + cdz * s1,
        a=(dV1 * V0).sum(axis=0),
        g=(dK1 * K0).sum(axis=0) + ds1 * s0,
        u=x.f @ dV1,
        w=x.f @ dK1 + ds1,
        f=dV1 @ x.u + dK1 @ x.w,
    )
    (draw,) = expand_vjp(dx)
    return _forget((x.a[None] * dV1, x.g[None] * dK1, x.g * ds1), reset), draw


def _at(xs, t: Array):
    return jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, t, keepdims=False), xs)


def _put(buffers, t: Array, values):
    return jax.tree.map(
        lambda b, v: jax.lax.dynamic_update_index_in_dim(b, v, t, 0), buffers, values
    )


# The loops read their inputs by index from the whole arrays and write their outputs into
# whole buffers, rather than scanning over them: under `vmap` a scanned input would be
# transposed to put time first, and chunks of a nested scan into another layout again.


def _forward(c, eps, L, expand, xs, resets, carry):
    """The loop; also returns the carry at the start of each chunk."""
    T, H = xs[0].shape[:2]
    d = carry[0].shape[-1]
    L = min(L, T)
    n_chunks = -(-T // L)
    step = jax.vmap(functools.partial(_step, c=c, eps=eps, expand=expand), in_axes=(0, 0, None))

    def chunk(i, state):
        carry, out, starts = state
        starts = _put(starts, i, carry)

        def one(t, state):
            carry, out = state
            carry, y = step(carry, _at(xs, t), _at(resets, t))
            return carry, jax.lax.dynamic_update_index_in_dim(out, y, t, 0)

        carry, out = jax.lax.fori_loop(i * L, jnp.minimum(i * L + L, T), one, (carry, out))
        return carry, out, starts

    out = jnp.zeros((T, H, d), carry[0].dtype)
    starts = tuple(jnp.zeros((n_chunks, *x.shape), x.dtype) for x in carry)
    carry, out, starts = jax.lax.fori_loop(0, n_chunks, chunk, (carry, out, starts))
    return out, carry, starts


def _primal(c, eps, L, expand, xs, resets, carry):
    out, end, _ = _forward(c, eps, L, expand, xs, resets, carry)
    return out, end


def _fwd(c, eps, L, expand, xs, resets, carry):
    out, end, starts = _forward(c, eps, L, expand, xs, resets, carry)
    return (out, end), (xs, resets, starts)


def _bwd(c, eps, L, expand, res, cts):
    """Chunk by chunk from the last: rerun the chunk from its starting carry, keeping the
    carry before each step, then apply the adjoint equations in reverse."""
    xs, resets, starts = res
    dout, dcarry = cts
    T = xs[0].shape[0]
    L = min(L, T)
    n_chunks = -(-T // L)
    rerun_step = jax.vmap(functools.partial(_carry_only, expand=expand), in_axes=(0, 0, None))
    adjoint = jax.vmap(
        functools.partial(_step_adjoint, c, eps, expand), in_axes=(0, (0, None, 0, 0))
    )

    def chunk(j, state):
        dcarry, dxs = state
        i = n_chunks - 1 - j
        lo, hi = i * L, jnp.minimum(i * L + L, T)

        def rerun(t, state):
            carry, prevs = state
            prevs = _put(prevs, t - lo, carry)
            return rerun_step(carry, _at(xs, t), _at(resets, t))[0], prevs

        prevs = tuple(jnp.zeros((L, *s.shape[1:]), s.dtype) for s in starts)
        _, prevs = jax.lax.fori_loop(lo, hi, rerun, (_at(starts, i), prevs))

        def back(k, state):
            dcarry, dxs = state
            t = hi - 1 - k
            inputs = (_at(xs, t), _at(resets, t), _at(prevs, t - lo), _at(dout, t))
            dcarry, dx = adjoint(dcarry, inputs)
            return dcarry, _put(dxs, t, dx)

        return jax.lax.fori_loop(0, hi - lo, back, (dcarry, dxs))

    dxs = tuple(jnp.zeros_like(x) for x in xs)
    dcarry, dxs = jax.lax.fori_loop(0, n_chunks, chunk, (dcarry, dxs))
    return dxs, None, dcarry


# `expand` maps one step's inputs to `LoopInputs`: the identity for `arelit_loop`.
_loop = jax.custom_vjp(_primal, nondiff_argnums=(0, 1, 2, 3))
_loop.defvjp(_fwd, _bwd)
