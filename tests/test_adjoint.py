"""The hand-written backward pass of AReLiT's training loop (`functional.adjoint`) equals
JAX's reverse mode of the specification.

Path A: the gated rule's factors, the oscillator features of the counters, then
`arelit_loop` (forward loop, hand-written adjoint; resets applied by selection).
Path B: `functional.arelit(method="scan")`, the step recurrence of `naive.py` (resets as
`where`, counters inside the loop), differentiated by `jax.vjp`. Outputs, final states and
the cotangents of every input (features, values, gates, starting state) must agree, for
drawn gates (including 1e-6 and 1 - 1e-6), resets anywhere, non-zero starting states and
counters, lengths that are not multiples of the chunk size, and chunks of one step.

`arelit_loop_outer` (features and key gate as outer-product factors, the form AReLiT's
layer uses) is checked the same way against path B on the features this file forms from
the factors with `jnp.einsum`, differentiated with respect to the factors.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import Flavor, cases, chunk_for

from relit_eqx.functional import (
    METHODS,
    AReLiTState,
    LoopInputs,
    OuterLoopInputs,
    arelit,
    arelit_loop,
    arelit_loop_outer,
    oscillators,
)
from relit_eqx.update_rules import get_rule

EPS = 1e-6


def _path_a(q, k, v, beta, gamma, resets, V, K, s, tick, *, r, oscillator, chunk_size):
    tau, f = oscillators.counter_features(resets, tick, r, oscillator, v.dtype)
    a, g, u, w = get_rule("gated").factors(k, v, beta, gamma)
    c = oscillators.normaliser(r, oscillator)
    heads = LoopInputs(*(x[:, None] for x in (q, a, g, u, w, f)))  # one head
    out, carry = arelit_loop(
        heads, resets, (V[None], K[None], s[None]), c=c, eps=EPS, chunk_size=chunk_size
    )
    return out[:, 0], tuple(x[0] for x in carry)


def _path_b(q, k, v, beta, gamma, resets, V, K, s, tick, *, r, oscillator, chunk_size):
    del chunk_size
    state = AReLiTState(v_tilde=V, k_tilde=K, s=s, tick=tick)
    out, st_ = arelit(
        q, k, v, beta, gamma, resets, state, r=r, oscillator=oscillator, method="scan", eps=EPS
    )
    return out, (st_.v_tilde, st_.k_tilde, st_.s)


@partial(jax.jit, static_argnames=("path", "r", "oscillator", "chunk_size"))
def _value_and_vjp(path, inputs, resets, tick, cotangents, *, r, oscillator, chunk_size):
    fn = _path_a if path == "a" else _path_b

    def f(*diff):
        q, k, v, beta, gamma, V, K, s = diff
        return fn(
            q, k, v, beta, gamma, resets, V, K, s, tick,
            r=r, oscillator=oscillator, chunk_size=chunk_size,
        )  # fmt: skip

    primal, vjp = jax.vjp(f, *inputs)
    return primal, vjp(cotangents)


@pytest.mark.parametrize("oscillator", ["paper", "fourier"])
@given(data=st.data())
def test_adjoint_equals_reverse_mode_of_the_spec(oscillator, data):
    case = data.draw(cases(Flavor("arelit", oscillator, METHODS)))
    chunk_size = data.draw(st.sampled_from([1, 3, chunk_for(case.T)]))
    V, K, s, tick = case.state
    inputs = tuple(jnp.asarray(x) for x in (case.q, case.k, case.v, case.beta, case.gamma))
    inputs += (jnp.asarray(V), jnp.asarray(K), jnp.asarray(s))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    d = case.v.shape[1]
    cot = (
        jnp.asarray(rng.normal(size=(case.T, d)), jnp.float32),
        tuple(jnp.asarray(rng.normal(size=np.shape(x)), jnp.float32) for x in (V, K, s)),
    )
    kw = dict(r=case.r, oscillator=oscillator, chunk_size=chunk_size)
    resets, tick = jnp.asarray(case.resets), jnp.int32(tick)
    a = _value_and_vjp("a", inputs, resets, tick, cot, **kw)
    b = _value_and_vjp("b", inputs, resets, tick, cot, **kw)
    _agree(a, b, ("q", "k", "v", "beta", "gamma", "v_tilde0", "k_tilde0", "s0"))


def _agree(a, b, names):
    """Path A's `((out, final carry), cotangents)` equals path B's."""
    ((out_a, fin_a), grads_a), ((out_b, fin_b), grads_b) = a, b
    _close(out_a, out_b, "out")
    for name, x, y in zip(("v_tilde", "k_tilde", "s"), fin_a, fin_b, strict=True):
        _close(x, y, f"final {name}")
    for name, x, y in zip(names, grads_a, grads_b, strict=True):
        _close(x, y, f"cotangent of {name}")


def _close(x, y, what):
    x, y = np.asarray(x), np.asarray(y)
    assert np.all(np.isfinite(x)), f"{what}: not finite"
    scale = max(1.0, float(np.max(np.abs(y))))
    np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-4 * scale, err_msg=what)


def _vec(p, x):
    return jnp.einsum("ti,tj->tij", p, x).reshape(p.shape[0], -1)


def _outer_a(qp, qx, kp, kx, v, beta, gp, gx, V, K, s, resets, tick, *, r, oscillator, L):
    tau, f = oscillators.counter_features(resets, tick, r, oscillator, v.dtype)
    head = lambda x: x[:, None]  # noqa: E731  (one head)
    inputs = OuterLoopInputs(
        q_p=head(qp), q_x=head(qx), a=head(1 - beta), gamma_p=head(gp), gamma_x=head(gx),
        u=head(beta * v), w_p=head(gp * kp), w_x=head(gx * kx), f=head(f),
    )  # fmt: skip
    out, carry = arelit_loop_outer(
        inputs, resets, (V[None], K[None], s[None]),
        c=oscillators.normaliser(r, oscillator), eps=EPS, chunk_size=L,
    )  # fmt: skip
    return out[:, 0], tuple(x[0] for x in carry)


def _outer_b(qp, qx, kp, kx, v, beta, gp, gx, V, K, s, resets, tick, *, r, oscillator, L):
    del L
    state = AReLiTState(v_tilde=V, k_tilde=K, s=s, tick=tick)
    out, st_ = arelit(
        _vec(qp, qx), _vec(kp, kx), v, beta, _vec(gp, gx), resets, state,
        r=r, oscillator=oscillator, method="scan", eps=EPS,
    )  # fmt: skip
    return out, (st_.v_tilde, st_.k_tilde, st_.s)


@partial(jax.jit, static_argnames=("path", "r", "oscillator", "L"))
def _outer_vjp(path, inputs, resets, tick, cotangents, *, r, oscillator, L):
    fn = _outer_a if path == "a" else _outer_b
    primal, vjp = jax.vjp(lambda *x: fn(*x, resets, tick, r=r, oscillator=oscillator, L=L), *inputs)
    return primal, vjp(cotangents)


@given(data=st.data())
def test_outer_factor_loop_equals_reverse_mode_of_the_spec(data):
    """`arelit_loop_outer` vs `jax.vjp` of the naive scan on the expanded features, for
    every way of splitting `n = 6` into factors, gates at the extremes, resets anywhere."""
    case = data.draw(cases(Flavor("arelit", "paper", METHODS)))
    E, M = data.draw(st.sampled_from([(2, 3), (3, 2), (1, 6), (6, 1)]))
    L = data.draw(st.sampled_from([1, 3, chunk_for(case.T)]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    gate = data.draw(st.sampled_from(["uniform", "low", "high"]))

    def gates(width):
        if gate == "uniform":
            x = rng.uniform(size=(case.T, width))
        else:
            x = np.full((case.T, width), 1e-6 if gate == "low" else 1 - 1e-6)
        return jnp.asarray(x, jnp.float32)

    def pos(width):
        return jnp.asarray(np.abs(rng.normal(size=(case.T, width))), jnp.float32)

    V, K, s, tick = case.state
    inputs = (pos(E), pos(M), pos(E), pos(M), jnp.asarray(case.v), jnp.asarray(case.beta))
    inputs += (gates(E), gates(M), jnp.asarray(V), jnp.asarray(K), jnp.asarray(s))
    cot = (
        jnp.asarray(rng.normal(size=case.v.shape), jnp.float32),
        tuple(jnp.asarray(rng.normal(size=np.shape(x)), jnp.float32) for x in (V, K, s)),
    )
    kw = dict(r=case.r, oscillator="paper", L=L)
    resets, tick = jnp.asarray(case.resets), jnp.int32(tick)
    a = _outer_vjp("a", inputs, resets, tick, cot, **kw)
    b = _outer_vjp("b", inputs, resets, tick, cot, **kw)
    names = ("q.p", "q.x", "k.p", "k.x", "v", "beta", "gamma.p", "gamma.x", "V0", "K0", "s0")
    _agree(a, b, names)


def test_oscillator_features_get_their_cotangent():
    """`f` is an input of the loop like any other: its cotangent is `ṽ̄'ᵀu + k̃̄'ᵀw`
    (checked against reverse mode of a plain scan over the same update)."""
    rng = np.random.default_rng(0)
    T, d, n, R = 7, 3, 5, 2
    H = 2
    q, g, w = (jnp.asarray(rng.uniform(size=(T, H, n)), jnp.float32) for _ in range(3))
    a, u = (jnp.asarray(rng.uniform(size=(T, H, d)), jnp.float32) for _ in range(2))
    f = jnp.asarray(rng.normal(size=(T, H, R)), jnp.float32)
    carry = (jnp.ones((H, R, d)), jnp.ones((H, R, n)), jnp.ones((H, n)))

    def plain(f):
        def step(c, x):
            V, K, s = c  # [H, R, d], [H, R, n], [H, n]
            q, a, g, u, w, f = x  # [H, n], [H, d], [H, n], [H, d], [H, n], [H, R]
            V = a[:, None] * V + f[:, :, None] * u[:, None]
            K = g[:, None] * K + f[:, :, None] * w[:, None]
            s = g * s + w
            kappa = jnp.einsum("hrn,hn->hr", K, q)
            z = 2.0 * jnp.einsum("hn,hn->h", s, q) + EPS
            return (V, K, s), jnp.einsum("hr,hrd->hd", kappa, V) / z[:, None]

        return jax.lax.scan(step, carry, (q, a, g, u, w, f))[1].sum()

    def loop(f):
        inputs = LoopInputs(q, a, g, u, w, f)
        resets = jnp.zeros(T, bool)
        return arelit_loop(inputs, resets, carry, c=2.0, eps=EPS, chunk_size=3)[0].sum()

    np.testing.assert_allclose(jax.grad(loop)(f), jax.grad(plain)(f), rtol=1e-5, atol=1e-5)


def test_bad_shapes_are_named():
    q = jnp.zeros((4, 2, 5))
    d3 = jnp.zeros((4, 2, 3))
    f = jnp.zeros((4, 2, 1))
    carry = (jnp.zeros((2, 1, 3)), jnp.zeros((2, 1, 5)), jnp.zeros((2, 5)))
    resets = jnp.zeros(4, bool)
    kw = dict(c=1.0, eps=EPS)
    with pytest.raises(ValueError, match="^a must have shape"):
        arelit_loop(LoopInputs(q, d3[:3], q, d3, q, f), resets, carry, **kw, chunk_size=2)
    with pytest.raises(ValueError, match="chunk_size"):
        arelit_loop(LoopInputs(q, d3, q, d3, q, f), resets, carry, **kw, chunk_size=0)
    with pytest.raises(ValueError, match="^resets must be a boolean"):
        arelit_loop(LoopInputs(q, d3, q, d3, q, f), resets[:3], carry, **kw, chunk_size=2)


def test_outer_factor_widths_are_checked():
    T, H, d, n = 4, 2, 3, 6
    z = lambda w: jnp.zeros((T, H, w))  # noqa: E731
    carry = (jnp.zeros((H, 1, d)), jnp.zeros((H, 1, n)), jnp.zeros((H, n)))
    kw = dict(c=1.0, eps=EPS, chunk_size=2)
    resets = jnp.zeros(T, bool)

    def inputs(**changes):
        good = dict(q_p=z(2), q_x=z(3), a=z(d), gamma_p=z(2), gamma_x=z(3), u=z(d))
        good |= dict(w_p=z(2), w_x=z(3), f=z(1))
        return OuterLoopInputs(**(good | changes))

    with pytest.raises(ValueError, match="^gamma: its factors' widths 2 x 2"):
        arelit_loop_outer(inputs(gamma_x=z(2)), resets, carry, **kw)
    with pytest.raises(ValueError, match="^w_x must have shape"):
        arelit_loop_outer(inputs(w_x=z(3)[:3]), resets, carry, **kw)
