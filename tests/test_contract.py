"""Every registered model under the sequence-model contract (the Concepts page).

The contract is checked by the verification kit, `relit_eqx.testing.check_sequence_model`
(the same function users run on their own models), once per registered model and
property, each model built from its registered tiny configuration: registering a model
is all it takes to be covered. Compilation dominates, so the kit runs one sequence
length and its split pieces only, with XLA's optimisations mostly off (conftest.py).
GTrXL's fixed-size memory has its own tests below.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from hypothesis import settings

from relit_eqx.models import GTrXL, get_model, model_names, small_kwargs
from relit_eqx.testing import MODEL_PROPERTIES, check_sequence_model

D_IN = 3
T = 9
RESETS = np.array([False, False, True, False, False, False, False, True, False])
LAST_RESET = 7
RTOL = ATOL = 1e-5


call = eqx.filter_jit(lambda model, xs, resets, state: model(xs, resets, state))
step = eqx.filter_jit(lambda model, x, reset, state: model.step(x, reset, state))


def step_loop(model, xs, resets, state):
    ys = []
    for x, reset in zip(xs, resets, strict=True):
        y, state = step(model, x, reset, state)
        ys.append(y)
    return jnp.stack(ys), state


def build(name: str, key: int = 0, **overrides):
    return get_model(name)(D_IN, key=jr.PRNGKey(key), **(small_kwargs(name) | overrides))


def factory(name: str):
    """`factory(d_in, key)` of the registered tiny configuration of `name`."""
    return lambda d_in, key: get_model(name)(d_in, key=key, **small_kwargs(name))


# memax's models are checked by tests/test_memax.py (three by default, the rest with -m slow).
MP = [
    (name, prop)
    for name in model_names()
    if not name.startswith("memax-")
    for prop in MODEL_PROPERTIES
]


@pytest.mark.parametrize("name,prop", MP, ids=[f"{n}-{p}" for n, p in MP])
def test_contract(name, prop):
    """One property of `relit_eqx.testing.MODEL_PROPERTIES` for one registered model:
    `__call__` equals the loop of `step` (from zero and from a used state); split and
    carry; resets (a fresh run from the last reset on, NaN or infinity before it
    included); shapes and dtypes (`eval_shape`); jit/vmap; no gradient across a reset;
    every parameter gets gradient; serialisation; `state_size` counts the state's floats."""
    check_sequence_model(
        factory(name),
        d_in=D_IN,
        T=T,
        properties=[prop],
        rtol=RTOL,
        atol=ATOL,
        max_examples=max(1, settings.default.max_examples // 2),
        name=name,
    )


# --------------------------------------------------------------------------------------
# GTrXL: the fixed-size memory (the registered tiny configuration, so nothing recompiles)
# --------------------------------------------------------------------------------------


def test_gtrxl_forgets_beyond_its_window():
    model = build("gtrxl")
    window = model.n_layers * model.memory_length + 1  # the inputs output t depends on
    assert window < T
    xs = jr.normal(jr.PRNGKey(4), (T, D_IN))
    no_resets = jnp.zeros(T, bool)
    ys, _ = call(model, xs, no_resets, model.init_state())
    # The last output equals a fresh run on only the last `window` inputs ...
    tail_ys, _ = step_loop(model, xs[-window:], no_resets[-window:], model.init_state())
    np.testing.assert_allclose(tail_ys[-1], ys[-1], rtol=1e-6, atol=1e-6)
    # ... changing the input just outside the window changes nothing (a masked key gets
    # an exactly zero weight), and changing the oldest input inside it changes the output
    # (a little: its influence passes through every layer's attention and gates).
    bump = 5.0 * jr.normal(jr.PRNGKey(5), (D_IN,))
    outside, _ = call(model, xs.at[T - window - 1].add(bump), no_resets, model.init_state())
    inside, _ = call(model, xs.at[T - window].add(bump), no_resets, model.init_state())
    assert np.max(np.abs(outside[-1] - ys[-1])) <= 1e-7
    assert np.max(np.abs(inside[-1] - ys[-1])) > 1e-6


def test_gtrxl_memory_holds_the_last_inputs():
    model = build("gtrxl")
    assert isinstance(model, GTrXL)
    m = model.memory_length
    xs = jr.normal(jr.PRNGKey(6), (T, D_IN))
    _, (memory, _) = call(model, xs, jnp.asarray(RESETS), model.init_state())
    block = model.stack.blocks[0]
    attention = block.mixer
    inputs = jax.vmap(lambda x: block.norm1(jax.nn.relu(model.stack.embed(x))))(xs[-m:])
    shape = (m, attention.n_heads, attention.d_head)
    # Unroll the ring buffer, oldest entry first.
    assert int(memory.next_slot) == T % m
    keys = jnp.roll(memory.keys, -memory.next_slot, axis=0)
    values = jnp.roll(memory.values, -memory.next_slot, axis=0)
    valid = jnp.roll(memory.valid, -memory.next_slot)
    expected_keys = jax.vmap(attention.key_proj)(inputs).reshape(shape)
    expected_values = jax.vmap(attention.value_proj)(inputs).reshape(shape)
    np.testing.assert_allclose(keys, expected_keys, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(values, expected_values, rtol=RTOL, atol=ATOL)
    # Only the entries since the last reset are visible.
    expected_valid = np.arange(T - m, T) >= LAST_RESET
    assert expected_valid.any() and not expected_valid.all()
    np.testing.assert_array_equal(valid, expected_valid)
