"""`check_sequence_model`: the sequence-model contract (the Concepts page) on any model.

Every property runs the model compiled, with one sequence length `T` and its split
pieces only, so a model compiles a handful of programs whatever hypothesis draws
(inputs, reset positions, starting states).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from hypothesis import strategies as st

from ._driver import make_settings, run_once, run_property

__all__ = ["MODEL_PROPERTIES", "check_sequence_model"]

MODEL_PROPERTIES = (
    "shapes_dtypes",
    "state_size",
    "call_equals_step",
    "split_and_carry",
    "reset",
    "nonfinite_before_reset",
    "jit_vmap",
    "grad_across_reset",
    "grad_every_parameter",
    "serialise",
)
"""The properties of `check_sequence_model`, in the order they run:

- `shapes_dtypes`: `init_state`, `step` and `__call__` keep the state's structure,
  shapes and dtypes, outputs are `[T, d_model]` / `[d_model]` float32 (`jax.eval_shape`);
- `state_size`: equals the number of floats in `init_state()`;
- `call_equals_step`: `__call__` equals the loop of `step` (outputs, final state), from
  the zero state and from a state left by an earlier sequence;
- `split_and_carry`: two calls carrying the state equal one call;
- `reset`: from the last reset on, outputs equal a fresh run, the final state behaves
  as a fresh run's, and `step` with a reset equals a fresh first step;
- `nonfinite_before_reset`: a NaN or infinity in an input or in the state before a
  reset changes nothing from the reset on, in `__call__` and in `step`;
- `jit_vmap`: plain `jax.jit` around `jax.vmap` of both forms is finite and equal to
  the unbatched runs;
- `grad_across_reset`: no gradient reaches inputs before a reset or the starting state;
  gradients are finite and reach the inputs after it;
- `grad_every_parameter`: every floating parameter receives a finite, non-zero gradient;
- `serialise`: `eqx.tree_serialise_leaves` round trip of the model and a state
  reproduces the outputs exactly.
"""


_call = eqx.filter_jit(lambda model, xs, resets, state: model(xs, resets, state))
_step = eqx.filter_jit(lambda model, x, reset, state: model.step(x, reset, state))


@eqx.filter_jit
def _grads(model, xs, resets, state, weights):
    def loss(args):
        m, x, s = args
        ys, _ = m(x, resets, s)
        return jnp.sum(weights * ys)

    return eqx.filter_grad(loss)((model, xs, state))


def _step_loop(model, xs, resets, state):
    ys = []
    for t in range(xs.shape[0]):
        y, state = _step(model, xs[t], resets[t], state)
        ys.append(y)
    return jnp.stack(ys), state


def _float_leaves(tree) -> list[np.ndarray]:
    leaves = (np.asarray(x) for x in jax.tree_util.tree_leaves(tree))
    return [x for x in leaves if np.issubdtype(x.dtype, np.floating)]


def _assert_trees_close(a, b, what: str, rtol: float, atol: float) -> None:
    a_leaves, a_tree = jax.tree_util.tree_flatten(a)
    b_leaves, b_tree = jax.tree_util.tree_flatten(b)
    assert str(a_tree) == str(b_tree), f"{what}: structure {a_tree} != {b_tree}"
    for i, (x, y) in enumerate(zip(a_leaves, b_leaves, strict=True)):
        x, y = np.asarray(x), np.asarray(y)
        assert (x.shape, x.dtype) == (y.shape, y.dtype), (
            f"{what}: leaf {i} is {x.shape} {x.dtype}, expected {y.shape} {y.dtype}"
        )
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"{what}, leaf {i}")
        else:
            np.testing.assert_array_equal(x, y, err_msg=f"{what}, leaf {i}")


def _index(tree, b: int):
    return jax.tree.map(lambda s: s[b], tree)


class _Setup:
    """The model, a second initialisation, and the fixed sizes of one check."""

    def __init__(self, factory: Callable[[int, Any], Any], d_in: int, T: int) -> None:
        self.model = factory(d_in, jr.PRNGKey(0))
        for attr in ("init_state", "step", "state_size", "d_model"):
            if not hasattr(self.model, attr):
                raise TypeError(
                    f"factory(d_in, key) must return a sequence model (see "
                    f"relit_eqx.models.SequenceModel); the returned "
                    f"{type(self.model).__name__} has no {attr!r}"
                )
        self.d_in, self.T = d_in, T
        self.piece = max(1, T // 3)
        self.d_model = int(self.model.d_model)
        k = jr.PRNGKey(12345)
        prefix = jr.normal(k, (T, d_in))
        _, self.prefix_state = _call(
            self.model, prefix, jnp.zeros(T, bool), self.model.init_state()
        )
        self.factory = factory
        self._batched: Callable[..., Any] | None = None

    def batched(self) -> Callable[..., Any]:
        """Plain `jax.jit` (every leaf of the state must be an array) around `jax.vmap`
        of both forms; built once per check, so examples share its compilation."""
        if self._batched is None:
            _, static = eqx.partition(self.model, eqx.is_array)

            @jax.jit
            def batched(params, xs, resets, states):
                m = eqx.combine(params, static)
                return jax.vmap(m)(xs, resets, states), jax.vmap(m.step)(
                    xs[:, 0], resets[:, 0], states
                )

            self._batched = batched
        return self._batched

    def start(self, kind: str):
        return self.model.init_state() if kind == "zero" else self.prefix_state


@st.composite
def _inputs(draw, setup: _Setup, min_resets: int = 0):
    """`(xs [T, d_in], resets [T], start kind, description)`."""
    T = setup.T
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.5, 1.0, 2.0]))
    positions = sorted(draw(st.sets(st.integers(0, T - 1), min_size=min_resets, max_size=3)))
    start = draw(st.sampled_from(["zero", "prefix"]))
    xs = jr.normal(jr.PRNGKey(seed), (T, setup.d_in)) * scale
    resets = np.zeros(T, bool)
    resets[positions] = True
    desc = (
        f"d_in={setup.d_in}, d_model={setup.d_model}, T={T}, resets at {positions}, "
        f"start={start} state, xs ~ N(0, {scale}²) (seed {seed})"
    )
    return xs, jnp.asarray(resets), start, desc


def _last_reset(draw, setup: _Setup, xs, resets):
    """Force a reset at a drawn step `j >= 1`, after every other reset."""
    j = draw(st.integers(1, setup.T - 1))
    res = np.asarray(resets).copy()
    res[j] = True
    res[j + 1 :] = False
    return jnp.asarray(res), j


def _prop_shapes(s: _Setup, note, tol) -> None:
    model, T = s.model, s.T
    note(f"d_in={s.d_in}, d_model={s.d_model}, T={T}")
    xs = jax.ShapeDtypeStruct((T, s.d_in), jnp.float32)
    resets = jax.ShapeDtypeStruct((T,), jnp.bool_)
    init = jax.eval_shape(model.init_state)
    x = jax.ShapeDtypeStruct((s.d_in,), jnp.float32)
    reset = jax.ShapeDtypeStruct((), jnp.bool_)
    y, after_step = jax.eval_shape(model.step, x, reset, init)
    ys, after_call = jax.eval_shape(model, xs, resets, init)
    assert (y.shape, y.dtype) == ((s.d_model,), jnp.float32), (
        f"step returns {y.shape} {y.dtype}; expected ({s.d_model},) float32"
    )
    assert (ys.shape, ys.dtype) == ((T, s.d_model), jnp.float32), (
        f"__call__ returns {ys.shape} {ys.dtype}; expected ({T}, {s.d_model}) float32"
    )
    for what, after in (("step", after_step), ("__call__", after_call)):
        assert str(jax.tree_util.tree_structure(after)) == str(
            jax.tree_util.tree_structure(init)
        ), f"the state after {what} has another structure than init_state()"
        for e, g in zip(
            jax.tree_util.tree_leaves(init), jax.tree_util.tree_leaves(after), strict=True
        ):
            assert (g.shape, g.dtype) == (e.shape, e.dtype), (
                f"a state leaf after {what} is {g.shape} {g.dtype}; init_state() has "
                f"{e.shape} {e.dtype}"
            )


def _prop_state_size(s: _Setup, note, tol) -> None:
    leaves = jax.tree_util.tree_leaves(s.model.init_state())
    n_float = sum(
        int(np.size(x)) for x in leaves if jnp.issubdtype(jnp.result_type(x), jnp.floating)
    )
    note(f"init_state() holds {n_float} floats")
    size = s.model.state_size
    assert isinstance(size, int) and not isinstance(size, bool), (
        f"state_size must be an int; got {type(size).__name__}"
    )
    assert size == n_float, f"state_size is {size} but init_state() holds {n_float} floats"


def _prop_call_step(s: _Setup, data, note, tol) -> None:
    xs, resets, start, desc = data.draw(_inputs(s))
    note(desc)
    state = s.start(start)
    ys, final = _call(s.model, xs, resets, state)
    ys_loop, final_loop = _step_loop(s.model, xs, resets, state)
    _assert_trees_close(ys, ys_loop, "__call__ outputs vs the step loop", *tol)
    _assert_trees_close(final, final_loop, "__call__ final state vs the step loop", *tol)


def _prop_split(s: _Setup, data, note, tol) -> None:
    xs, resets, start, desc = data.draw(_inputs(s))
    a = data.draw(st.sampled_from(sorted({s.piece, s.T - s.piece})))
    note(f"{desc}, split at {a}")
    state = s.start(start)
    ys, final = _call(s.model, xs, resets, state)
    y1, mid = _call(s.model, xs[:a], resets[:a], state)
    y2, end = _call(s.model, xs[a:], resets[a:], mid)
    _assert_trees_close(jnp.concatenate([y1, y2]), ys, "outputs of two carried calls", *tol)
    _assert_trees_close(end, final, "final state of two carried calls", *tol)


def _prop_reset(s: _Setup, data, note, tol) -> None:
    xs, resets, start, desc = data.draw(_inputs(s))
    resets, j = _last_reset(data.draw, s, xs, resets)
    note(f"{desc}, last reset at {j}")
    model = s.model
    ys, final = _call(model, xs, resets, s.start(start))
    fresh_ys, fresh_final = _step_loop(model, xs[j:], resets[j:], model.init_state())
    _assert_trees_close(ys[j:], fresh_ys, f"outputs from the reset at {j} vs a fresh run", *tol)
    more = jr.normal(jr.PRNGKey(7), (s.piece, s.d_in))
    none = jnp.zeros(s.piece, bool)
    y_more, _ = _call(model, more, none, final)
    y_fresh, _ = _call(model, more, none, fresh_final)
    _assert_trees_close(y_more, y_fresh, "continuing the final state vs a fresh run's", *tol)
    y, _ = _step(model, xs[j], jnp.array(True), s.prefix_state)
    _assert_trees_close(y, fresh_ys[0], "step with reset=True vs a fresh first step", *tol)


def _prop_nonfinite(s: _Setup, data, note, tol) -> None:
    xs, resets, start, desc = data.draw(_inputs(s))
    resets, j = _last_reset(data.draw, s, xs, resets)
    value = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    where = data.draw(st.sampled_from(["input", "state"]))
    state = s.start(start)
    if where == "input":
        i = data.draw(st.integers(0, j - 1))
        bad_xs = xs.at[i, 0].set(value)
        bad_state = state
        what = f"{value} in xs[{i}, 0]"
    else:
        bad_xs = xs
        leaves, tree = jax.tree_util.tree_flatten(state)
        idx = next(
            (n for n, x in enumerate(leaves) if jnp.issubdtype(jnp.result_type(x), jnp.floating)),
            None,
        )
        if idx is None:  # a state without floats cannot hold a NaN
            return
        leaves[idx] = (
            jnp.asarray(leaves[idx]).reshape(-1).at[0].set(value).reshape(np.shape(leaves[idx]))
        )
        bad_state = jax.tree_util.tree_unflatten(tree, leaves)
        what = f"{value} in the starting state"
    note(f"{desc}, last reset at {j}, {what}")
    ys, final = _call(s.model, xs, resets, state)
    bad_ys, bad_final = _call(s.model, bad_xs, resets, bad_state)
    _assert_trees_close(bad_ys[j:], ys[j:], f"__call__ outputs from the reset at {j}", *tol)
    _assert_trees_close(bad_final, final, "__call__ final state", *tol)
    loop_ys, _ = _step_loop(s.model, bad_xs, resets, bad_state)
    _assert_trees_close(loop_ys[j:], ys[j:], f"step outputs from the reset at {j}", *tol)


def _prop_jit_vmap(s: _Setup, data, note, tol) -> None:
    xs1, res1, start1, desc1 = data.draw(_inputs(s))
    xs2, res2, start2, desc2 = data.draw(_inputs(s))
    note(f"sequence 0: {desc1}; sequence 1: {desc2}")
    model = s.model
    xs = jnp.stack([xs1, xs2])
    resets = jnp.stack([res1, res2])
    states = jax.tree.map(lambda a, b: jnp.stack([a, b]), s.start(start1), s.start(start2))
    params, _ = eqx.partition(model, eqx.is_array)
    batched = s.batched()
    (ys, finals), (y0, after0) = batched(params, xs, resets, states)
    assert np.all(np.isfinite(np.asarray(ys))), "vmapped __call__ outputs are not finite"
    assert np.all(np.isfinite(np.asarray(y0))), "vmapped step outputs are not finite"
    for b in range(2):
        ref_ys, ref_final = _call(model, xs[b], resets[b], _index(states, b))
        _assert_trees_close(ys[b], ref_ys, f"jit(vmap(__call__)) sequence {b}", *tol)
        _assert_trees_close(_index(finals, b), ref_final, f"jit(vmap) final state {b}", *tol)
        ref_y, ref_after = _step(model, xs[b, 0], resets[b, 0], _index(states, b))
        _assert_trees_close(y0[b], ref_y, f"jit(vmap(step)) sequence {b}", *tol)
        _assert_trees_close(_index(after0, b), ref_after, f"jit(vmap(step)) state {b}", *tol)


def _prop_grad_reset(s: _Setup, data, note, tol) -> None:
    xs, resets, start, desc = data.draw(_inputs(s))
    resets, j = _last_reset(data.draw, s, xs, resets)
    note(f"{desc}, last reset at {j}, loss on the outputs from {j} on")
    w = np.array(jr.normal(jr.PRNGKey(2), (s.T, s.d_model)))
    w[:j] = 0.0
    _, g_xs, g_state = _grads(s.model, xs, resets, s.start(start), jnp.asarray(w))
    g_xs = np.asarray(g_xs)
    assert np.all(np.isfinite(g_xs)), "non-finite gradient w.r.t. the inputs"
    np.testing.assert_allclose(
        g_xs[:j], 0.0, atol=1e-7, err_msg=f"gradient crosses the reset at {j} to earlier inputs"
    )
    for leaf in _float_leaves(g_state):
        np.testing.assert_allclose(
            leaf, 0.0, atol=1e-7, err_msg=f"gradient crosses the reset at {j} to the state"
        )
    assert np.any(g_xs[j:] != 0), f"no gradient reaches the inputs from the reset at {j} on"


def _prop_grad_params(s: _Setup, data, note, tol) -> None:
    xs, resets, start, desc = data.draw(_inputs(s))
    note(desc)
    w = jr.normal(jr.PRNGKey(3), (s.T, s.d_model))
    g_model, _, _ = _grads(s.model, xs, resets, s.start(start), w)
    params = eqx.filter(s.model, eqx.is_inexact_array)
    assert str(jax.tree_util.tree_structure(g_model)) == str(
        jax.tree_util.tree_structure(params)
    ), "the gradient's structure differs from the parameters'"
    leaves = jax.tree_util.tree_leaves_with_path(g_model)
    assert leaves, "the model has no floating parameters"
    for path, leaf in leaves:
        name = jax.tree_util.keystr(path)
        assert np.all(np.isfinite(np.asarray(leaf))), f"non-finite gradient for {name}"
        assert np.any(np.asarray(leaf) != 0), f"the parameter {name} gets no gradient"


def _prop_serialise(s: _Setup, note, tol) -> None:
    model, state = s.model, s.prefix_state
    note(f"d_in={s.d_in}, T={s.T}, keys 0 (saved) and 1 (loaded into)")
    other = s.factory(s.d_in, jr.PRNGKey(1))
    xs = jr.normal(jr.PRNGKey(4), (s.T, s.d_in))
    resets = jnp.zeros(s.T, bool).at[s.T // 2].set(True)
    buf_m, buf_s = io.BytesIO(), io.BytesIO()
    eqx.tree_serialise_leaves(buf_m, model)
    eqx.tree_serialise_leaves(buf_s, state)
    buf_m.seek(0)
    buf_s.seek(0)
    loaded = eqx.tree_deserialise_leaves(buf_m, like=other)
    loaded_state = eqx.tree_deserialise_leaves(buf_s, like=model.init_state())
    _assert_trees_close(loaded_state, state, "deserialised state", 0.0, 0.0)
    ys, final = _call(model, xs, resets, state)
    other_ys, _ = _call(other, xs, resets, state)
    assert not np.allclose(np.asarray(other_ys), np.asarray(ys)), (
        "factory(d_in, key) gives the same outputs for two keys: the round trip proves nothing"
    )
    loaded_ys, loaded_final = _call(loaded, xs, resets, loaded_state)
    _assert_trees_close(loaded_ys, ys, "outputs of the deserialised model", 0.0, 0.0)
    _assert_trees_close(loaded_final, final, "final state of the deserialised model", 0.0, 0.0)


_ONCE = {
    "shapes_dtypes": _prop_shapes,
    "state_size": _prop_state_size,
    "serialise": _prop_serialise,
}
_DRAWN = {
    "call_equals_step": _prop_call_step,
    "split_and_carry": _prop_split,
    "reset": _prop_reset,
    "nonfinite_before_reset": _prop_nonfinite,
    "jit_vmap": _prop_jit_vmap,
    "grad_across_reset": _prop_grad_reset,
    "grad_every_parameter": _prop_grad_params,
}
_FORMS = {
    "shapes_dtypes": "init_state/step/__call__ under eval_shape",
    "state_size": "state_size",
    "call_equals_step": "__call__ vs step",
    "split_and_carry": "__call__",
    "reset": "__call__ and step",
    "nonfinite_before_reset": "__call__ and step",
    "jit_vmap": "jax.jit(jax.vmap(__call__ and step))",
    "grad_across_reset": "grad of __call__",
    "grad_every_parameter": "grad of __call__",
    "serialise": "eqx.tree_serialise_leaves",
}


def _once_body(fn: Callable[..., None], setup: _Setup, tol: tuple, note: Any) -> None:
    fn(setup, note, tol)


def _drawn_body(fn: Callable[..., None], setup: _Setup, tol: tuple, data: Any, note: Any) -> None:
    fn(setup, data, note, tol)


def check_sequence_model(
    factory: Callable[[int, Any], Any],
    *,
    d_in: int = 3,
    T: int = 9,
    properties: Iterable[str] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_examples: int = 4,
    deadline: float | None = None,
    settings: Any = None,
    name: str | None = None,
) -> None:
    """Check the sequence-model contract on the model `factory(d_in, key)` builds.

    **Arguments:**

    - `factory`: `factory(d_in, key) -> model`, e.g.
      `lambda d_in, key: MyModel(d_in, d_model=16, key=key)`; called with the keys
      `PRNGKey(0)` and `PRNGKey(1)` (the two must give different models).
    - `d_in`, `T`: input width and sequence length (`T >= 3`); split pieces are
      `T // 3` long, so a model compiles for three lengths.
    - `properties`: a subset of `MODEL_PROPERTIES` (default: all), in that order.
    - `rtol`, `atol`: float32 tolerances between two forms of the model.
    - `max_examples`, `deadline`: hypothesis settings per property; or a whole
      `hypothesis.settings` as `settings`.
    - `name`: how failures name the model (default: its class name).

    **Raises:** `PropertyFailure` (an `AssertionError`) naming the property, the form and
    the shrunk counterexample (sizes, reset positions, starting state).
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 3:
        raise ValueError(f"T must be an int >= 3; got {T!r}")
    if isinstance(d_in, bool) or not isinstance(d_in, int) or d_in < 1:
        raise ValueError(f"d_in must be a positive int; got {d_in!r}")
    if properties is None:
        props = list(MODEL_PROPERTIES)
    else:
        props = [properties] if isinstance(properties, str) else list(properties)
        for p in props:
            if p not in MODEL_PROPERTIES:
                raise ValueError(f"unknown property {p!r}; choose from {list(MODEL_PROPERTIES)}")
    sets = make_settings(max_examples, deadline, settings)
    setup = _Setup(factory, d_in, T)
    subject = f"sequence model {name or type(setup.model).__name__}"
    tol = (rtol, atol)
    for prop in props:
        if prop in _ONCE:
            run_once(subject, prop, _FORMS[prop], partial(_once_body, _ONCE[prop], setup, tol))
        else:
            run_property(
                subject, prop, _FORMS[prop], partial(_drawn_body, _DRAWN[prop], setup, tol), sets
            )
