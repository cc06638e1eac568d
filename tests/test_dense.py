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


def test_orthogonal_blocks_are_separate_orthogonal_layers():
    """Each column block is orthogonal on its own with gain √2 (`WᵀW = 2I` per block,
    for blocks no wider than the input), not a slice of one orthogonal matrix."""
    import math

    layer = Dense.orthogonal_blocks(8, (8, 8, 4), key=jax.random.PRNGKey(0))
    assert layer.weight.shape == (8, 20) and not np.any(np.asarray(layer.bias))
    for lo, hi in ((0, 8), (8, 16), (16, 20)):
        w = np.asarray(layer.weight[:, lo:hi])
        np.testing.assert_allclose(w.T @ w, 2.0 * np.eye(hi - lo), atol=1e-5)
    # The whole is not orthogonal (a single orthogonal 8×20 would give W Wᵀ = 2I).
    w = np.asarray(layer.weight)
    assert not np.allclose(w @ w.T, 2.0 * np.eye(8), atol=1e-2)
    assert math.isclose(float(np.linalg.norm(w[:, 16])), math.sqrt(2), rel_tol=1e-5)


def test_arelit_authors_initialisation():
    """AReLiT's p-projections have the scale of their own layer (columns of norm √2, as
    the authors' separate `linear_p1p2p3`), the other projections that of a 5·H·d-wide
    layer; the gates are orthogonal per matrix; the feed-forward layers orthogonal."""
    import relit_eqx

    # paper size: H 4, d 64, eta 4
    m = relit_eqx.AReLiT(16, authors_init=True, key=jax.random.PRNGKey(0))
    mixer, block = m.stack.blocks[0].mixer, m.stack.blocks[0]
    w = np.asarray(mixer.proj.weight).reshape(128, 4, 5 * 64 + 3 * 4)
    p_norms = np.linalg.norm(w[:, :, 320:], axis=0)
    np.testing.assert_allclose(p_norms, np.sqrt(2.0), rtol=1e-4)
    main_norms = np.linalg.norm(w[:, :, :320], axis=0)
    assert np.all(main_norms < 0.7)  # ≈ √(2·128/1280) = 0.45 per column
    wz = np.asarray(block.gate1.w.weight[:, 128:256])
    np.testing.assert_allclose(wz.T @ wz, 2.0 * np.eye(128), atol=1e-4)
    d1 = np.asarray(block.dense1.weight)
    np.testing.assert_allclose(d1.T @ d1, 2.0 * np.eye(128), atol=1e-4)
    assert not np.any(np.asarray(block.dense1.bias))
