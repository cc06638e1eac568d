"""memax's models under the sequence-model contract (`relit_eqx.testing.check_sequence_model`).

Every `memax-<name>` model runs every property of the contract at a tiny size; a property a
model is known to fail (listed on the Models page with the reason) must still fail, so the
list stays true when memax changes. memax is installed by the `test` extra: without it these
tests fail rather than skip.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from relit_eqx.models import get_model, model_names
from relit_eqx.models.memax_adapter import MEMAX_MODELS, MemaxModel
from relit_eqx.testing import MODEL_PROPERTIES, PropertyFailure, check_sequence_model

NAMES = [f"memax-{key}" for key in MEMAX_MODELS]

# The properties each model fails, with the reason (the Models page lists them).
KNOWN_FAILURES: dict[str, dict[str, str]] = {}

# The models whose contract runs in the default suite (a complex diagonal recurrence, a
# state with an integer clock, a delta rule); the others run with `-m slow` (the same
# checks: compilation dominates, about a minute per model on two cores).
QUICK = {"memax-lru", "memax-ffm", "memax-gdn"}


def test_every_memax_model_is_registered():
    assert set(NAMES) <= set(model_names())
    model = get_model("memax-lru")(3, d_model=8, n_layers=1, key=jr.PRNGKey(0))
    assert isinstance(model, MemaxModel) and model.name == "LRU"
    # LRU's carry per layer: (cumulative decay, state), complex [d_model] each, as float
    # pairs, and memax's "a start was seen" flag.
    (((a, bu), seen),) = model.init_state()
    assert a.shape == bu.shape == (8, 2) and a.dtype == jnp.float32 and seen.dtype == jnp.bool_
    np.testing.assert_array_equal(a, np.stack([np.ones(8), np.zeros(8)], -1))
    assert model.state_size == 2 * 8 * 2


def test_constructor_errors_name_the_argument():
    with pytest.raises(ValueError, match="name: unknown memax model 'nope'; choose from"):
        MemaxModel("nope", 3, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="d_model must be a positive integer; got 0"):
        get_model("memax-lru")(3, d_model=0, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="d_model must be at least 4 for FFM"):
        get_model("memax-ffm")(3, d_model=2, key=jr.PRNGKey(0))
    model = get_model("memax-gru")(3, d_model=4, n_layers=1, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="xs has last dimension 2 but the model's d_in is 3"):
        model(jnp.zeros((5, 2)), jnp.zeros(5, bool), model.init_state())


@pytest.mark.parametrize(
    "name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in NAMES]
)
def test_contract(name):
    def factory(d_in, key):
        return get_model(name)(d_in, d_model=16, n_layers=2, key=key)

    known = KNOWN_FAILURES.get(name, {})
    passing = [p for p in MODEL_PROPERTIES if p not in known]
    check_sequence_model(factory, properties=passing, max_examples=3, name=name)
    for prop in known:
        with pytest.raises(PropertyFailure):
            check_sequence_model(factory, properties=[prop], max_examples=3, name=name)


def test_a_reset_clears_nan_where_memax_alone_keeps_it():
    """memax resets by `h·(1 - start) + h0·start`, so a NaN in the old state survives a
    reset (`NaN·0 = NaN`); the adapter's selection gives exactly a fresh start."""
    from memax.equinox.groups import Resettable

    model = get_model("memax-lru")(3, d_model=4, n_layers=1, key=jr.PRNGKey(0))
    fresh = model.init_state()
    (((a, bu), seen),) = fresh
    poisoned = (((a, bu.at[0, 0].set(jnp.nan)), seen),)
    x, reset = jnp.ones(3), jnp.array(True)
    y_fresh, s_fresh = model.step(x, reset, fresh)
    y, s = model.step(x, reset, poisoned)
    np.testing.assert_array_equal(y, y_fresh)
    for got, want in zip(jax.tree.leaves(s), jax.tree.leaves(s_fresh), strict=True):
        np.testing.assert_array_equal(got, want)
    raw = eqx.tree_at(
        lambda m: tuple(layer.algebra for layer in m.memax.layers),
        model,
        replace=tuple(Resettable(layer.algebra.algebra) for layer in model.memax.layers),
    )
    y_raw, _ = raw.step(x, reset, poisoned)
    assert np.isnan(np.asarray(y_raw)).all()
    y_raw_fresh, _ = raw.step(x, reset, fresh)
    np.testing.assert_array_equal(y_raw_fresh, y_fresh)  # the same model otherwise


def test_an_empty_sequence_returns_no_outputs_and_the_state_unchanged():
    model = get_model("memax-lru")(3, d_model=4, n_layers=1, key=jr.PRNGKey(0))
    state = model.step(jnp.ones(3), jnp.array(True), model.init_state())[1]
    ys, after = model(jnp.zeros((0, 3)), jnp.zeros(0, bool), state)
    assert ys.shape == (0, 4) and ys.dtype == jnp.float32
    for got, want in zip(jax.tree.leaves(after), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(got, want)
