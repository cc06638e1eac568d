"""The registry-driven equivalence suite (issue 3 item 6, issue 4 item 3).

Walks every registered kernel (`KERNELS`) × every update rule (`RULES`) × every form
the rule declares (`rule.methods`), plus AReLiT × {paper, fourier} × all three forms:
registering a kernel or a rule puts it under every test here with no other edit. The
reference is the independent numpy oracle of `tests/oracles.py` (float64 loops); the
forms are also compared with each other (scan is the library's own reference).

Shapes come from the buckets of `tests/strategies.py` so compiled programs are shared;
hypothesis varies values, gates (including whole stretches at 1e-6 and 1-1e-6),
resets and starting states. Float32 tolerances are `rtol·(|expected| + scale)`, where
`scale` is the magnitude of the summed terms (the oracles' magnitude runs).
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

RTOL = 1e-4  # float32 forms against the float64 oracle and against each other
GRAD_RTOL = 1e-4  # float32 reverse mode of two evaluation orders (see _assert_grads_close)
GRAD_GLOBAL = 1e-5  # ... and relative to the largest gradient entry of all inputs
T_GRAD = 13  # gradient bucket: two chunks of 8 (the second partial)
CHUNK_GRAD = 8


def fewer(fraction: float):
    """A fraction of the profile's `max_examples`, for tests multiplied by the kernel axis
    or whose every example is long (e.g. 0.25: 3 of 12 by default, 75 of 300 thorough)."""
    return settings(max_examples=max(2, int(settings.default.max_examples * fraction)))


def has_oracle(flavor: S.Flavor) -> bool:
    return flavor.is_arelit or flavor.name in O.RULE_ORACLES


def oracle(flavor: S.Flavor, case: S.Case, *, eps=1e-6, magnitude=False, inputs=None, state=None):
    """float64 `(out, state tuple)` from the step oracle; with `magnitude`, the scales."""
    q, k, v, b, g, res = case.inputs if inputs is None else inputs
    st_ = case.state if state is None else state
    if flavor.is_arelit:
        V0, K0, s0, tick0 = st_
        kw = dict(r=case.r, oscillator=flavor.name, eps=eps, magnitude=magnitude)
        out, V, K, s, tick = O.arelit_step(q, k, v, b, g, res, V0, K0, s0, int(tick0), **kw)
        return out, (V, K, s, tick)
    fn = O.relit_magnitude if magnitude else O.relit_step
    out, C, s = fn(q, k, v, b, g, res, st_[0], st_[1], rule=flavor.name, eps=eps)
    return out, (C, s)


def scales(flavor, case, expected_out, expected_state, **kw):
    """Round-off scales: the oracle's magnitude run, or (for a rule without an oracle)
    the largest entry of each expected array."""
    if has_oracle(flavor):
        return oracle(flavor, case, magnitude=True, **kw)
    return (
        np.max(np.abs(expected_out)),
        tuple(np.max(np.abs(np.asarray(x, dtype=np.float64))) for x in expected_state),
    )


def assert_states_close(flavor, actual, expected, scale, *, rtol=RTOL, what="state"):
    names = ("v_tilde", "k_tilde", "s", "tick") if flavor.is_arelit else ("C", "s")
    assert len(actual) == len(names)
    for name, a, e, sc in zip(names, actual, expected, scale, strict=True):
        if name == "tick":
            assert int(a) == int(e), f"{what}.tick: {int(a)} != {int(e)}"
        else:
            S.assert_close(a, e, sc, rtol=rtol, what=f"{what}.{name}")


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
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.1, 1.0, 5.0]))
@fewer(0.5)
def test_kernel_features(name, seed, scale):
    """Every kernel maps raw `x: [..., d]` (and `p: [..., eta]`) to finite, non-negative
    features of width `feature_dim(d, eta)` (non-negative so `s·q ≥ 0` in the readout);
    kernels with a written-down definition (elu+1, relu, dpfp = `r_i r_{i+j}` of
    `r = [relu(x), relu(-x)]`, p-major `vec(p ⊗ x)` outer products) match it; and
    `outer_factors` (AReLiT's training loop takes features as a pair) multiplies back to
    the features: `vec(left ⊗ right)`, formed here with `np.einsum`."""
    kern = KERNELS[name]
    rng = np.random.default_rng(seed)
    for d, eta in ((3, 2), (4, 3), (1, 1)):
        x = (rng.normal(size=(2, 5, d)) * scale).astype(np.float32)
        p = (rng.normal(size=(2, 5, eta)) * scale).astype(np.float32) if kern.uses_p else None
        n = kern.feature_dim(d, eta if kern.uses_p else 1)
        out = S.features(name, x, p)
        assert out.shape == (2, 5, n)
        assert np.all(np.isfinite(out)) and np.all(out >= 0)
        if name in O.KERNEL_ORACLES:
            want = O.KERNEL_ORACLES[name](O.f64(x), None if p is None else O.f64(p), n)
            np.testing.assert_allclose(out, want, rtol=2e-6, atol=1e-6, err_msg=name)
        left, right = (np.asarray(z) for z in kern.outer_factors(x, p))
        assert left.shape[:-1] == right.shape[:-1] == (2, 5)
        assert left.shape[-1] * right.shape[-1] == n
        if kern.factors is not None:
            assert left.shape[-1] == eta
        prod = np.einsum("...i,...j->...ij", left, right).reshape(2, 5, n)
        np.testing.assert_allclose(prod, out, rtol=2e-6, atol=1e-6, err_msg=f"{name} factors")


# ------------------------------------------------------------------------------------
# Forms against the oracle and each other
# ------------------------------------------------------------------------------------


def check_all_forms(flavor: S.Flavor, case: S.Case, what: str) -> None:
    """Every form of `flavor` on `case` equals the float64 oracle (outputs and final
    state) and the scan form; the oracle is computed once for all forms."""
    s_out, s_state = S.run(flavor, case, "scan")
    e_out, e_state = oracle(flavor, case) if has_oracle(flavor) else (s_out, s_state)
    m_out, m_state = scales(flavor, case, e_out, e_state)
    for method in flavor.methods:
        out, state = (s_out, s_state) if method == "scan" else S.run(flavor, case, method)
        assert np.all(np.isfinite(out)) and all(np.all(np.isfinite(x)) for x in state)
        S.assert_close(out, e_out, m_out, rtol=RTOL, what=f"{what} {method} out vs oracle")
        assert_states_close(flavor, state, e_state, m_state, what=f"{what} {method} state")
        S.assert_close(out, s_out, m_out, rtol=RTOL, what=f"{what} {method} out vs scan")
        assert_states_close(flavor, state, s_state, m_state, what=f"{what} {method} vs scan")


KF = [(kern, f) for kern in sorted(KERNELS) for f in S.FLAVORS]


@pytest.mark.parametrize("kernel,flavor", KF, ids=[f"{k}-{f.id}" for k, f in KF])
@given(data=st.data())
@fewer(0.25)
def test_forms_match_oracle(kernel, flavor, data):
    """Every form equals the float64 step oracle (out_t and the final state, within
    `1e-4·(|x| + magnitude)`) and the scan form, for every kernel: SPEC §1 `C_t`, `s_t`,
    `out_t` per rule; SPEC §2 `ṽ`, `k̃`, `s`, `τ mod P` for AReLiT; resets zero the state
    before step t (SPEC §4); random starting states (AReLiT counters up to 10^8 + k);
    T ∈ {1, 5, 37} with chunks of 4 or 8 (several chunks, the last one partial)."""
    check_all_forms(flavor, data.draw(S.cases(flavor, kernel)), kernel)


@pytest.mark.parametrize("flavor", S.FLAVORS, ids=[f.id for f in S.FLAVORS])
@given(data=st.data())
@fewer(0.5)
def test_wide_bucket(flavor, data):
    """As `test_forms_match_oracle` in the second width bucket (d = 2, n = 8, T = 5),
    kernel drawn from the registry."""
    check_all_forms(flavor, data.draw(S.cases(flavor, widths=(S.WIDE,), t_buckets=(5,))), "wide")


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
# Carrying the state; resets
# ------------------------------------------------------------------------------------


@st.composite
def split_plan(draw, T: int) -> list[int]:
    """Piece lengths from the smaller buckets, summing to T (no new shapes)."""
    parts, left = [], T
    while left > 0:
        parts.append(draw(st.sampled_from([b for b in S.T_BUCKETS if b <= left and b < max(T, 2)])))
        left -= parts[-1]
    return parts


@pytest.mark.parametrize("flavor,method", FM, ids=FM_IDS)
@given(data=st.data())
def test_split_and_carry(flavor, method, data):
    """Splitting a sequence anywhere and carrying the returned state gives the outputs
    and final state of one call: `f(x_{1..T}, S_0) = f(x_{a+1..T}, f(x_{1..a}, S_0).state)`
    (the state, including AReLiT's counter, continues the sequence)."""
    case = data.draw(S.cases(flavor, t_buckets=(5, 37)))
    parts = data.draw(split_plan(case.T))
    out, state = S.run(flavor, case, method)
    pieces, carried, a = [], case.state, 0
    for ln in parts:
        inputs = tuple(x[a : a + ln] for x in case.inputs)
        o, carried = S.run(flavor, case, method, inputs=inputs, state=carried)
        pieces.append(o)
        a += ln
    ref_out, ref_state = oracle(flavor, case) if has_oracle(flavor) else (out, state)
    m_out, m_state = scales(flavor, case, ref_out, ref_state)
    S.assert_close(np.concatenate(pieces), out, m_out, rtol=RTOL, what=f"pieces {parts}")
    assert_states_close(flavor, carried, state, m_state, what=f"carried state {parts}")


@pytest.mark.parametrize("flavor,method", FM, ids=FM_IDS)
@given(data=st.data())
def test_reset_equivalence(flavor, method, data):
    """SPEC §4: with the last reset at step j, outputs from j on (and the final state)
    are exactly those of a fresh model started at j: (a) bit-for-bit unchanged when
    everything before j (inputs, earlier resets, starting state) is replaced by other
    values; (b) equal (rtol) to a fresh run (zero state) on the suffix alone."""
    case = data.draw(S.cases(flavor, t_buckets=(5, 37)))
    T = case.T
    L = data.draw(st.sampled_from([b for b in S.T_BUCKETS if b < T]))
    j = T - L
    res = case.resets.copy()
    res[j] = True
    case = case.replace(resets=res)
    out, state = S.run(flavor, case, method)
    other = data.draw(S.cases(flavor, kernel=case.kernel, t_buckets=(T,), r_choices=(case.r,)))
    mixed = tuple(
        np.concatenate([o[:j], x[j:]]) for o, x in zip(other.inputs, case.inputs, strict=True)
    )
    out2, state2 = S.run(flavor, case, method, inputs=mixed, state=other.state)
    np.testing.assert_array_equal(
        out2[j:], out[j:], err_msg="outputs after the reset depend on the past"
    )
    for a, b in zip(state2, state, strict=True):
        np.testing.assert_array_equal(a, b, err_msg="final state depends on the past")
    zero = tuple(np.zeros_like(x) for x in case.state)
    suffix = tuple(x[j:] for x in case.inputs)
    fresh, fresh_state = S.run(flavor, case, method, inputs=suffix, state=zero)
    ref = case.replace(
        q=suffix[0],
        k=suffix[1],
        v=suffix[2],
        beta=suffix[3],
        gamma=suffix[4],
        resets=suffix[5],
        state=zero,
    )
    e_out, e_state = oracle(flavor, ref) if has_oracle(flavor) else (fresh, fresh_state)
    m_out, m_state = scales(flavor, ref, e_out, e_state)
    S.assert_close(out[j:], fresh, m_out, rtol=RTOL, what="suffix vs fresh run")
    S.assert_close(out[j:], e_out, m_out, rtol=RTOL, what="suffix vs fresh oracle")
    assert_states_close(flavor, state, fresh_state, m_state, what="final state vs fresh run")


# ------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------


def _cotangents(rng, case, out_shape_state):
    cot_out = rng.normal(size=case.v.shape).astype(np.float32)
    cot_state = tuple(rng.normal(size=np.shape(x)).astype(np.float32) for x in out_shape_state)
    return cot_out, cot_state


def _assert_grads_close(flavor, case, method, cot_out, cot_state, what):
    """Reverse mode of `method` vs reverse mode of scan, entry by entry, in the units
    training uses: gate gradients times `γ(1-γ)` (the gradient w.r.t. the gate's logit),
    the others as they are. Tolerance per entry:
    `GRAD_RTOL·(|ref| + max over the array |ref|) + GRAD_GLOBAL·max over all arrays |ref|`.
    The global term is the round-off of a gradient that is a cancelling difference (e.g.
    `d out/d q = (C - out sᵀ)/(s·q + eps)` is ~0 when `C ≈ out sᵀ`, with any float32
    evaluation order leaving ~eps32 of the terms); a wrong gradient of any visible size
    fails. (Elementwise, the chunked form's `d/dγ` carries an extra relative error of
    ~eps32/(1-γ) from its log-space decays; in logit units that is round-off.)"""
    g = S.vjp(flavor, case, method, cot_out, cot_state, chunk_size=CHUNK_GRAD)
    ref = S.vjp(flavor, case, "scan", cot_out, cot_state, chunk_size=CHUNK_GRAD)
    unit = {"beta": case.beta * (1.0 - case.beta), "gamma": case.gamma * (1.0 - case.gamma)}
    scaled = {name: np.asarray(x, np.float64) * unit.get(name, 1.0) for name, x in ref.items()}
    top = max(np.max(np.abs(x)) for x in scaled.values())
    for name, r_ in scaled.items():
        act = np.asarray(g[name], np.float64) * unit.get(name, 1.0)
        scale = np.max(np.abs(r_)) + top * GRAD_GLOBAL / GRAD_RTOL
        S.assert_close(act, r_, scale, rtol=GRAD_RTOL, what=f"{what} d/d{name}")


@pytest.mark.parametrize("flavor,method", FM, ids=FM_IDS)
@given(data=st.data())
def test_gradients(flavor, method, data):
    """Reverse mode through every form equals reverse mode through scan, w.r.t. q, k, v,
    beta, gamma and the starting state (random cotangents on out and the final state),
    to float32 round-off (see `_assert_grads_close`); and no gradient crosses a reset:
    with cotangents only on outputs from the last reset j on (and on the final state),
    the gradient w.r.t. every input before j and w.r.t. the starting state is exactly
    zero (SPEC §4). Gates include the extremes 1e-6 and 1-1e-6, so this also checks that
    gradients are finite there."""
    nf = 3 if flavor.is_arelit else 2
    case = data.draw(S.cases(flavor, t_buckets=(T_GRAD,)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    cot_out, cot_state = _cotangents(rng, case, case.state[:nf])
    if method != "scan":
        _assert_grads_close(flavor, case, method, cot_out, cot_state, f"{method} vs scan")
    # a reset at j > 0, cotangents only from j on
    j = data.draw(st.integers(1, case.T - 1))
    res = case.resets.copy()
    res[j] = True
    case = case.replace(resets=res)
    cot_out = cot_out.copy()
    cot_out[:j] = 0.0
    g = S.vjp(flavor, case, method, cot_out, cot_state, chunk_size=CHUNK_GRAD)
    for name, x in g.items():
        assert np.all(np.isfinite(x)), f"non-finite gradient d/d{name}"
    for name in ("q", "k", "v", "beta", "gamma"):
        np.testing.assert_array_equal(
            g[name][:j], 0.0, err_msg=f"gradient crosses the reset at {j}: d/d{name}"
        )
    for i in range(nf):
        np.testing.assert_array_equal(
            g[f"state[{i}]"], 0.0, err_msg=f"gradient crosses the reset at {j} to the state"
        )


# ------------------------------------------------------------------------------------
# Numerical safety
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", S.FLAVORS, ids=[f.id for f in S.FLAVORS])
@given(data=st.data())
@fewer(0.25)
def test_long_extreme_sequences(flavor, data):
    """T = 300 (chunk 64: four full chunks and a partial one) with stretches of gates at
    1e-6 and 1-1e-6 (a chunk whose decays are all 1e-6, or all ≈1), zero features and
    values: every form is finite and still equals the oracle and scan."""
    gates = ("lo", "hi", "mixed", "uniform")
    check_all_forms(
        flavor, data.draw(S.cases(flavor, t_buckets=(S.LONG_T,), gate_kinds=gates)), "long"
    )


@pytest.mark.parametrize("flavor,method", FM, ids=FM_IDS)
def test_zero_inputs(flavor, method):
    """All-zero features and values from a zero state: `out = 0 / (0 + eps) = 0` exactly,
    the state stays zero, nothing is NaN (the eps keeps the readout finite)."""
    T = 5
    z = S.Case(
        "relu",
        *(np.zeros((T, w), np.float32) for w in (S.N, S.N, S.D)),
        np.full((T, S.D), 0.5, np.float32),
        np.full((T, S.N), 0.5, np.float32),
        np.zeros(T, bool),
        (),
        r=S.R_FORMS if flavor.is_arelit else None,
    )
    state = (
        (
            np.zeros((S.R_FORMS, S.D), np.float32),
            np.zeros((S.R_FORMS, S.N), np.float32),
            np.zeros(S.N, np.float32),
            np.int32(0),
        )
        if flavor.is_arelit
        else (np.zeros((S.D, S.N), np.float32), np.zeros(S.N, np.float32))
    )
    out, st_ = S.run(flavor, z.replace(state=state), method)
    np.testing.assert_array_equal(out, 0.0)
    for x in st_[: 3 if flavor.is_arelit else 2]:
        np.testing.assert_array_equal(x, 0.0)
