"""Bad arguments to the models raise an error that names the offending argument.

Inputs are checked at trace time, before any compilation, so the calls here only trace
(`eqx.filter_eval_shape`) and the models are built abstractly: nothing is compiled.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

from relit_eqx.models import GRU, LSTM, GTrXL, get_model, model_names, small_kwargs
from relit_eqx.nn.block import EncoderBlock
from relit_eqx.nn.gating import GRUGate
from relit_eqx.nn.xl_attention import XLAttention

D_IN = 3
T = 5
KEY = jr.PRNGKey(0)


def abstract_model(name: str, **overrides):
    kwargs = small_kwargs(name) | overrides
    return eqx.filter_eval_shape(lambda k: get_model(name)(D_IN, key=k, **kwargs), KEY)


def trace_call(model, xs, resets, state):
    return eqx.filter_eval_shape(lambda m, *args: m(*args), model, xs, resets, state)


def trace_step(model, x, reset, state):
    return eqx.filter_eval_shape(lambda m, *args: m.step(*args), model, x, reset, state)


@pytest.fixture(scope="module", params=model_names())
def model(request):
    return abstract_model(request.param)


XS = jnp.zeros((T, D_IN))
RESETS = jnp.zeros(T, bool)


def test_valid_inputs_pass(model):
    ys, _ = trace_call(model, XS, RESETS, model.init_state())
    y, _ = trace_step(model, XS[0], RESETS[0], model.init_state())
    assert ys.shape == (T, model.d_model) and y.shape == (model.d_model,)


def test_call_wrong_d_in(model):
    with pytest.raises(ValueError, match="d_in"):
        trace_call(model, jnp.zeros((T, D_IN + 1)), RESETS, model.init_state())


def test_call_xs_not_a_matrix(model):
    with pytest.raises(ValueError, match="xs"):
        trace_call(model, jnp.zeros((2, T, D_IN)), jnp.zeros((2, T), bool), model.init_state())


def test_call_resets_length_disagrees(model):
    with pytest.raises(ValueError, match="resets"):
        trace_call(model, XS, jnp.zeros(T + 1, bool), model.init_state())


def test_call_non_bool_resets(model):
    with pytest.raises(TypeError, match="resets"):
        trace_call(model, XS, jnp.zeros(T, jnp.float32), model.init_state())


def test_call_integer_xs(model):
    with pytest.raises(TypeError, match="xs"):
        trace_call(model, jnp.zeros((T, D_IN), jnp.int32), RESETS, model.init_state())


def test_step_wrong_d_in(model):
    with pytest.raises(ValueError, match="d_in"):
        trace_step(model, jnp.zeros(D_IN + 1), RESETS[0], model.init_state())


def test_step_reset_not_scalar(model):
    with pytest.raises(ValueError, match="reset"):
        trace_step(model, XS[0], jnp.zeros(1, bool), model.init_state())


def test_step_non_bool_reset(model):
    with pytest.raises(TypeError, match="reset"):
        trace_step(model, XS[0], jnp.zeros((), jnp.int32), model.init_state())


def _misshapen(state):
    leaves, treedef = jax.tree_util.tree_flatten(state)
    leaves[0] = jnp.zeros((leaves[0].size + 1,), leaves[0].dtype)
    return jax.tree_util.tree_unflatten(treedef, leaves)


@pytest.mark.parametrize("form", ["call", "step"])
def test_state_with_a_wrong_shape(model, form):
    state = _misshapen(model.init_state())
    with pytest.raises(ValueError, match="state"):
        if form == "call":
            trace_call(model, XS, RESETS, state)
        else:
            trace_step(model, XS[0], RESETS[0], state)


@pytest.mark.parametrize("form", ["call", "step"])
def test_state_with_a_wrong_structure(model, form):
    state = (model.init_state(), jnp.zeros(1))
    with pytest.raises(ValueError, match="state"):
        if form == "call":
            trace_call(model, XS, RESETS, state)
        else:
            trace_step(model, XS[0], RESETS[0], state)


def test_state_from_another_model(model):
    own = jax.eval_shape(model.init_state)
    others = [abstract_model(name).init_state() for name in model_names()]
    others = [s for s in others if jax.eval_shape(lambda s=s: s) != own]
    assert others, "every registered model has the same state layout"
    for state in others:
        with pytest.raises(ValueError, match="state"):
            trace_call(model, XS, RESETS, state)


@pytest.mark.parametrize(
    "name, state_from",
    [
        ("gtrxl", {"memory_length": 4}),
        ("gtrxl", {"n_layers": 3}),
        ("gtrxl", {"n_heads": 3}),
        ("gru", {"d_model": 8}),
        ("gru", {"n_layers": 1}),
        ("lstm", {"d_model": 8}),
    ],
)
def test_state_from_another_configuration(name, state_from):
    model = abstract_model(name)
    state = abstract_model(name, **state_from).init_state()
    with pytest.raises(ValueError, match="state"):
        trace_call(model, XS, RESETS, state)
    with pytest.raises(ValueError, match="state"):
        trace_step(model, XS[0], RESETS[0], state)


# --------------------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["d_in", "d_model"])
def test_every_model_rejects_a_zero_width(field):
    for name in model_names():
        kwargs = small_kwargs(name) | {"d_in": D_IN, field: 0}
        with pytest.raises(ValueError, match=field):
            get_model(name)(kwargs.pop("d_in"), key=KEY, **kwargs)


@pytest.mark.parametrize(
    "field, value",
    [
        ("memory_length", 0),
        ("n_layers", 0),
        ("n_heads", 0),
        ("d_head", 0),
        ("d_ffn", 0),
        ("d_model", -1),
        ("memory_length", 2.5),
        ("n_heads", True),
    ],
)
def test_gtrxl_invalid_hyperparameter(field, value):
    with pytest.raises(ValueError, match=field):
        GTrXL(D_IN, key=KEY, **(small_kwargs("gtrxl") | {field: value}))


@pytest.mark.parametrize("cls", [GRU, LSTM])
@pytest.mark.parametrize("field, value", [("n_layers", 0), ("d_model", 0), ("d_model", 4.0)])
def test_rnn_invalid_hyperparameter(cls, field, value):
    with pytest.raises(ValueError, match=field):
        cls(D_IN, key=KEY, **{field: value})


@pytest.mark.parametrize("field", ["d_model", "n_heads", "d_head", "memory_length"])
def test_xl_attention_invalid_hyperparameter(field):
    kwargs = dict(d_model=4, n_heads=1, d_head=2, memory_length=2) | {field: 0}
    with pytest.raises(ValueError, match=field):
        XLAttention(kwargs.pop("d_model"), key=KEY, **kwargs)


def test_gate_and_block_invalid_arguments():
    with pytest.raises(ValueError, match="d_model"):
        GRUGate(0, key=KEY)
    mixer = eqx.filter_eval_shape(XLAttention, 4, n_heads=1, d_head=2, memory_length=2, key=KEY)
    with pytest.raises(ValueError, match="d_ffn"):
        EncoderBlock(mixer, 4, 0, key=KEY)
    with pytest.raises(TypeError, match="mixer"):
        EncoderBlock(eqx.filter_eval_shape(GRUGate, 4, key=KEY), 4, 4, key=KEY)


def test_arelit_factored_needs_the_scan_form():
    kwargs = small_kwargs("arelit") | {"method": "chunked", "factored": True}
    with pytest.raises(ValueError, match="factored=True chooses the loop of method='scan'"):
        get_model("arelit")(D_IN, key=KEY, **kwargs)
