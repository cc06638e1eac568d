"""Gates exactly 0 and exactly 1 (decays exactly 1 and 0): every form's outputs and
gradients equal the step loop's and central finite differences, in float64.

A decay exactly 0 (`β = 1` or `γ = 1`) is a factor like any other: the chunked form's
products that span one such factor are 0, and their derivative with respect to it is the
product of the others (the form once dropped it, as if the zero were a reset).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relit_eqx.functional import ARELIT_METHODS, METHODS, arelit, relit

EXTREMES = st.sampled_from([0.0, 1.0, 0.3, 0.9])


@st.composite
def gate_cases(draw):
    T = draw(st.integers(1, 7))
    d, n = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31))
    beta = np.array(draw(st.lists(EXTREMES, min_size=T * d, max_size=T * d))).reshape(T, d)
    gamma = np.array(draw(st.lists(EXTREMES, min_size=T * n, max_size=T * n))).reshape(T, n)
    resets = np.array(draw(st.lists(st.booleans(), min_size=T, max_size=T)))
    chunk = draw(st.sampled_from([1, 2, 3, 64]))
    return T, d, n, seed, beta, gamma, resets, chunk


def _inputs(T, d, n, seed):
    rng = np.random.default_rng(seed)
    q, k = rng.uniform(0.1, 1.0, (T, n)), rng.uniform(0.1, 1.0, (T, n))
    v = rng.normal(size=(T, d))
    cot = rng.normal(size=(T, d))
    return q, k, v, cot


def _grads(fn, method, q, k, v, beta, gamma, resets, cot, chunk, **kw):
    def loss(beta, gamma, q, k, v):
        out, _ = fn(q, k, v, beta, gamma, resets, method=method, chunk_size=chunk, **kw)
        return jnp.sum(out * cot)

    args = tuple(jnp.asarray(x, jnp.float64) for x in (beta, gamma, q, k, v))
    return loss(*args), jax.grad(loss, argnums=(0, 1, 2, 3, 4))(*args), loss


# Each example compiles every form anew in float64 (minutes on a CPU): opt-in with -m slow;
# the default run covers the same ground through relit_eqx.testing (gates exactly 0 and 1,
# non-finite values before a reset) in tests/test_forms.py.
@pytest.mark.slow
@pytest.mark.parametrize("family", ["relit", "arelit"])
@settings(max_examples=10)
@given(case=gate_cases())
def test_forms_agree_with_the_step_loop_at_gates_0_and_1(family, case):
    T, d, n, seed, beta, gamma, resets, chunk = case
    q, k, v, cot = _inputs(T, d, n, seed)
    fn, methods = (relit, METHODS) if family == "relit" else (arelit, ARELIT_METHODS)
    with jax.enable_x64(True):
        res = jnp.asarray(resets)
        ref_val, ref_grads, _ = _grads(fn, "scan", q, k, v, beta, gamma, res, cot, chunk)
        for method in methods:
            val, grads, _ = _grads(fn, method, q, k, v, beta, gamma, res, cot, chunk)
            np.testing.assert_allclose(val, ref_val, rtol=1e-9, atol=1e-9, err_msg=method)
            for name, g, r in zip(("beta", "gamma", "q", "k", "v"), grads, ref_grads, strict=True):
                np.testing.assert_allclose(
                    g, r, rtol=1e-8, atol=1e-8, err_msg=f"{family} {method}: d/d{name}"
                )


@pytest.mark.parametrize("method", ["scan", "associative", "chunked"])
def test_chunked_gradient_at_all_gates_1_matches_finite_differences(method):
    """All `γ = 1` (and separately all `β = 1`): the derivative in the gate equals a
    one-sided finite difference from inside `[0, 1]` (the values at exactly 1 are the
    edge of the domain), for `relit`; `scan` is the independent reference above."""
    T, d, n = 6, 2, 3
    q, k, v, cot = _inputs(T, d, n, 3)
    rng = np.random.default_rng(4)
    resets = np.zeros(T, bool)
    for which in ("beta", "gamma"):
        beta = np.ones((T, d)) if which == "beta" else rng.uniform(size=(T, d))
        gamma = np.ones((T, n)) if which == "gamma" else rng.uniform(size=(T, n))
        with jax.enable_x64(True):
            _, grads, loss = _grads(relit, method, q, k, v, beta, gamma, resets, cot, 4)
            g = np.asarray(grads[0] if which == "beta" else grads[1])
            h = 1e-6
            x = beta if which == "beta" else gamma
            for idx in [(0, 0), (T // 2, x.shape[1] - 1), (T - 1, 0)]:
                lo = x.copy()
                lo[idx] -= h
                args = (lo, gamma) if which == "beta" else (beta, lo)
                base = (beta, gamma)
                f_lo = float(loss(*(jnp.asarray(a) for a in args), q, k, v))
                f_0 = float(loss(*(jnp.asarray(a) for a in base), q, k, v))
                fd = (f_0 - f_lo) / h
                assert abs(g[idx] - fd) <= 1e-4 * max(1.0, abs(fd)), (
                    which,
                    method,
                    idx,
                    g[idx],
                    fd,
                )
