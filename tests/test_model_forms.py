"""The evaluation forms of the attention models agree with each other (outputs, final
states and parameter gradients).

ReLiT's `method="scan"` runs the layer's own `step` in a rematerialised loop (features
formed inside the loop) and AReLiT's runs `functional.adjoint.arelit_loop` (a hand-written
backward pass; with `factored=True`, `arelit_loop_outer` on the features' factors), while
`"associative"` and `"chunked"` call the functional core on features formed for the whole
sequence: independent code paths that must agree. Lengths
are not multiples of the chunk size, there are resets mid-chunk, and the starting state
is not zero. Each form is also put under the contract properties of the verification kit
(`relit_eqx.testing.check_sequence_model`): its `__call__` equals the loop of `step`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from hypothesis import settings

from relit_eqx.models import get_model, small_kwargs
from relit_eqx.testing import check_sequence_model

D_IN = 3
T = 11  # chunk_size 4 in the tiny configurations: two full chunks and a tail of 3
RESETS = np.array([False, True, False, False, False, True, False, False, False, False, True])
METHODS = ("scan", "associative", "chunked")
MODELS = ("relit", "arelit")


def _build(name: str, method: str, **extra):
    kwargs = small_kwargs(name) | {"method": method} | extra
    return get_model(name)(D_IN, key=jr.PRNGKey(0), **kwargs)


@eqx.filter_jit
def _run(model, xs, resets, prefix):
    # A non-zero starting state: the state after a prefix sequence.
    _, state = model(prefix, jnp.zeros(prefix.shape[0], bool), model.init_state())

    def loss(m):
        ys, final = m(xs, resets, state)
        w = jnp.cos(jnp.arange(ys.size, dtype=ys.dtype)).reshape(ys.shape)
        finals = jax.tree_util.tree_leaves(eqx.filter(final, eqx.is_inexact_array))
        return jnp.sum(w * ys) + sum(jnp.sum(jnp.sin(x)) for x in finals), (ys, final)

    (_, (ys, final)), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model)
    return ys, final, grads


@pytest.mark.parametrize("name", MODELS)
def test_methods_agree(name):
    k1, k2 = jr.split(jr.PRNGKey(1))
    xs = jr.normal(k1, (T, D_IN))
    prefix = jr.normal(k2, (5, D_IN))
    results = {m: _run(_build(name, m), xs, jnp.asarray(RESETS), prefix) for m in METHODS}
    if name == "arelit":
        factored = _build(name, "scan", factored=True)
        results["scan factored"] = _run(factored, xs, jnp.asarray(RESETS), prefix)
    ref = results["associative"]
    for method in [m for m in results if m != "associative"]:
        got = results[method]
        for a, b in zip(
            jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(got), strict=True
        ):
            a, b = np.asarray(a), np.asarray(b)
            if np.issubdtype(a.dtype, np.floating):
                np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5, err_msg=f"{name} {method}")
            else:
                np.testing.assert_array_equal(b, a, err_msg=f"{name} {method}")
    # The gradients are not trivially zero.
    grads = jax.tree_util.tree_leaves(eqx.filter(ref[2], eqx.is_inexact_array))
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)
    assert sum(float(jnp.abs(g).sum()) for g in grads) > 0


CONTRACT = ("call_equals_step", "split_and_carry", "reset", "nonfinite_before_reset")
MMP = [(n, m, p) for n in MODELS for m in METHODS for p in CONTRACT]


@pytest.mark.parametrize("name,method,prop", MMP, ids=[f"{n}-{m}-{p}" for n, m, p in MMP])
def test_method_contract(name, method, prop):
    """Each training form of the attention models under the kit's contract properties:
    `__call__` in that form equals the loop of `step`, carries its state, and restarts
    at a reset whatever came before (NaN and infinities included)."""
    check_sequence_model(
        lambda d_in, key: get_model(name)(
            d_in, key=key, **(small_kwargs(name) | {"method": method})
        ),
        d_in=D_IN,
        T=T,
        properties=[prop],
        max_examples=max(1, settings.default.max_examples // 3),
        name=f"{name} (method={method!r})",
    )
