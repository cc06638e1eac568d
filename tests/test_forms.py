"""The registry-driven equivalence suite: the verification kit on the library itself.

Every registered kernel (`KERNELS`) × every update rule (`RULES`) × every form the rule
declares (`rule.methods`), plus AReLiT × {paper, fourier} × all three forms, through
`relit_eqx.testing` (`check_kernel`, `check_update_rule`, `check_arelit`): registering a
kernel or a rule puts it under every test here with no other edit, and users run the
same checks on their own. The reference is the independent float64 oracle
(`relit_eqx.testing.oracles`, plain numpy loops), itself cross-checked here by a second
evaluation order.
"""

from __future__ import annotations

import numpy as np
import oracles as O
import pytest
import strategies as S
from hypothesis import given, settings
from hypothesis import strategies as st

from relit_eqx.functional import arelit, relit
from relit_eqx.kernels import KERNELS
from relit_eqx.testing import check_arelit, check_kernel, check_update_rule


def examples(fraction: float) -> int:
    """A fraction of the profile's `max_examples` (12 by default, 300 thorough)."""
    return max(1, int(settings.default.max_examples * fraction))


def check_flavor(flavor: S.Flavor, prop: str, method: str, fraction: float) -> None:
    kw = dict(properties=[prop], methods=[method], max_examples=examples(fraction))
    if flavor.is_arelit:
        check_arelit(flavor.name, **kw)
    else:
        check_update_rule(flavor.name, **kw)


FM = S.FLAVOR_METHODS
FM_IDS = [S.fm_id(fm) for fm in FM]


# ------------------------------------------------------------------------------------
# The oracles and kernels themselves
# ------------------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    T=st.integers(1, 9),
    r=st.integers(1, 6),
    tick=st.one_of(st.integers(0, 20), st.integers(10**8, 10**8 + 20)),
)
def test_oracles_agree(seed, T, r, tick):
    """The oracles are cross-checked by a second evaluation order (float64, 1e-10):
    step loop == closed form for every rule (SPEC §1 parallel form, explicit decay
    products; delta: products of transition matrices `I - β k̂k̂ᵀ`) and for AReLiT
    (`ṽ = Σ f_i p_i`, `k̃ = Σ f_l κ_l`); the oscillator rows are periodic with period P
    (unreduced float64 formula at τ and τ + 3P) and the fourier rows satisfy
    `Σ_j f_i[j] f_l[j] = r·[i ≡ l mod r]`; the fourier step oracle satisfies the aliasing
    identity `C̃/r - C = Σ_{i≠l, r | i-l} p_i ⊗ κ_l`; the paper r=2 oracle equals its
    closed form `K_{il} = 2(-1)^{i-l}`."""
    rng = np.random.default_rng(seed)
    d, n = 2, 3
    q, k = np.abs(rng.normal(size=(T, n))), np.abs(rng.normal(size=(T, n)))
    v = rng.normal(size=(T, d))
    b, g = rng.uniform(0.01, 0.99, (T, d)), rng.uniform(0.01, 0.99, (T, n))
    res = rng.uniform(size=T) < 0.25
    C0, s0 = rng.normal(size=(d, n)), np.abs(rng.normal(size=n))
    for rule in O.RULE_ORACLES:
        a, c = (
            O.relit_step(q, k, v, b, g, res, C0, s0, rule=rule),
            O.relit_closed_form(q, k, v, b, g, res, C0, s0, rule=rule),
        )
        for x, y in zip(a, c, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-10, err_msg=rule)
    for osc in ("paper", "fourier"):
        P = O.osc_period(r, osc)
        for tau in range(2 * P):
            np.testing.assert_allclose(
                O.osc_features_raw(tau + 3 * P, r, osc), O.osc_features(tau, r, osc), atol=1e-12
            )
        V0, K0 = rng.normal(size=(r, d)), rng.normal(size=(r, n))
        a = O.arelit_step(q, k, v, b, g, res, V0, K0, s0, tick, r=r, oscillator=osc)
        c = O.arelit_closed_form(q, k, v, b, g, res, V0, K0, s0, tick, r=r, oscillator=osc)
        for x, y in zip(a[:4], c[:4], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-10, err_msg=osc)
        assert a[4] == c[4] == (tick + T if not res.any() else T - np.nonzero(res)[0][-1]) % P
    F = np.stack([O.osc_features(t, r, "fourier") for t in range(3 * r)])
    lag = np.subtract.outer(np.arange(3 * r), np.arange(3 * r))
    np.testing.assert_allclose(F @ F.T, r * (lag % r == 0), atol=1e-12)
    _, V, K, _, _ = O.arelit_step(q, k, v, b, g, res, r=r, oscillator="fourier")
    _, C, _ = O.relit_step(q, k, v, b, g, res)
    np.testing.assert_allclose(V.T @ K / r - C, O.aliased_sum(v, k, b, g, res, r)[0], atol=1e-12)
    out2 = O.arelit_step(q, k, v, b, g, res, r=2, oscillator="paper")[0]
    np.testing.assert_allclose(out2, O.paper_r2_closed_form(q, k, v, b, g, res), atol=1e-12)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_features(name):
    """Every kernel maps raw `x: [..., d]` (and `p: [..., eta]`) to finite, non-negative
    features of width `feature_dim(d, eta)`; the built-in maps equal their formulas
    (elu+1, relu, dpfp, p-major outer products), and `outer_factors` multiplies back to
    the features (the kit's `features` property)."""
    check_kernel(name, properties=["features"], max_examples=examples(0.5))


# ------------------------------------------------------------------------------------
# Forms against the oracle and each other
# ------------------------------------------------------------------------------------

KF = [(kern, f) for kern in sorted(KERNELS) for f in S.FLAVORS]


@pytest.mark.parametrize("kernel,flavor", KF, ids=[f"{k}-{f.id}" for k, f in KF])
def test_forms_match_oracle(kernel, flavor):
    """Every form equals the float64 step oracle (outputs and final state, within
    `1e-4·(|x| + magnitude)`) and the scan form, for every kernel: T ∈ {1, 5, 37} with
    chunks of 4 or 8 (the last one partial) and a second width bucket; gates exactly 0
    and 1, at 1e-6 and 1-1e-6; resets anywhere; random starting states (AReLiT counters
    up to 10^8 + k)."""
    rules = [] if flavor.is_arelit else [flavor.name]
    oscillators = [flavor.name] if flavor.is_arelit else []
    check_kernel(
        kernel,
        rules=rules,
        oscillators=oscillators,
        properties=["oracle"],
        max_examples=examples(0.25),
    )


NONE_FLAVORS = [f for f in S.FLAVORS if f.is_arelit or f.name == "gated"]


@pytest.mark.parametrize("flavor", NONE_FLAVORS, ids=[f.id for f in NONE_FLAVORS])
def test_state_none_is_zeros(flavor):
    """`state=None` means the zero state (tick 0): identical outputs and final state.
    Checked for `relit` (gated) and `arelit` (both families) with the scan form: the
    public functions build the zero state before choosing the rule's form."""
    rng = np.random.default_rng(0)
    T, d, n = 5, S.D, S.N
    q, k = np.abs(rng.normal(size=(2, T, n))).astype(np.float32)
    v = rng.normal(size=(T, d)).astype(np.float32)
    b = rng.uniform(size=(T, d)).astype(np.float32)
    g = rng.uniform(size=(T, n)).astype(np.float32)
    res = np.array([False, False, True, False, False])
    case = S.Case("relu", q, k, v, b, g, res, (), r=S.R_FORMS)
    if flavor.is_arelit:
        out0, st0 = arelit(q, k, v, b, g, res, None, r=S.R_FORMS, oscillator=flavor.name)
        zero = (
            np.zeros((S.R_FORMS, d), np.float32),
            np.zeros((S.R_FORMS, n), np.float32),
            np.zeros(n, np.float32),
            np.int32(0),
        )
    else:
        out0, st0 = relit(q, k, v, b, g, res, None, rule=flavor.name)
        zero = (np.zeros((d, n), np.float32), np.zeros(n, np.float32))
    out1, st1 = S.run(flavor, case.replace(state=zero), "scan", chunk_size=64)
    np.testing.assert_array_equal(np.asarray(out0), out1)
    for a, b_ in zip(st0, st1, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b_)


# ------------------------------------------------------------------------------------
# Carrying the state, resets, gradients, numerical safety: one kit property each
# ------------------------------------------------------------------------------------

#: property -> fraction of the profile's examples per (flavor, form)
PROPERTIES = {
    "split_and_carry": 1.0,
    "reset": 1.0,
    "nonfinite_before_reset": 0.5,
    "gradients": 1.0,
    "zero_inputs": 1.0,
    "long": 1.0,  # the kit runs a quarter of these: T = 300 is long
}
FMP = [(f, m, p) for f, m in FM for p in PROPERTIES]


@pytest.mark.parametrize("flavor,method,prop", FMP, ids=[f"{f.id}-{m}-{p}" for f, m, p in FMP])
def test_form_property(flavor, method, prop):
    """One property of the kit (`relit_eqx.testing.FORM_PROPERTIES`) for one flavor and
    form, kernels drawn from the registry: split-and-carry (the returned state, AReLiT's
    counter included, continues the sequence); reset equivalence (from the last reset
    on, bit for bit independent of the past, equal to a fresh run); a NaN or infinity
    before a reset changes nothing before it nor from the reset on; reverse mode equals
    scan's, is finite at gates exactly 0 and 1 and crosses no reset; all-zero inputs give
    exactly zero; 300 steps with stretches of extreme gates equal the oracle."""
    check_flavor(flavor, prop, method, PROPERTIES[prop])
