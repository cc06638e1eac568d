"""Bad arguments to the functional core raise named errors (issue 3 item 7, issue 4 item 5).

SPEC §6: shapes that disagree, an unknown method / rule / oscillator, `r < 1`,
`chunk_size < 1`, non-boolean resets, a state of the wrong shape or type raise a
`ValueError` or `TypeError` whose message names the argument; a form an update rule
cannot run raises `NotImplementedError` naming the rule and the form. One test per case
(parametrised over `relit` / `arelit` where both take the argument). The checks happen
before any computation, so these tests compile nothing.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from relit_eqx.functional import AReLiTState, ReLiTState, arelit, relit
from relit_eqx.update_rules import RULES

T, D, N = 5, 3, 6
FNS = {"relit": relit, "arelit": arelit}


def good_inputs() -> dict:
    rng = np.random.default_rng(0)
    return dict(
        q=np.abs(rng.normal(size=(T, N))).astype(np.float32),
        k=np.abs(rng.normal(size=(T, N))).astype(np.float32),
        v=rng.normal(size=(T, D)).astype(np.float32),
        beta=rng.uniform(size=(T, D)).astype(np.float32),
        gamma=rng.uniform(size=(T, N)).astype(np.float32),
        resets=np.zeros(T, dtype=bool),
    )


def names(arg: str) -> str:
    """A regex matching `arg` as a whole word (so `k` does not match inside `chunk`)."""
    return rf"(?<![A-Za-z_]){re.escape(arg)}(?![A-Za-z_])"


def call(fn: str, inputs: dict, **kw):
    return FNS[fn](**inputs, **kw)


def test_good_inputs_pass():
    """The baseline inputs are accepted by both functions (so every error below is caused
    by the one argument each test breaks)."""
    for fn in FNS:
        out, _ = call(fn, good_inputs())
        assert out.shape == (T, D)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("arg", ["k", "v", "beta", "gamma", "resets"])
def test_length_disagrees(fn, arg):
    """One input with T+1 steps: ValueError naming that input."""
    x = good_inputs()
    x[arg] = np.concatenate([x[arg], x[arg][:1]])
    with pytest.raises(ValueError, match=names(arg)):
        call(fn, x)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("arg", ["k", "beta", "gamma"])
def test_width_disagrees(fn, arg):
    """`k`, `gamma` must have q's width n, `beta` v's width d: ValueError naming it."""
    x = good_inputs()
    x[arg] = np.concatenate([x[arg], x[arg][:, :1]], axis=1)
    with pytest.raises(ValueError, match=names(arg)):
        call(fn, x)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("arg", ["q", "k", "v", "beta", "gamma", "resets"])
@pytest.mark.parametrize("rank", ["low", "high"])
def test_wrong_rank(fn, arg, rank):
    """An input of the wrong rank (one axis dropped or added): ValueError naming it."""
    x = good_inputs()
    x[arg] = x[arg][0] if rank == "low" else x[arg][None]
    with pytest.raises(ValueError, match=names(arg)):
        call(fn, x)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_resets_not_boolean(fn, dtype):
    """`resets` as floats or ints (even 0/1): TypeError or ValueError naming `resets`."""
    x = good_inputs()
    x["resets"] = x["resets"].astype(dtype)
    with pytest.raises((TypeError, ValueError), match=names("resets")):
        call(fn, x)


@pytest.mark.parametrize("fn", FNS)
def test_unknown_method(fn):
    """`method="parallel"`: ValueError naming `method`."""
    with pytest.raises(ValueError, match=names("method")):
        call(fn, good_inputs(), method="parallel")


def test_unknown_rule():
    """`rule="hebbian"` (not registered): ValueError naming `rule`."""
    with pytest.raises(ValueError, match=names("rule")):
        relit(**good_inputs(), rule="hebbian")


def test_unknown_oscillator():
    """`oscillator="chebyshev"`: ValueError naming `oscillator`."""
    with pytest.raises(ValueError, match=names("oscillator")):
        arelit(**good_inputs(), oscillator="chebyshev")


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("chunk_size", [0, -3])
def test_chunk_size_below_one(fn, chunk_size):
    """`chunk_size < 1` for the chunked form: ValueError naming `chunk_size`."""
    with pytest.raises(ValueError, match=names("chunk_size")):
        call(fn, good_inputs(), method="chunked", chunk_size=chunk_size)


@pytest.mark.parametrize("r", [0, -1])
def test_r_below_one(r):
    """`r < 1`: ValueError naming `r`."""
    with pytest.raises(ValueError, match=names("r")):
        arelit(**good_inputs(), r=r)


@pytest.mark.parametrize(
    "field,shape",
    [("C", (N, D)), ("C", (D, N + 1)), ("s", (D,)), ("s", (N, 1))],
)
def test_relit_state_wrong_shape(field, shape):
    """A `ReLiTState` whose `C` is not `[d, n]` or `s` not `[n]`: ValueError naming
    `state`."""
    st = {"C": np.zeros((D, N), np.float32), "s": np.zeros(N, np.float32)}
    st[field] = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=names("state")):
        relit(**good_inputs(), state=ReLiTState(**st))


@pytest.mark.parametrize(
    "field,shape",
    [("v_tilde", (3, D)), ("v_tilde", (2, N)), ("k_tilde", (2, D)), ("s", (D,)), ("tick", (1,))],
)
def test_arelit_state_wrong_shape(field, shape):
    """An `AReLiTState` for r=2 whose `v_tilde` is not `[r, d]`, `k_tilde` not `[r, n]`,
    `s` not `[n]` or `tick` not a scalar: ValueError naming `state`."""
    st = {
        "v_tilde": np.zeros((2, D), np.float32),
        "k_tilde": np.zeros((2, N), np.float32),
        "s": np.zeros(N, np.float32),
        "tick": np.zeros((), np.int32),
    }
    st[field] = np.zeros(shape, np.int32 if field == "tick" else np.float32)
    with pytest.raises(ValueError, match=names("state")):
        arelit(**good_inputs(), r=2, state=AReLiTState(**st))


def test_relit_state_passed_to_arelit():
    """A `ReLiTState` given to `arelit`: TypeError (or ValueError) naming `state`."""
    st = ReLiTState(C=np.zeros((D, N), np.float32), s=np.zeros(N, np.float32))
    with pytest.raises((TypeError, ValueError), match=names("state")):
        arelit(**good_inputs(), state=st)


def test_arelit_state_passed_to_relit():
    """An `AReLiTState` given to `relit`: TypeError (or ValueError) naming `state`."""
    st = AReLiTState(
        v_tilde=np.zeros((2, D), np.float32),
        k_tilde=np.zeros((2, N), np.float32),
        s=np.zeros(N, np.float32),
        tick=np.zeros((), np.int32),
    )
    with pytest.raises((TypeError, ValueError), match=names("state")):
        relit(**good_inputs(), state=st)


UNSUPPORTED = [
    (name, m)
    for name, rule in RULES.items()
    for m in ("scan", "associative", "chunked")
    if m not in rule.methods
]


@pytest.mark.parametrize("rule,method", UNSUPPORTED, ids=[f"{r}-{m}" for r, m in UNSUPPORTED])
def test_unsupported_rule_form(rule, method):
    """A form the rule does not declare in `rule.methods` raises NotImplementedError
    whose message names both the rule and the form."""
    with pytest.raises(NotImplementedError) as info:
        relit(**good_inputs(), rule=rule, method=method)
    msg = str(info.value)
    assert re.search(names(rule), msg), msg
    assert re.search(names(method), msg), msg
