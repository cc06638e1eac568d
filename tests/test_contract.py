"""Every registered model under the sequence-model contract (SPEC §4, §5).

The suite is parametrised over `relit_eqx.models.model_names()` and builds each model
from its registered tiny configuration, so registering a model is all it takes to be
covered. JAX compilation dominates the run time, so everything runs compiled and the
sequences come in two lengths only (`T` and `T // 3`): per model the suite compiles
`__call__` twice, `step` once, one function for the gradients and one for plain
`jax.jit` around `jax.vmap`, all with XLA's optimisations mostly off (`quick_compiles`).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from relit_eqx.models import GTrXL, get_model, model_names, small_kwargs

D_IN = 3
T = 9
PIECE = 3  # split-and-carry pieces and the continuation segment
RESETS = np.array([False, False, True, False, False, False, False, True, False])
LAST_RESET = 7  # not on a piece boundary, so carrying the state matters
RTOL = ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("quick_compiles")


call = eqx.filter_jit(lambda model, xs, resets, state: model(xs, resets, state))
step = eqx.filter_jit(lambda model, x, reset, state: model.step(x, reset, state))


def build(name: str, key: int = 0, **overrides):
    return get_model(name)(D_IN, key=jr.PRNGKey(key), **(small_kwargs(name) | overrides))


def step_loop(model, xs, resets, state):
    ys = []
    for x, reset in zip(xs, resets, strict=True):
        y, state = step(model, x, reset, state)
        ys.append(y)
    return jnp.stack(ys), state


def assert_trees_close(a, b, rtol=RTOL, atol=ATOL):
    a_leaves, a_tree = jax.tree_util.tree_flatten(a)
    b_leaves, b_tree = jax.tree_util.tree_flatten(b)
    assert a_tree == b_tree
    for x, y in zip(a_leaves, b_leaves, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert (x.shape, x.dtype) == (y.shape, y.dtype)
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(x, y)


def float_leaves(tree):
    leaves = (np.asarray(x) for x in jax.tree_util.tree_leaves(tree))
    return [x for x in leaves if np.issubdtype(x.dtype, np.floating)]


def index(tree, b):
    return jax.tree.map(lambda s: s[b], tree)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    model: object
    xs: jax.Array  # [T, D_IN]
    resets: jax.Array  # RESETS
    more_xs: jax.Array  # [PIECE, D_IN], a continuation without resets
    starts: dict  # "zero": init_state(); "prefix": the state after a random prefix


@pytest.fixture(scope="module", params=model_names())
def case(request) -> Case:
    model = build(request.param)
    k_xs, k_more, k_prefix = jr.split(jr.PRNGKey(1), 3)
    prefix = jr.normal(k_prefix, (T, D_IN))
    _, prefix_state = call(model, prefix, jnp.zeros(T, bool), model.init_state())
    assert any(np.any(leaf != 0) for leaf in float_leaves(prefix_state))
    return Case(
        name=request.param,
        model=model,
        xs=jr.normal(k_xs, (T, D_IN)),
        resets=jnp.asarray(RESETS),
        more_xs=jr.normal(k_more, (PIECE, D_IN)),
        starts={"zero": model.init_state(), "prefix": prefix_state},
    )


@pytest.fixture(scope="module")
def grads(case):
    """Gradients of a loss on the outputs from the last reset on, w.r.t. everything."""
    weights = jr.normal(jr.PRNGKey(2), (T - LAST_RESET, case.model.d_model))

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(args):
        model, xs, state = args
        ys, _ = model(xs, case.resets, state)
        return jnp.sum(weights * ys[LAST_RESET:])

    return grad((case.model, case.xs, case.starts["prefix"]))


@pytest.mark.parametrize("start", ["zero", "prefix"])
def test_call_equals_step_loop(case, start):
    state = case.starts[start]
    ys, final = call(case.model, case.xs, case.resets, state)
    ys_loop, final_loop = step_loop(case.model, case.xs, case.resets, state)
    assert (ys.shape, ys.dtype) == ((T, case.model.d_model), jnp.float32)
    assert_trees_close(ys, ys_loop)
    assert_trees_close(final, final_loop)


def test_reset_equals_fresh_run(case):
    model = case.model
    ys, final = call(model, case.xs, case.resets, case.starts["prefix"])
    fresh_ys, fresh_final = step_loop(
        model, case.xs[LAST_RESET:], case.resets[LAST_RESET:], model.init_state()
    )
    assert_trees_close(ys[LAST_RESET:], fresh_ys)
    # The two final states behave identically from here on.
    no_resets = jnp.zeros(PIECE, bool)
    more, _ = call(model, case.more_xs, no_resets, final)
    fresh_more, _ = call(model, case.more_xs, no_resets, fresh_final)
    assert_trees_close(more, fresh_more)
    # A reset given to `step` does the same.
    y, _ = step(model, case.xs[LAST_RESET], jnp.array(True), case.starts["prefix"])
    assert_trees_close(y, fresh_ys[0])


def test_no_gradient_across_reset(case, grads):
    _, g_xs, g_state = grads
    np.testing.assert_allclose(g_xs[:LAST_RESET], 0.0, atol=1e-7)
    for leaf in float_leaves(g_state):
        np.testing.assert_allclose(leaf, 0.0, atol=1e-7)
    assert np.all(np.isfinite(g_xs)) and np.any(g_xs[LAST_RESET:] != 0)


def test_grad_reaches_every_parameter(case, grads):
    g_model, _, _ = grads
    params = eqx.filter(case.model, eqx.is_inexact_array)
    assert jax.tree_util.tree_structure(g_model) == jax.tree_util.tree_structure(params)
    leaves = jax.tree_util.tree_leaves(g_model)
    assert leaves
    for leaf in leaves:
        assert np.all(np.isfinite(leaf))
        assert np.any(leaf != 0), "a parameter gets no gradient"


@pytest.mark.parametrize("start", ["zero", "prefix"])
def test_split_and_carry(case, start):
    state = case.starts[start]
    ys, final = call(case.model, case.xs, case.resets, state)
    pieces, carried = [], state
    for lo in range(0, T, PIECE):
        y, carried = call(
            case.model, case.xs[lo : lo + PIECE], case.resets[lo : lo + PIECE], carried
        )
        pieces.append(y)
    assert_trees_close(jnp.concatenate(pieces), ys)
    assert_trees_close(carried, final)


def test_state_keeps_shapes_and_dtypes(case):
    model = case.model
    init = jax.eval_shape(model.init_state)
    y, after_step = jax.eval_shape(model.step, case.xs[0], case.resets[0], init)
    ys, after_call = jax.eval_shape(model, case.xs, case.resets, init)
    assert (y.shape, y.dtype) == ((model.d_model,), jnp.float32)
    assert (ys.shape, ys.dtype) == ((T, model.d_model), jnp.float32)
    for after in (after_step, after_call, jax.eval_shape(lambda: case.starts["prefix"])):
        assert jax.tree_util.tree_structure(after) == jax.tree_util.tree_structure(init)
        for e, g in zip(
            jax.tree_util.tree_leaves(init), jax.tree_util.tree_leaves(after), strict=True
        ):
            assert (g.shape, g.dtype) == (e.shape, e.dtype)
    # `state_size` counts at least every float of the state and at most every element.
    leaves = jax.tree_util.tree_leaves(init)
    n_float = sum(x.size for x in leaves if jnp.issubdtype(x.dtype, jnp.floating))
    n_all = sum(x.size for x in leaves)
    assert isinstance(model.state_size, int)
    assert 0 < n_float <= model.state_size <= n_all


def test_jit_and_vmap(case):
    model = case.model
    xs = jnp.stack([case.xs, case.xs[::-1]])
    resets = jnp.stack([case.resets, jnp.zeros(T, bool).at[4].set(True)])
    states = jax.tree.map(
        lambda a, b: jnp.stack([a, b]), case.starts["zero"], case.starts["prefix"]
    )
    # Plain `jax.jit` (every leaf of the state must be an array) around `jax.vmap` over a
    # batch of sequences and states, of both forms.
    params, static = eqx.partition(model, eqx.is_array)

    @jax.jit
    def batched(params, xs, resets, states):
        model = eqx.combine(params, static)
        return jax.vmap(model)(xs, resets, states), jax.vmap(model.step)(
            xs[:, 0], resets[:, 0], states
        )

    (ys, finals), (y0, after0) = batched(params, xs, resets, states)
    assert np.all(np.isfinite(ys)) and np.all(np.isfinite(y0))
    for b in range(2):
        ref_ys, ref_final = step_loop(model, xs[b], resets[b], index(states, b))
        assert_trees_close(ys[b], ref_ys)
        assert_trees_close(index(finals, b), ref_final)
        ref_y, ref_after = step(model, xs[b, 0], resets[b, 0], index(states, b))
        assert_trees_close(y0[b], ref_y)
        assert_trees_close(index(after0, b), ref_after)


def test_serialise_roundtrip(case, tmp_path):
    model, state = case.model, case.starts["prefix"]
    eqx.tree_serialise_leaves(tmp_path / "model.eqx", model)
    eqx.tree_serialise_leaves(tmp_path / "state.eqx", state)
    other = build(case.name, key=3)
    ys, final = call(model, case.xs, case.resets, state)
    other_ys, _ = call(other, case.xs, case.resets, state)
    assert not np.allclose(other_ys, ys)
    loaded = eqx.tree_deserialise_leaves(tmp_path / "model.eqx", like=other)
    loaded_state = eqx.tree_deserialise_leaves(tmp_path / "state.eqx", like=model.init_state())
    assert_trees_close(loaded_state, state, rtol=0, atol=0)
    loaded_ys, loaded_final = call(loaded, case.xs, case.resets, loaded_state)
    assert_trees_close(loaded_ys, ys, rtol=0, atol=0)
    assert_trees_close(loaded_final, final, rtol=0, atol=0)


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
