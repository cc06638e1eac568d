"""Boundary cases of the numerical core: the step counter at the boundary (large and
negative ticks), sequences of length 0 in every model and in the functional core, and
the layers passing a non-default `eps` on to the functional core (every form).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import arelit_step as oracle_arelit
from oracles import relit_step as oracle_relit

from relit_eqx.functional import ARELIT_METHODS, METHODS, AReLiTState, arelit, relit
from relit_eqx.models import get_model, small_kwargs
from relit_eqx.nn import AReLiTAttention, ReLiTAttention

OWN_MODELS = ["relit", "arelit", "arelit-fourier", "gtrxl", "gru", "lstm"]


def _args(T=5, d=2, n=3, seed=0):
    rng = np.random.default_rng(seed)
    q, k = rng.uniform(0.1, 1, (T, n)), rng.uniform(0.1, 1, (T, n))
    v, b, g = rng.normal(size=(T, d)), rng.uniform(size=(T, d)), rng.uniform(size=(T, n))
    return [jnp.asarray(x, jnp.float32) for x in (q, k, v, b, g)], jnp.zeros(T, bool)


@pytest.mark.parametrize("tick", [2**32, np.int64(2**32), 2**40 + 5, 2**70 + 1])
def test_a_large_tick_is_reduced_exactly(tick):
    """fourier, r = 3 (period 3): a state at `tick` continues as one at `tick mod 3`."""
    (q, k, v, b, g), resets = _args()
    z = dict(v_tilde=jnp.ones((3, 2)), k_tilde=jnp.ones((3, 3)), s=jnp.ones(3))
    big = AReLiTState(**z, tick=tick)
    small = AReLiTState(**z, tick=jnp.int32(int(tick) % 3))
    for method in ARELIT_METHODS:
        kw = dict(r=3, oscillator="fourier", method=method)
        out, st = arelit(q, k, v, b, g, resets, big, **kw)
        ref, ref_st = arelit(q, k, v, b, g, resets, small, **kw)
        np.testing.assert_array_equal(out, ref, err_msg=method)
        assert int(st.tick) == int(ref_st.tick)


def test_a_negative_tick_is_rejected():
    (q, k, v, b, g), resets = _args()
    z = dict(v_tilde=jnp.zeros((2, 2)), k_tilde=jnp.zeros((2, 3)), s=jnp.zeros(3))
    with pytest.raises(ValueError, match=r"^state\.tick must be >= 0"):
        arelit(q, k, v, b, g, resets, AReLiTState(**z, tick=-1))
    layer = AReLiTAttention(8, n_heads=2, d_head=2, eta=2, key=jax.random.PRNGKey(0))
    state = layer.init_state()._replace(tick=jnp.asarray([1, -3], jnp.int32))
    with pytest.raises(ValueError, match=r"^state\.tick must be >= 0"):
        layer(jnp.zeros((3, 8)), jnp.zeros(3, bool), state)
    with pytest.raises(ValueError, match=r"^state\.tick must be >= 0"):
        layer.step(jnp.zeros(8), jnp.asarray(False), state)


def test_gates_outside_the_unit_interval_are_rejected_when_concrete():
    (q, k, v, b, g), resets = _args()
    with pytest.raises(ValueError, match=r"^gamma must lie in \[0, 1\]"):
        relit(q, k, v, b, g.at[1, 2].set(1.5), resets)
    with pytest.raises(ValueError, match=r"^beta must lie in \[0, 1\]"):
        arelit(q, k, v, b.at[0, 0].set(-0.1), g, resets)


@pytest.mark.parametrize("method", ARELIT_METHODS)
def test_functional_core_accepts_an_empty_sequence(method):
    (q, k, v, b, g), resets = _args(T=0)
    state = AReLiTState(jnp.ones((2, 2)), jnp.ones((2, 3)), jnp.ones(3), jnp.int32(1))
    out, st = arelit(q, k, v, b, g, resets, state, method=method)
    assert out.shape == (0, 2)
    for got, want in zip(st, state, strict=True):
        np.testing.assert_array_equal(got, want)
    if method in METHODS:
        out, st = relit(q, k, v, b, g, resets, method=method)
        assert out.shape == (0, 2)
        np.testing.assert_array_equal(st.C, np.zeros((2, 3)))


@pytest.mark.parametrize("name", OWN_MODELS)
def test_every_model_returns_an_empty_output_for_an_empty_sequence(name):
    model = get_model(name)(3, key=jax.random.PRNGKey(0), **small_kwargs(name))
    state = model.init_state()
    ys, new = model(jnp.zeros((0, 3)), jnp.zeros(0, bool), state)
    assert ys.shape == (0, model.d_model)
    for got, want in zip(jax.tree.leaves(new), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", OWN_MODELS)
def test_an_integer_x_is_rejected_by_call_and_step_alike(name):
    model = get_model(name)(3, key=jax.random.PRNGKey(0), **small_kwargs(name))
    state = model.init_state()
    with pytest.raises(TypeError, match="^xs must be a floating array"):
        model(jnp.zeros((2, 3), jnp.int32), jnp.zeros(2, bool), state)
    with pytest.raises(TypeError, match="^x must be a floating array"):
        model.step(jnp.zeros(3, jnp.int32), jnp.asarray(False), state)


EPS = 0.37  # large enough that dropping it changes the outputs far beyond round-off


def _resets(T):
    return np.array([t in (0, 4) for t in range(T)])


@pytest.mark.parametrize("method", METHODS)
def test_relit_attention_passes_its_eps_on(method):
    """The layer's outputs equal the float64 step loop (an independent oracle) run with
    the layer's features and `eps = 0.37`: a layer that dropped `eps` fails."""
    layer = ReLiTAttention(
        8, n_heads=2, d_head=2, eta=2, method=method, chunk_size=3, eps=EPS,
        key=jax.random.PRNGKey(0),
    )  # fmt: skip
    T = 7
    xs = jax.random.normal(jax.random.PRNGKey(1), (T, 8))
    resets = _resets(T)
    ys, _ = layer(xs, jnp.asarray(resets), layer.init_state())
    fq, fk, v, b, g = (np.asarray(x, np.float64) for x in layer._features(xs))  # [T, H, .]
    heads = [
        oracle_relit(fq[:, h], fk[:, h], v[:, h], b[:, h], g[:, h], resets, eps=EPS)[0]
        for h in range(2)
    ]
    want = layer._merge(jnp.asarray(np.stack(heads, axis=1), jnp.float32))
    np.testing.assert_allclose(ys, want, rtol=1e-4, atol=1e-5)
    default = ReLiTAttention(
        8, n_heads=2, d_head=2, eta=2, method=method, chunk_size=3, key=jax.random.PRNGKey(0)
    )
    ys_default, _ = default(xs, jnp.asarray(resets), default.init_state())
    assert np.max(np.abs(np.asarray(ys_default) - np.asarray(ys))) > 1e-3


@pytest.mark.parametrize(("method", "factored"), [(m, False) for m in METHODS] + [("scan", True)])
def test_arelit_attention_passes_its_eps_on(method, factored):
    layer = AReLiTAttention(
        8, n_heads=2, d_head=2, eta=2, method=method, chunk_size=3, eps=EPS,
        factored=factored, key=jax.random.PRNGKey(0),
    )  # fmt: skip
    T = 7
    xs = jax.random.normal(jax.random.PRNGKey(1), (T, 8))
    resets = _resets(T)
    ys, _ = layer(xs, jnp.asarray(resets), layer.init_state())
    fq, fk, v, b, g = (np.asarray(x, np.float64) for x in layer._features(xs))
    heads = [
        oracle_arelit(
            fq[:, h], fk[:, h], v[:, h], b[:, h], g[:, h], resets,
            r=2, oscillator="paper", eps=EPS,
        )[0]
        for h in range(2)
    ]  # fmt: skip
    want = layer._merge(jnp.asarray(np.stack(heads, axis=1), jnp.float32))
    np.testing.assert_allclose(ys, want, rtol=1e-4, atol=1e-5)
