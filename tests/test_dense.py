"""`relit_eqx.nn.Dense` against `eqx.nn.Linear` (the same initialisation, transposed)."""

import equinox as eqx
import jax
import numpy as np
import pytest

from relit_eqx.nn import Dense


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_is_linear_transposed(use_bias):
    key = jax.random.key(0)
    dense = Dense(5, 3, use_bias=use_bias, key=key)
    linear = eqx.nn.Linear(5, 3, use_bias=use_bias, key=key)
    assert dense.weight.shape == (5, 3) and (dense.d_in, dense.d_out) == (5, 3)
    x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype(np.float32)
    expected = jax.vmap(jax.vmap(linear))(x)
    np.testing.assert_allclose(dense(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense(x[0, 0]), linear(x[0, 0]), rtol=1e-5, atol=1e-6)


def test_orthogonal_dense():
    layer = Dense.orthogonal(8, 3, gain=2.0, key=jax.random.key(1))
    w = np.asarray(layer.weight)
    np.testing.assert_allclose(w.T @ w, 4.0 * np.eye(3), atol=1e-5)
    assert layer.bias is not None and not np.any(np.asarray(layer.bias))


def test_dense_bad_sizes():
    with pytest.raises(ValueError, match="d_out must be a positive integer"):
        Dense(3, 0, key=jax.random.key(0))
