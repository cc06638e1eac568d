"""`check_kernel`, `check_update_rule`, `check_arelit`: the functional core's properties.

Each property runs under hypothesis on one flavor (a ReLiT rule or an AReLiT family)
and one evaluation form; the reference is a float64 step loop written independently of
the library's forms (`relit_eqx.testing.oracles`), or for a rule the library has no
oracle for, the `oracle` the caller gives, or else the rule's own `step` run in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from .. import update_rules as _ur
from ..kernels import KERNELS, Kernel
from ..update_rules import RULES, UpdateRule
from . import oracles as O
from . import strategies as S
from ._driver import make_settings, registered_rule, run_once, run_property

__all__ = [
    "FORM_PROPERTIES",
    "KERNEL_PROPERTIES",
    "check_kernel",
    "check_update_rule",
    "check_arelit",
]

FORM_PROPERTIES = (
    "oracle",
    "split_and_carry",
    "reset",
    "nonfinite_before_reset",
    "gradients",
    "zero_inputs",
    "long",
)
"""The properties of a flavor in one form, in the order they run:

- `oracle`: outputs and final state equal the float64 step loop and the scan form;
- `split_and_carry`: a sequence cut anywhere, the state carried, equals one call;
- `reset`: from the last reset on, outputs and final state do not depend on the past
  (bit for bit) and equal a fresh run on the suffix;
- `nonfinite_before_reset`: a NaN or infinity in an input before a reset changes no
  output before it (causality) and none from the reset on;
- `gradients`: reverse mode equals reverse mode of the scan form (gates exactly 0 and 1
  included), all finite, and no gradient crosses a reset;
- `zero_inputs`: all-zero features and values give exactly zero, never NaN;
- `long`: 300 steps with stretches of extreme gates, equal to the oracle and scan.
"""

KERNEL_PROPERTIES = ("features", *FORM_PROPERTIES)
"""`features` (finite, non-negative, of the declared width; outer-product factors
multiply back; the built-in maps equal their formulas), then `FORM_PROPERTIES`."""

RTOL = 1e-4  # float32 forms against the float64 oracle and against each other
GRAD_RTOL = 1e-4  # float32 reverse mode of two evaluation orders
GRAD_GLOBAL = 1e-5  # ... and relative to the largest gradient entry of all inputs
T_GRAD = 13  # gradient bucket: two chunks of 8 (the second partial)
CHUNK_GRAD = 8

RuleOracle = Callable[..., tuple[Any, Any, Any]]


# ------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------


def _rule_of(flavor: S.Flavor) -> UpdateRule:
    return flavor.rule if isinstance(flavor.rule, UpdateRule) else RULES[flavor.name]


def _builtin_oracle(flavor: S.Flavor) -> bool:
    if flavor.is_arelit:
        return True
    rule = _rule_of(flavor)
    return flavor.name in O.RULE_ORACLES and type(rule).__module__ == _ur.__name__


def _loop64(step: RuleOracle, inputs: tuple, state: tuple, eps: float, use_jax: bool):
    """A float64 step loop of `step(C, s, q, k, v, beta, gamma, eps) -> (out, C, s)`;
    a reset zeroes the state before its step."""
    q, k, v, b, g = (np.asarray(x, np.float64) for x in inputs[:5])
    res = np.asarray(inputs[5])
    C0, s0 = (np.asarray(x, np.float64) for x in state[:2])
    ctx = jax.enable_x64(True) if use_jax else _nullcontext()
    with ctx:
        conv = jnp.asarray if use_jax else np.asarray
        C, s = conv(C0), conv(s0)
        outs = []
        for t in range(q.shape[0]):
            if res[t]:
                C, s = conv(np.zeros_like(C0)), conv(np.zeros_like(s0))
            o, C, s = step(C, s, conv(q[t]), conv(k[t]), conv(v[t]), conv(b[t]), conv(g[t]), eps)
            outs.append(np.asarray(o, np.float64))
        return np.stack(outs), (np.asarray(C, np.float64), np.asarray(s, np.float64))


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _reference(
    flavor: S.Flavor,
    case: S.Case,
    oracle: RuleOracle | None,
    *,
    eps: float = 1e-6,
    magnitude: bool = False,
    inputs: tuple | None = None,
    state: tuple | None = None,
):
    """float64 `(out, state tuple)`; with `magnitude`, round-off scales (or `None` where
    there is no magnitude run: then the largest entry of the reference is the scale)."""
    q, k, v, b, g, res = case.inputs if inputs is None else inputs
    st_ = case.state if state is None else state
    if flavor.is_arelit:
        V0, K0, s0, tick0 = st_
        kw = dict(r=case.r, oscillator=flavor.name, eps=eps, magnitude=magnitude)
        out, V, K, s, tick = O.arelit_step(q, k, v, b, g, res, V0, K0, s0, int(tick0), **kw)
        return out, (V, K, s, tick)
    if _builtin_oracle(flavor):
        fn = O.relit_magnitude if magnitude else O.relit_step
        out, C, s = fn(q, k, v, b, g, res, st_[0], st_[1], rule=flavor.name, eps=eps)
        return out, (C, s)
    if magnitude:
        return None
    if oracle is not None:
        return _loop64(oracle, (q, k, v, b, g, res), st_, eps, use_jax=False)
    return _loop64(_rule_of(flavor).step, (q, k, v, b, g, res), st_, eps, use_jax=True)


def _scales(flavor, case, oracle, expected_out, expected_state, **kw):
    mag = _reference(flavor, case, oracle, magnitude=True, **kw)
    if mag is not None:
        return mag
    return (
        np.max(np.abs(expected_out)),
        tuple(np.max(np.abs(np.asarray(x, dtype=np.float64))) for x in expected_state),
    )


def _assert_states_close(flavor, actual, expected, scale, *, rtol=RTOL, what="state"):
    names = ("v_tilde", "k_tilde", "s", "tick") if flavor.is_arelit else ("C", "s")
    assert len(actual) == len(names), f"{what}: {len(actual)} state leaves, expected {names}"
    for name, a, e, sc in zip(names, actual, expected, scale, strict=True):
        if name == "tick":
            assert int(a) == int(e), f"{what}.tick: {int(a)} != {int(e)}"
        else:
            S.assert_close(a, e, sc, rtol=rtol, what=f"{what}.{name}")


# ------------------------------------------------------------------------------------
# Properties: each is body(flavor, method, draw-or-case, note, ctx)
# ------------------------------------------------------------------------------------


class _Ctx:
    """What every property needs besides the drawn input."""

    def __init__(self, kernels: tuple, oracle: RuleOracle | None) -> None:
        self.kernels = kernels
        self.oracle = oracle


def _all_close(flavor, case, method, ctx, what):
    """`method` on `case` equals the reference (outputs, final state) and scan."""
    out, state = S.run(flavor, case, method)
    s_out, s_state = out, state
    if method != "scan":
        s_out, s_state = S.run(flavor, case, "scan")
    e_out, e_state = _reference(flavor, case, ctx.oracle)
    m_out, m_state = _scales(flavor, case, ctx.oracle, e_out, e_state)
    S.assert_close(out, e_out, m_out, rtol=RTOL, what=f"{what}: out vs float64 loop")
    _assert_states_close(flavor, state, e_state, m_state, what=f"{what}: final state vs loop")
    S.assert_close(out, s_out, m_out, rtol=RTOL, what=f"{what}: out vs scan")
    _assert_states_close(flavor, state, s_state, m_state, what=f"{what}: final state vs scan")


def _prop_oracle(flavor, method, data, note, ctx):
    strategy = st.one_of(
        S.cases(flavor, kernels=ctx.kernels),
        S.cases(flavor, kernels=ctx.kernels, widths=(S.WIDE,), t_buckets=(5,)),
    )
    case = data.draw(strategy)
    note(S.describe(case, chunk_size=S.chunk_for(case.T)))
    _all_close(flavor, case, method, ctx, method)


def _prop_long(flavor, method, data, note, ctx):
    kinds = ("zero", "one", "lo", "hi", "mixed", "uniform")
    case = data.draw(S.cases(flavor, kernels=ctx.kernels, t_buckets=(S.LONG_T,), gate_kinds=kinds))
    note(S.describe(case, chunk_size=S.chunk_for(case.T)))
    _all_close(flavor, case, method, ctx, f"{method}, long")


@st.composite
def _split_plan(draw, T: int):
    """Piece lengths from the smaller buckets, summing to T (no new shapes). (No return
    annotation: a runtime checker would sample the list with `random` inside a strategy.)"""
    parts, left = [], T
    while left > 0:
        parts.append(draw(st.sampled_from([b for b in S.T_BUCKETS if b <= left and b < max(T, 2)])))
        left -= parts[-1]
    return parts


def _prop_split(flavor, method, data, note, ctx):
    case = data.draw(S.cases(flavor, kernels=ctx.kernels, t_buckets=(5, 37)))
    parts = data.draw(_split_plan(case.T))
    note(S.describe(case, pieces=parts))
    out, state = S.run(flavor, case, method)
    pieces, carried, a = [], case.state, 0
    for ln in parts:
        inputs = tuple(x[a : a + ln] for x in case.inputs)
        o, carried = S.run(flavor, case, method, inputs=inputs, state=carried)
        pieces.append(o)
        a += ln
    ref_out, ref_state = _reference(flavor, case, ctx.oracle)
    m_out, m_state = _scales(flavor, case, ctx.oracle, ref_out, ref_state)
    S.assert_close(np.concatenate(pieces), out, m_out, rtol=RTOL, what=f"pieces {parts}")
    _assert_states_close(flavor, carried, state, m_state, what=f"carried state {parts}")


def _with_reset(flavor, data, ctx):
    case = data.draw(S.cases(flavor, kernels=ctx.kernels, t_buckets=(5, 37)))
    L = data.draw(st.sampled_from([b for b in S.T_BUCKETS if b < case.T]))
    j = case.T - L
    res = case.resets.copy()
    res[j] = True
    return case.replace(resets=res), j


def _prop_reset(flavor, method, data, note, ctx):
    case, j = _with_reset(flavor, data, ctx)
    T = case.T
    other = data.draw(
        S.cases(flavor, kernel=case.kernel, t_buckets=(T,), r_choices=(case.r or S.R_FORMS,))
    )
    note(S.describe(case, last_reset=j))
    out, state = S.run(flavor, case, method)
    mixed = tuple(
        np.concatenate([o[:j], x[j:]]) for o, x in zip(other.inputs, case.inputs, strict=True)
    )
    out2, state2 = S.run(flavor, case, method, inputs=mixed, state=other.state)
    np.testing.assert_array_equal(
        out2[j:], out[j:], err_msg=f"outputs from the reset at {j} on depend on the past"
    )
    for a, b in zip(state2, state, strict=True):
        np.testing.assert_array_equal(a, b, err_msg="the final state depends on the past")
    zero = tuple(np.zeros_like(x) for x in case.state)
    suffix = tuple(x[j:] for x in case.inputs)
    fresh, fresh_state = S.run(flavor, case, method, inputs=suffix, state=zero)
    q, k, v, b, g, res = suffix
    ref = case.replace(q=q, k=k, v=v, beta=b, gamma=g, resets=res, state=zero)
    e_out, e_state = _reference(flavor, ref, ctx.oracle)
    m_out, m_state = _scales(flavor, ref, ctx.oracle, e_out, e_state)
    S.assert_close(out[j:], fresh, m_out, rtol=RTOL, what="suffix vs a fresh run")
    S.assert_close(out[j:], e_out, m_out, rtol=RTOL, what="suffix vs a fresh float64 loop")
    _assert_states_close(flavor, state, fresh_state, m_state, what="final state vs fresh run")


_INPUT_NAMES = ("q", "k", "v", "beta", "gamma")


def _prop_nonfinite(flavor, method, data, note, ctx):
    case, j = _with_reset(flavor, data, ctx)
    if j < 1:  # pragma: no cover - the buckets give j >= 1
        return
    where = data.draw(st.sampled_from([*_INPUT_NAMES, "state"]))
    value = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    i = data.draw(st.integers(0, j - 1))
    inputs = [np.array(x) for x in case.inputs]
    state = tuple(np.array(x) for x in case.state)
    if where == "state":
        state[0].reshape(-1)[0] = value
        i = 0
    else:
        inputs[_INPUT_NAMES.index(where)][i, 0] = value
    note(S.describe(case, last_reset=j, nonfinite=f"{value} in {where} at step {i}"))
    out, fin = S.run(flavor, case, method)
    out2, fin2 = S.run(flavor, case, method, inputs=tuple(inputs), state=state)
    if where != "state" and i > 0:
        np.testing.assert_array_equal(
            out2[:i], out[:i], err_msg=f"{value} at step {i} changes outputs before it"
        )
    np.testing.assert_array_equal(
        out2[j:], out[j:], err_msg=f"{value} at step {i} leaks past the reset at {j}"
    )
    for a, b in zip(fin2, fin, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=f"{value} leaks into the final state")


def _grad_units(x: np.ndarray) -> np.ndarray:
    """Gate gradients in logit units `γ(1-γ)` inside (0, 1); as they are at exactly 0
    and 1, where the logit is infinite but the gradient must still be right."""
    x = np.asarray(x, np.float64)
    inside = (x > 0) & (x < 1)
    return np.where(inside, x * (1.0 - x), 1.0)


def _assert_grads_close(flavor, case, method, cot_out, cot_state, what):
    """Reverse mode of `method` vs reverse mode of scan, entry by entry, gate gradients in
    logit units. Tolerance per entry:
    `GRAD_RTOL·(|ref| + max over the array |ref|) + GRAD_GLOBAL·max over all arrays |ref|`
    (a gradient that is a cancelling difference keeps ~eps32 of its terms in any float32
    evaluation order); a wrong gradient of any visible size fails."""
    g = S.vjp(flavor, case, method, cot_out, cot_state, chunk_size=CHUNK_GRAD)
    ref = S.vjp(flavor, case, "scan", cot_out, cot_state, chunk_size=CHUNK_GRAD)
    unit = {"beta": _grad_units(case.beta), "gamma": _grad_units(case.gamma)}
    scaled = {name: np.asarray(x, np.float64) * unit.get(name, 1.0) for name, x in ref.items()}
    top = max(float(np.max(np.abs(x))) for x in scaled.values())
    for name, r_ in scaled.items():
        assert np.all(np.isfinite(r_)), f"{what}: the scan form's d/d{name} is not finite"
        act = np.asarray(g[name], np.float64) * unit.get(name, 1.0)
        scale = np.max(np.abs(r_)) + top * GRAD_GLOBAL / GRAD_RTOL
        S.assert_close(act, r_, scale, rtol=GRAD_RTOL, what=f"{what} d/d{name}")


def _prop_gradients(flavor, method, data, note, ctx):
    nf = 3 if flavor.is_arelit else 2
    case = data.draw(S.cases(flavor, kernels=ctx.kernels, t_buckets=(T_GRAD,)))
    j = data.draw(st.integers(1, case.T - 1))
    note(S.describe(case, chunk_size=CHUNK_GRAD, reset_added_at=j))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    cot_out = rng.normal(size=case.v.shape).astype(np.float32)
    cot_state = tuple(rng.normal(size=np.shape(x)).astype(np.float32) for x in case.state[:nf])
    if method != "scan":
        _assert_grads_close(flavor, case, method, cot_out, cot_state, f"{method} vs scan")
    res = case.resets.copy()
    res[j] = True
    case = case.replace(resets=res)
    cot_out = cot_out.copy()
    cot_out[:j] = 0.0
    g = S.vjp(flavor, case, method, cot_out, cot_state, chunk_size=CHUNK_GRAD)
    for name, x in g.items():
        assert np.all(np.isfinite(x)), f"non-finite gradient d/d{name}"
    for name in _INPUT_NAMES:
        np.testing.assert_array_equal(
            g[name][:j], 0.0, err_msg=f"gradient crosses the reset at {j}: d/d{name}"
        )
    for i in range(nf):
        np.testing.assert_array_equal(
            g[f"state[{i}]"], 0.0, err_msg=f"gradient crosses the reset at {j} to the state"
        )


def _prop_zero_inputs(flavor, method, note, ctx):
    T, r = 5, (S.R_FORMS if flavor.is_arelit else None)
    z = S.Case(
        ctx.kernels[0],
        np.zeros((T, S.N), np.float32),
        np.zeros((T, S.N), np.float32),
        np.zeros((T, S.D), np.float32),
        np.full((T, S.D), 0.5, np.float32),
        np.full((T, S.N), 0.5, np.float32),
        np.zeros(T, bool),
        (),
        r=r,
    )
    state: tuple
    if flavor.is_arelit:
        state = (
            np.zeros((S.R_FORMS, S.D), np.float32),
            np.zeros((S.R_FORMS, S.N), np.float32),
            np.zeros(S.N, np.float32),
            np.int32(0),
        )
    else:
        state = (np.zeros((S.D, S.N), np.float32), np.zeros(S.N, np.float32))
    z = z.replace(state=state)
    note(S.describe(z) + ", all features and values 0")
    out, st_ = S.run(flavor, z, method)
    np.testing.assert_array_equal(out, 0.0, err_msg="outputs of all-zero inputs")
    for x in st_[: 3 if flavor.is_arelit else 2]:
        np.testing.assert_array_equal(x, 0.0, err_msg="state after all-zero inputs")


_HYPOTHESIS_PROPS = {
    "oracle": _prop_oracle,
    "split_and_carry": _prop_split,
    "reset": _prop_reset,
    "nonfinite_before_reset": _prop_nonfinite,
    "gradients": _prop_gradients,
    "long": _prop_long,
}


def _zero_body(flavor: S.Flavor, method: str, ctx: _Ctx, note: Callable[[str], None]) -> None:
    _prop_zero_inputs(flavor, method, note, ctx)


def _drawn_body(
    body: Callable[..., None],
    flavor: S.Flavor,
    method: str,
    ctx: _Ctx,
    data: Any,
    note: Callable[[str], None],
) -> None:
    body(flavor, method, data, note, ctx)


def _check_flavor(
    subject: str,
    flavor: S.Flavor,
    kernels: tuple,
    properties: Sequence[str],
    settings: Any,
    oracle: RuleOracle | None,
    long_settings: Any,
) -> None:
    ctx = _Ctx(kernels, oracle)
    for prop in properties:
        for method in flavor.methods:
            form = f"{flavor.id}, method={method!r}"
            if prop == "zero_inputs":
                run_once(
                    subject,
                    prop,
                    form,
                    partial(_zero_body, flavor, method, ctx),
                )
                continue
            body = _HYPOTHESIS_PROPS[prop]
            per_kernel = [(k,) for k in kernels] if prop == "oracle" else [kernels]
            for pool in per_kernel:
                sub_ctx = _Ctx(pool, oracle)
                run_property(
                    subject,
                    prop,
                    form,
                    partial(_drawn_body, body, flavor, method, sub_ctx),
                    long_settings if prop == "long" else settings,
                )


def _check_properties(properties: Iterable[str] | None, allowed: Sequence[str]) -> list[str]:
    if properties is None:
        return list(allowed)
    if isinstance(properties, str):
        properties = [properties]
    props = list(properties)
    for p in props:
        if p not in allowed:
            raise ValueError(f"unknown property {p!r}; choose from {list(allowed)}")
    return props


def _check_methods(methods: Iterable[str] | None) -> tuple[str, ...] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = [methods]
    out = tuple(methods)
    for m in out:
        if m not in S.METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {list(S.METHODS)}")
    return out


def _resolve_rule(rule: str | UpdateRule) -> UpdateRule:
    if isinstance(rule, UpdateRule):
        return rule
    if isinstance(rule, str):
        return _ur.get_rule(rule)
    raise TypeError(
        f"rule must be a registered name or a relit_eqx.update_rules.UpdateRule; "
        f"got {type(rule).__name__}"
    )


def _long_settings(settings: Any) -> Any:
    return hypothesis.settings(settings, max_examples=max(1, settings.max_examples // 4))


# ------------------------------------------------------------------------------------
# Public checks
# ------------------------------------------------------------------------------------


def _features_property(kern: Kernel, subject: str, settings: Any) -> None:
    def body(data: Any, note: Callable[[str], None]) -> None:
        seed = data.draw(st.integers(0, 2**32 - 1))
        scale = data.draw(st.sampled_from([0.1, 1.0, 5.0]))
        rng = np.random.default_rng(seed)
        builtin = KERNELS.get(kern.name) is kern and kern.name in O.KERNEL_ORACLES
        for d, eta in ((3, 2), (4, 3), (1, 1)):
            eta_used = eta if kern.uses_p else 1
            note(f"kernel={kern.name}, x: [2, 5, {d}], eta={eta_used}, scale={scale}")
            x = (rng.normal(size=(2, 5, d)) * scale).astype(np.float32)
            p = (rng.normal(size=(2, 5, eta)) * scale).astype(np.float32) if kern.uses_p else None
            if p is not None and d == 1:  # exact zeros in the second projection
                p = np.where(rng.uniform(size=p.shape) < 0.5, 0.0, p).astype(np.float32)
            n = kern.feature_dim(d, eta_used)
            out = S.features(kern, x, p)
            assert out.shape == (2, 5, n), (
                f"features have shape {out.shape}; feature_dim({d}, {eta_used}) = {n} "
                f"declares (2, 5, {n})"
            )
            assert np.all(np.isfinite(out)), "non-finite features"
            if np.any(out < 0):
                raise AssertionError(
                    f"negative features (min {float(out.min()):.4g}): the normaliser sᵀφ(q) "
                    "can reach zero or change sign"
                )
            if builtin:
                want = O.KERNEL_ORACLES[kern.name](O.f64(x), None if p is None else O.f64(p), n)
                np.testing.assert_allclose(
                    out, want, rtol=2e-6, atol=1e-6, err_msg="features vs the formula"
                )
            left, right = (np.asarray(z) for z in kern.outer_factors(x, p))
            assert left.shape[:-1] == right.shape[:-1] == (2, 5), "factors' leading axes"
            assert left.shape[-1] * right.shape[-1] == n, "factors' widths do not multiply to n"
            if kern.factors is not None:
                assert left.shape[-1] == eta, f"left factor width {left.shape[-1]} != eta {eta}"
            prod = np.einsum("...i,...j->...ij", left, right).reshape(2, 5, n)
            np.testing.assert_allclose(
                prod, out, rtol=2e-6, atol=1e-6, err_msg="vec(left ⊗ right) != features"
            )

    run_property(subject, "features", "the feature map", body, settings)


def check_kernel(
    kernel: str | Kernel,
    *,
    rules: Sequence[str | UpdateRule] | None = None,
    oscillators: Sequence[str] = ("paper", "fourier"),
    properties: Iterable[str] | None = None,
    methods: Iterable[str] | None = None,
    max_examples: int = 4,
    deadline: float | None = None,
    settings: Any = None,
) -> None:
    """Check a kernel (feature map) under every update rule and every form.

    **Arguments:**

    - `kernel`: a registered name or a `relit_eqx.kernels.Kernel` (registered or not).
    - `rules`: the update rules to run it under (names or objects; default: every
      registered rule); `oscillators`: the AReLiT families to run it under.
    - `properties`: a subset of `KERNEL_PROPERTIES` (default: all), in that order.
    - `methods`: a subset of `("scan", "associative", "chunked")` (default: every form
      each rule supports).
    - `max_examples`, `deadline`: hypothesis settings per property and form (`long`
      runs a quarter of the examples); or a whole `hypothesis.settings` as `settings`.

    **Raises:** `PropertyFailure` (an `AssertionError`) naming the property, the form and
    the shrunk counterexample.
    """
    kern = S.resolve_kernel(kernel)
    props = _check_properties(properties, KERNEL_PROPERTIES)
    meths = _check_methods(methods)
    sets = make_settings(max_examples, deadline, settings)
    subject = f"kernel {kern.name!r}"
    if "features" in props:
        _features_property(kern, subject, sets)
    form_props = [p for p in props if p != "features"]
    if not form_props:
        return
    rule_objs = [_resolve_rule(r) for r in (RULES.values() if rules is None else rules)]
    for rule in rule_objs:
        with registered_rule(rule):
            flavor = S.Flavor.of_rule(rule, meths)
            _check_flavor(subject, flavor, (kern,), form_props, sets, None, _long_settings(sets))
    for osc in oscillators:
        flavor = S.Flavor.of_oscillator(osc, meths)
        _check_flavor(subject, flavor, (kern,), form_props, sets, None, _long_settings(sets))


def check_update_rule(
    rule: str | UpdateRule,
    *,
    kernels: Sequence[str | Kernel] | None = None,
    oracle: RuleOracle | None = None,
    properties: Iterable[str] | None = None,
    methods: Iterable[str] | None = None,
    max_examples: int = 4,
    deadline: float | None = None,
    settings: Any = None,
) -> None:
    """Check an update rule in every form it declares (`rule.methods`), over kernels.

    **Arguments:**

    - `rule`: a registered name or an `UpdateRule` object; an unregistered object is
      registered for the duration of the check.
    - `kernels`: the feature maps to draw inputs from (default: every registered one);
      the `oracle` property runs each kernel in turn, the others draw one per example.
    - `oracle`: for a rule the library has no float64 oracle for, an independent step
      `oracle(C, s, q, k, v, beta, gamma, eps) -> (out, C, s)` on float64 numpy arrays
      (`C: [d, n]`, `s, q, k, gamma: [n]`, `v, beta: [d]`); without it the rule's own
      `step` run in float64 is the reference of the other forms.
    - `properties`: a subset of `FORM_PROPERTIES` (default: all), in that order.
    - `methods`, `max_examples`, `deadline`, `settings`: as `check_kernel`.

    **Raises:** `PropertyFailure` (an `AssertionError`) naming the property, the form and
    the shrunk counterexample.
    """
    rule_obj = _resolve_rule(rule)
    props = _check_properties(properties, FORM_PROPERTIES)
    meths = _check_methods(methods)
    sets = make_settings(max_examples, deadline, settings)
    pool = tuple(S.resolve_kernel(k) for k in (sorted(KERNELS) if kernels is None else kernels))
    if not pool:
        raise ValueError("kernels must name at least one kernel")
    with registered_rule(rule_obj):
        flavor = S.Flavor.of_rule(rule_obj, meths)
        subject = f"update rule {rule_obj.name!r}"
        _check_flavor(subject, flavor, pool, props, sets, oracle, _long_settings(sets))


def check_arelit(
    oscillator: str = "paper",
    *,
    kernels: Sequence[str | Kernel] | None = None,
    properties: Iterable[str] | None = None,
    methods: Iterable[str] | None = None,
    max_examples: int = 4,
    deadline: float | None = None,
    settings: Any = None,
) -> None:
    """Check `relit_eqx.functional.arelit` with one oscillator family in every form, as
    `check_update_rule` does for a rule (the reference is the float64 AReLiT loop)."""
    if oscillator not in ("paper", "fourier"):
        raise ValueError(f"unknown oscillator {oscillator!r}; choose 'paper' or 'fourier'")
    props = _check_properties(properties, FORM_PROPERTIES)
    meths = _check_methods(methods)
    sets = make_settings(max_examples, deadline, settings)
    pool = tuple(S.resolve_kernel(k) for k in (sorted(KERNELS) if kernels is None else kernels))
    flavor = S.Flavor.of_oscillator(oscillator, meths)
    subject = f"arelit oscillator {oscillator!r}"
    _check_flavor(subject, flavor, pool, props, sets, None, _long_settings(sets))
