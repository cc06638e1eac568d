"""AReLiT's step loop with a hand-written backward pass: the training form of `AReLiTAttention`.

The loop runs on the gated rule's factors (`Factors` of `update_rules`, resets already
folded in as zero decays): decays `a = 1-β` `[d]` and `g = 1-γ` `[n]`, inputs `u = β⊙v`
and `w = γ⊙φ(k)`, the query features `q = φ(q)` and the oscillator features `f = f(τ_t)`:

    ṽ' = a⊙ṽ + f⊗u,   k̃' = g⊙k̃ + f⊗w,   s' = g⊙s + w,
    κ = k̃'q,   z = c·s'ᵀq + ε,   out = κᵀṽ' / z.

That is `arelit_step` (`naive.py`, the specification) with the reset moved into the
decays and the counters' features given. Forward, the loop keeps only the carry
`(ṽ, k̃, s)` at the start of each chunk of `L` steps. Backward, chunk by chunk from the
last, it reruns the chunk to recover the carry before each step and runs the adjoint
equations in reverse (`x̄` is the cotangent of `x`):

    κ̄ = ṽ' out̄ / z,   ṽ̄' += κ ⊗ out̄ / z,   z̄ = −κᵀκ̄ / z,
    k̃̄' += κ̄ ⊗ q,   s̄' += c z̄ q,   q̄ = k̃'ᵀκ̄ + c z̄ s',
    ṽ̄ = a⊙ṽ̄',   ā = Σ_j ṽ̄'_j⊙ṽ_j,   ū = Σ_j f_j ṽ̄'_j,
    k̃̄ = g⊙k̃̄',   s̄ = g⊙s̄',   ḡ = Σ_j k̃̄'_j⊙k̃_j + s̄'⊙s,   w̄ = Σ_j f_j k̃̄'_j + s̄'.

`arelit_loop_outer` runs the same loop on learned outer-product features held as their
factors, `φ(q) = vec(q_p ⊗ q_x)`, `γ = vec(γ_p ⊗ γ_x)`, `w = vec(w_p ⊗ w_x)`, with
`g = keep⊙(1−γ)` (`keep = 0` at a reset): each step forms its `n`-wide vectors from
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
from jaxtyping import Array, Float

from ..kernels import vec_outer

__all__ = ["arelit_loop", "arelit_loop_outer", "Outer"]

Carry = tuple[Array, Array, Array]  # (ṽ [H, R, d], k̃ [H, R, n], s [H, n])
Expand = Callable[[tuple[Array, ...]], tuple[Array, ...]]


class Outer(NamedTuple):
    """Features `vec(p ⊗ x)` of width `E·M`, held as their factors (p-major, as the
    outer-product kernels lay them out): `p [T, H, E]`, `x [T, H, M]`."""

    p: Array
    x: Array

    def full(self) -> Array:
        """The features `[T, H, E·M]`."""
        return vec_outer(self.p, self.x)


def arelit_loop(
    q: Float[Array, "T H n"],
    a: Float[Array, "T H d"],
    g: Float[Array, "T H n"],
    u: Float[Array, "T H d"],
    w: Float[Array, "T H n"],
    f: Float[Array, "T H R"],
    carry: Carry,
    *,
    c: float,
    eps: float,
    chunk_size: int,
) -> tuple[Float[Array, "T H d"], Carry]:
    """AReLiT over `T` steps of `H` heads from their factors: `(out [T, H, d], final carry)`.

    **Arguments:** the query features `q`, decays `a`, `g` (zero at a reset), inputs `u`,
    `w`, oscillator features `f`, the carry `(ṽ [H, R, d], k̃ [H, R, n], s [H, n])` before
    step 0, the readout's normaliser `c` and `ε`, and `chunk_size`, the number of steps
    between the carries kept for the backward pass.

    Time is the leading axis of every input and heads the second: the heads are mapped
    inside each step, so the inputs are read in the layout they are given in.
    """
    xs = {"q": q, "a": a, "g": g, "u": u, "w": w, "f": f}
    _check_inputs(xs, chunk_size)
    return _loop(c, eps, int(chunk_size), _identity, tuple(xs.values()), carry)


def arelit_loop_outer(
    q: Outer,
    a: Float[Array, "T H d"],
    gamma: Outer,
    keep: Float[Array, "T H 1"],
    u: Float[Array, "T H d"],
    w: Outer,
    f: Float[Array, "T H R"],
    carry: Carry,
    *,
    c: float,
    eps: float,
    chunk_size: int,
) -> tuple[Float[Array, "T H d"], Carry]:
    """`arelit_loop` with the `n`-wide inputs held as outer-product factors.

    **Arguments:** as `arelit_loop`, except: the query features `q`, the key gate `gamma`
    and the input `w` are `Outer` pairs whose widths multiply to `n` (each pair may split
    `n` differently; `Outer(ones [T, H, 1], x)` holds any `x` of width `n`), and the decay
    is `g = keep ⊙ (1 − γ)` with `keep [T, H, 1]` (zero at a reset; the decay `a` already
    carries it). Returns what `arelit_loop` returns; reverse mode gives the factors'
    cotangents.
    """
    xs = {
        "q.p": q.p, "q.x": q.x, "a": a, "gamma.p": gamma.p, "gamma.x": gamma.x,
        "keep": keep, "u": u, "w.p": w.p, "w.x": w.x, "f": f,
    }  # fmt: skip
    _check_inputs(xs, chunk_size)
    n = carry[1].shape[-1]
    for name, pair in (("q", q), ("gamma", gamma), ("w", w)):
        if pair.p.shape[-1] * pair.x.shape[-1] != n:
            raise ValueError(
                f"{name}: its factors' widths {pair.p.shape[-1]} x {pair.x.shape[-1]} must "
                f"multiply to the state's feature width n={n}"
            )
    if keep.shape[-1] != 1:
        raise ValueError(f"keep must have shape [T, H, 1]; got {keep.shape}")
    return _loop(c, eps, int(chunk_size), _expand_outer, tuple(xs.values()), carry)


def _check_inputs(xs: dict[str, Array], chunk_size: int) -> None:
    T_H = next(iter(xs.values())).shape[:2]
    for name, x in xs.items():
        if x.ndim != 3 or x.shape[:2] != T_H:
            raise ValueError(
                f"{name} must have shape [T, H, width] with q's [T, H] = {T_H}; got {x.shape}"
            )
    if T_H[0] < 1:
        raise ValueError("q has length T=0; sequences need at least one step")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")


def _identity(x: tuple[Array, ...]) -> tuple[Array, ...]:
    return x


def _expand_outer(x: tuple[Array, ...]) -> tuple[Array, ...]:
    """The step's `(q, a, g, u, w, f)` of one head from `arelit_loop_outer`'s factors."""
    qp, qx, a, gp, gx, keep, u, wp, wx, f = x
    return vec_outer(qp, qx), a, keep * (1 - vec_outer(gp, gx)), u, vec_outer(wp, wx), f


def _update(carry: Carry, x: tuple[Array, ...]) -> Carry:
    """The carry after one step of one head."""
    V, K, s = carry
    _, a, g, u, w, f = x
    return a * V + f[:, None] * u, g * K + f[:, None] * w, g * s + w


def _step(carry: Carry, x: tuple[Array, ...], c: float, eps: float, expand: Expand):
    """One step of one head: `(carry after it, out [d])`."""
    x = expand(x)
    V, K, s = carry = _update(carry, x)
    q = x[0]
    return carry, (K @ q) @ V / (c * (s @ q) + eps)


def _carry_only(carry: Carry, x: tuple[Array, ...], expand: Expand) -> tuple[Carry, Carry]:
    """The update without the readout; returns the carry before the step as output."""
    return _update(carry, expand(x)), carry


def _step_adjoint(c: float, eps: float, expand: Expand, dnext: Carry, inputs):
    """The adjoint equations of one step: `(carry cotangent before it, input cotangents)`;
    the cotangents of `(q, a, g, u, w, f)` are mapped back through `expand`."""
    raw, (V0, K0, s0), dout = inputs
    x, expand_vjp = jax.vjp(expand, raw)
    q, a, g, u, w, f = x
    dV1, dK1, ds1 = dnext
    V1, K1, s1 = _update((V0, K0, s0), x)
    kappa = K1 @ q
    z = c * (s1 @ q) + eps
    dkappa = (V1 @ dout) / z
    dV1 = dV1 + kappa[:, None] * (dout / z)
    cdz = -c * (kappa @ dkappa) / z
    dK1 = dK1 + dkappa[:, None] * q
    ds1 = ds1 + cdz * q
    dq = dkappa @ K1 + cdz * s1
    da = (dV1 * V0).sum(axis=0)
    du = f @ dV1
    dg = (dK1 * K0).sum(axis=0) + ds1 * s0
    dw = f @ dK1 + ds1
    df = dV1 @ u + dK1 @ w
    (draw,) = expand_vjp((dq, da, dg, du, dw, df))
    return (a * dV1, g * dK1, g * ds1), draw


def _at(xs: tuple[Array, ...], t: Array) -> tuple[Array, ...]:
    return tuple(jax.lax.dynamic_index_in_dim(x, t, keepdims=False) for x in xs)


def _put(buffers: tuple[Array, ...], t: Array, values: tuple[Array, ...]) -> tuple[Array, ...]:
    return tuple(
        jax.lax.dynamic_update_index_in_dim(b, v, t, 0)
        for b, v in zip(buffers, values, strict=True)
    )


# The loops read their inputs by index from the whole arrays and write their outputs into
# whole buffers, rather than scanning over them: under `vmap` a scanned input would be
# transposed to put time first, and chunks of a nested scan into another layout again.


def _forward(c, eps, L, expand, xs, carry):
    """The loop; also returns the carry at the start of each chunk."""
    T, H = xs[0].shape[:2]
    d = carry[0].shape[-1]
    L = min(L, T)
    n_chunks = -(-T // L)
    step = jax.vmap(functools.partial(_step, c=c, eps=eps, expand=expand))

    def chunk(i, state):
        carry, out, starts = state
        starts = _put(starts, i, carry)

        def one(t, state):
            carry, out = state
            carry, y = step(carry, _at(xs, t))
            return carry, jax.lax.dynamic_update_index_in_dim(out, y, t, 0)

        carry, out = jax.lax.fori_loop(i * L, jnp.minimum(i * L + L, T), one, (carry, out))
        return carry, out, starts

    out = jnp.zeros((T, H, d), carry[0].dtype)
    starts = tuple(jnp.zeros((n_chunks, *x.shape), x.dtype) for x in carry)
    carry, out, starts = jax.lax.fori_loop(0, n_chunks, chunk, (carry, out, starts))
    return out, carry, starts


def _primal(c, eps, L, expand, xs, carry):
    out, end, _ = _forward(c, eps, L, expand, xs, carry)
    return out, end


def _fwd(c, eps, L, expand, xs, carry):
    out, end, starts = _forward(c, eps, L, expand, xs, carry)
    return (out, end), (xs, starts)


def _bwd(c, eps, L, expand, res, cts):
    """Chunk by chunk from the last: rerun the chunk from its starting carry, keeping the
    carry before each step, then apply the adjoint equations in reverse."""
    xs, starts = res
    dout, dcarry = cts
    T = xs[0].shape[0]
    L = min(L, T)
    n_chunks = -(-T // L)
    rerun_step = jax.vmap(functools.partial(_carry_only, expand=expand))
    adjoint = jax.vmap(functools.partial(_step_adjoint, c, eps, expand))

    def chunk(j, state):
        dcarry, dxs = state
        i = n_chunks - 1 - j
        lo, hi = i * L, jnp.minimum(i * L + L, T)

        def rerun(t, state):
            carry, prevs = state
            prevs = _put(prevs, t - lo, carry)
            return rerun_step(carry, _at(xs, t))[0], prevs

        prevs = tuple(jnp.zeros((L, *s.shape[1:]), s.dtype) for s in starts)
        _, prevs = jax.lax.fori_loop(lo, hi, rerun, (_at(starts, i), prevs))

        def back(k, state):
            dcarry, dxs = state
            t = hi - 1 - k
            inputs = (_at(xs, t), _at(prevs, t - lo), _at((dout,), t)[0])
            dcarry, dx = adjoint(dcarry, inputs)
            return dcarry, _put(dxs, t, dx)

        return jax.lax.fori_loop(0, hi - lo, back, (dcarry, dxs))

    dxs = tuple(jnp.zeros_like(x) for x in xs)
    dcarry, dxs = jax.lax.fori_loop(0, n_chunks, chunk, (dcarry, dxs))
    return dxs, dcarry


# `expand` maps one step's inputs to `(q, a, g, u, w, f)`: identity for `arelit_loop`.
_loop = jax.custom_vjp(_primal, nondiff_argnums=(0, 1, 2, 3))
_loop.defvjp(_fwd, _bwd)
