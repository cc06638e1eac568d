"""A non-finite input before a reset does not reach anything after it, in every form of
the functional core and every model: outputs and final state after the reset equal a
fresh start on the steps from the reset on (to round-off) and are finite; steps before
the bad input are finite; gradients with respect to the inputs after the reset are
finite and equal the fresh start's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_contract import call, step  # jitted: op by op, a test here took ~25 s

from relit_eqx.functional import ARELIT_METHODS, METHODS, arelit, relit
from relit_eqx.models import get_model, small_kwargs


@st.composite
def poisoned(draw):
    """`T`, the bad step `p`, the reset `r > p`, which input is bad and with what."""
    T = draw(st.integers(3, 11))
    p = draw(st.integers(0, T - 2))
    r = draw(st.integers(p + 1, T - 1))
    name = draw(st.sampled_from(["q", "k", "v", "beta", "gamma"]))
    bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    chunk = draw(st.sampled_from([1, 2, 3, 4, 16]))
    seed = draw(st.integers(0, 2**31))
    return T, p, r, name, bad, chunk, seed


def _inputs(T, seed, d=2, n=3):
    rng = np.random.default_rng(seed)
    return {
        "q": rng.uniform(0.1, 1, (T, n)),
        "k": rng.uniform(0.1, 1, (T, n)),
        "v": rng.normal(size=(T, d)),
        "beta": rng.uniform(size=(T, d)),
        "gamma": rng.uniform(size=(T, n)),
    }


# Each example compiles every form anew in float64 (minutes on a CPU): opt-in with -m slow;
# the default run covers the same ground through relit_eqx.testing (gates exactly 0 and 1,
# non-finite values before a reset) in tests/test_forms.py.
@pytest.mark.slow
@pytest.mark.parametrize("family", ["relit", "arelit"])
@settings(max_examples=10)
@given(case=poisoned())
def test_functional_forms_forget_a_bad_input_at_a_reset(family, case):
    T, p, r, name, bad, chunk, seed = case
    fn, methods = (relit, METHODS) if family == "relit" else (arelit, ARELIT_METHODS)
    x = _inputs(T, seed)
    x[name][p, 0] = bad
    resets = np.zeros(T, bool)
    resets[r] = True
    args = [jnp.asarray(x[k], jnp.float32) for k in ("q", "k", "v", "beta", "gamma")]
    tail = [a[r:] for a in args]
    for method in methods:
        kw = dict(method=method, chunk_size=chunk)
        out, state = fn(*args, jnp.asarray(resets), **kw)
        fresh, fresh_state = fn(*tail, jnp.asarray(resets[r:]), **kw)
        out = np.asarray(out)
        assert np.isfinite(out[:p]).all(), f"{method}: steps before the bad input"
        assert np.isfinite(out[r:]).all(), f"{method}: steps after the reset"
        np.testing.assert_allclose(out[r:], fresh, rtol=1e-5, atol=1e-6, err_msg=method)
        for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(fresh_state), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=method)

        # Gradients with respect to the inputs from the reset on.
        def after(*tail_args, method=method):
            full = [jnp.concatenate([a[:r], t]) for a, t in zip(args, tail_args, strict=True)]
            o, _ = fn(*full, jnp.asarray(resets), method=method, chunk_size=chunk)
            return jnp.sum(o[r:] ** 2)

        def alone(*tail_args, method=method):
            o, _ = fn(*tail_args, jnp.asarray(resets[r:]), method=method, chunk_size=chunk)
            return jnp.sum(o**2)

        g = jax.grad(after, argnums=tuple(range(5)))(*tail)
        g0 = jax.grad(alone, argnums=tuple(range(5)))(*tail)
        for a, b in zip(g, g0, strict=True):
            assert np.isfinite(np.asarray(a)).all(), f"{method}: gradient after the reset"
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"{method} grad")


MODELS = [
    ("relit", {}),
    ("relit", {"method": "scan"}),
    ("relit", {"method": "associative"}),
    ("arelit", {}),
    ("arelit", {"factored": True}),
    ("arelit", {"method": "chunked"}),
    ("arelit", {"method": "associative"}),
    ("gtrxl", {}),
    ("gru", {}),
    ("lstm", {}),
]


@pytest.mark.parametrize(("name", "extra"), MODELS)
def test_models_forget_a_nan_at_a_reset(name, extra):
    """NaN at t = 2, reset at t = 5, 9 steps: `__call__` and the loop of `step` equal a
    fresh model on steps 5..8, finite; steps 0..1 are finite; the final state continues
    as a fresh model's does."""
    kwargs = small_kwargs(name) | extra
    model = get_model(name)(3, key=jax.random.PRNGKey(0), **kwargs)
    T, p, r = 9, 2, 5
    xs = np.array(jax.random.normal(jax.random.PRNGKey(1), (T, 3)))
    xs[p] = np.nan
    xs = jnp.asarray(xs)
    resets = jnp.zeros(T, bool).at[r].set(True)
    ys, state = call(model, xs, resets, model.init_state())
    fresh, fresh_state = call(model, xs[r:], resets[r:], model.init_state())
    ys = np.asarray(ys)
    assert np.isfinite(ys[:p]).all(), "before the NaN"
    assert not np.isfinite(ys[p]).all(), "the NaN step itself is not finite"
    np.testing.assert_allclose(ys[r:], fresh, rtol=1e-5, atol=1e-5, err_msg="__call__")
    # The final states are equivalent: continuing from either gives the same outputs
    # (GTrXL's ring buffer sits at another slot, so its leaves are not compared).
    more = jax.random.normal(jax.random.PRNGKey(2), (4, 3))
    cont, _ = call(model, more, jnp.zeros(4, bool), state)
    cont_fresh, _ = call(model, more, jnp.zeros(4, bool), fresh_state)
    assert np.isfinite(np.asarray(cont)).all(), "continued from the final state"
    np.testing.assert_allclose(cont, cont_fresh, rtol=1e-5, atol=1e-5, err_msg="final state")
    if name != "gtrxl":
        for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(fresh_state), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg="final state")

    st_ = model.init_state()
    stepped = []
    for t in range(T):
        y, st_ = step(model, xs[t], resets[t], st_)
        stepped.append(y)
    stepped = np.asarray(stepped)
    assert np.isfinite(stepped[r:]).all(), "step after the reset"
    np.testing.assert_allclose(stepped[r:], fresh, rtol=1e-5, atol=1e-5, err_msg="step")
