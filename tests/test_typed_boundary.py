"""The checked boundary: a wrong shape, rank or dtype at a public entry point raises at
trace time, and the first line of the message names the argument, the expected and the
received shape or dtype.

Calls on JAX arrays go through `eqx.filter_eval_shape`: they only trace, so the error
is shown to come before any compilation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from relit_eqx import functional as F
from relit_eqx.envs import TMaze
from relit_eqx.kernels import get_kernel
from relit_eqx.models import GRU, GTrXL, ReLiT, contract
from relit_eqx.nn.attention import ReLiTAttention
from relit_eqx.nn.dense import Dense
from relit_eqx.nn.gating import GRUGate

T, N, D = 5, 6, 3
KEY = jr.PRNGKey(0)


def _inputs(**changes: Any) -> dict[str, Any]:
    """Valid one-head inputs of the functional core (NumPy arrays), with `changes`."""
    rng = np.random.default_rng(0)
    args = {
        "q": rng.uniform(size=(T, N)).astype(np.float32),
        "k": rng.uniform(size=(T, N)).astype(np.float32),
        "v": rng.normal(size=(T, D)).astype(np.float32),
        "beta": rng.uniform(size=(T, D)).astype(np.float32),
        "gamma": rng.uniform(size=(T, N)).astype(np.float32),
        "resets": np.zeros(T, bool),
    }
    return args | changes


def _trace(fn: Callable[..., Any], *args: Any) -> Any:
    return eqx.filter_eval_shape(fn, *args)


def _relit(**changes: Any) -> Callable[[], Any]:
    return lambda: F.relit(**_inputs(**changes))


def _arelit(**changes: Any) -> Callable[[], Any]:
    return lambda: F.arelit(**_inputs(**changes))


def _model_call(model_fn: Callable[[], Any], xs: Any, resets: Any) -> Callable[[], Any]:
    def run():
        model = model_fn()
        return _trace(lambda m, x, r: m(x, r, m.init_state()), model, xs, resets)

    return run


def _model_step(model_fn: Callable[[], Any], x: Any, reset: Any) -> Callable[[], Any]:
    def run():
        model = model_fn()
        return _trace(lambda m, x, r: m.step(x, r, m.init_state()), model, x, reset)

    return run


def _relit_model():
    return ReLiT(D, d_model=8, n_layers=1, n_heads=1, d_head=4, d_ffn=8, eta=2, key=KEY)


def _gru():
    return GRU(D, d_model=8, key=KEY)


def _gtrxl():
    return GTrXL(D, d_model=8, n_layers=1, n_heads=1, d_head=4, d_ffn=8, memory_length=2, key=KEY)


def _attention_call(xs: Any, resets: Any) -> Callable[[], Any]:
    def run():
        layer = ReLiTAttention(8, n_heads=1, d_head=4, eta=2, key=KEY)
        return _trace(lambda m, x, r: m(x, r, m.init_state()), layer, xs, resets)

    return run


def _tmaze_step(action: Any) -> Callable[[], Any]:
    def run():
        env = TMaze(4)
        _, state = env.reset(KEY)
        return _trace(lambda s, a: env.step(KEY, s, a), state, action)

    return run


# (id, call, error type, fragments the first line of the message must contain)
CASES: list[tuple[str, Callable[[], Any], type[Exception], tuple[str, ...]]] = [
    (
        "relit-k-length",
        _relit(k=np.zeros((T + 1, N), np.float32)),
        ValueError,
        ("k", "length 6", "T=5"),
    ),
    (
        "relit-q-rank",
        _relit(q=np.zeros((2, T, N), np.float32)),
        ValueError,
        ("q", "rank 2", "(2, 5, 6)"),
    ),
    (
        "relit-state-shape",
        _relit(state=F.ReLiTState(C=np.zeros((D, N - 1), np.float32), s=np.zeros(N, np.float32))),
        ValueError,
        ("state.C", "(3, 5)", "(3, 6)"),
    ),
    (
        "arelit-resets-dtype",
        _arelit(resets=np.zeros(T, np.float32)),
        TypeError,
        ("resets", "boolean", "float32"),
    ),
    (
        "arelit-beta-width",
        _arelit(beta=np.zeros((T, D + 1), np.float32)),
        ValueError,
        ("beta", "width 4", "d=3"),
    ),
    (
        "model-call-batch-axis",
        _model_call(_relit_model, jnp.zeros((2, T, D)), jnp.zeros((2, T), bool)),
        ValueError,
        ("xs", "(T, d_in=3)", "(2, 5, 3)"),
    ),
    (
        "model-call-d_in",
        _model_call(_gtrxl, jnp.zeros((T, D + 1)), jnp.zeros(T, bool)),
        ValueError,
        ("xs", "4", "d_in is 3"),
    ),
    (
        "model-step-int-x",
        _model_step(_gru, jnp.zeros(D, jnp.int32), jnp.zeros((), bool)),
        TypeError,
        ("x", "floating", "int32"),
    ),
    (
        "model-step-reset-shape",
        _model_step(_gtrxl, jnp.zeros(D), jnp.zeros(1, bool)),
        ValueError,
        ("reset", "scalar", "(1,)"),
    ),
    (
        "dense-width",
        lambda: _trace(Dense(4, 2, key=KEY), jnp.zeros((T, D))),
        ValueError,
        ("x", "(*batch, d_in=4)", "(5, 3)"),
    ),
    (
        "gate-width",
        lambda: _trace(GRUGate(8, key=KEY), jnp.zeros(8), jnp.zeros(7)),
        ValueError,
        ("y", "(d_model=8,)", "(7,)"),
    ),
    (
        "attention-resets-length",
        _attention_call(jnp.zeros((T, 8)), jnp.zeros(T + 1, bool)),
        ValueError,
        ("resets", "(T=5,)", "(6,)"),
    ),
    (
        "kernel-p-leading-axes",
        lambda: _trace(get_kernel("pp_relu"), jnp.zeros((T, D)), jnp.zeros((T - 1, 2))),
        ValueError,
        ("p", "(5, eta)", "(4, 2)"),
    ),
    (
        "kernel-int-x",
        lambda: _trace(get_kernel("elu+1"), jnp.zeros((T, D), jnp.int32)),
        TypeError,
        ("x", "floating", "int32"),
    ),
    (
        "tmaze-float-action",
        _tmaze_step(jnp.zeros((), jnp.float32)),
        TypeError,
        ("action", "integer", "float32"),
    ),
    (
        "tmaze-bad-key",
        lambda: TMaze(4).reset(jnp.zeros(3, jnp.int32)),
        TypeError,
        ("key", "PRNG key", "int32", "(3,)"),
    ),
]


@pytest.mark.parametrize(
    "call, error, fragments", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input_names_argument_expected_and_received(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    first_line = str(info.value).splitlines()[0]
    for fragment in fragments:
        assert fragment in first_line, f"{fragment!r} not in {first_line!r}"


def test_valid_inputs_pass_the_boundary():
    """The same entry points accept the valid inputs the cases above distort."""
    out, _ = F.relit(**_inputs())
    assert out.shape == (T, D)
    out, _ = F.arelit(**_inputs())
    assert out.shape == (T, D)
    ys, _ = _trace(
        lambda m, x, r: m(x, r, m.init_state()), _gru(), jnp.zeros((T, D)), jnp.zeros(T, bool)
    )
    assert ys.shape == (T, 8)
    assert _trace(Dense(4, 2, key=KEY), jnp.zeros((T, 4))).shape == (T, 2)
    assert _trace(get_kernel("pp_relu"), jnp.zeros((T, D)), jnp.zeros((T, 2))).shape == (T, 6)
    obs, *_ = _tmaze_step(jnp.zeros((), jnp.int32))()
    assert obs.shape == (16,)


def test_checks_run_at_trace_time_only(monkeypatch):
    """Under `jit` the boundary's checks run when the function is traced; a cached call
    does not run them again (they cost nothing once compiled)."""
    calls = []
    original = contract.check_step_inputs

    def counting(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(contract, "check_step_inputs", counting)
    model = _gru()
    state = model.init_state()
    step = eqx.filter_jit(lambda m, x, r, s: m.step(x, r, s))
    step(model, jnp.zeros(D), jnp.zeros((), bool), state)
    assert len(calls) == 1  # traced once, checked once
    step(model, jnp.ones(D), jnp.ones((), bool), state)
    step(model, jnp.ones(D), jnp.zeros((), bool), state)
    assert len(calls) == 1  # cached: not checked again
