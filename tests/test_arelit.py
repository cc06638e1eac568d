"""AReLiT: what the two oscillator families compute (issue 4 items 2 and 3, SPEC §2).

The form-equivalence properties (every form equals the oracle and scan, gradients,
resets, carrying the state) are in the shared suite `tests/test_forms.py`, which runs
both families in all three forms. Here: the oscillator helpers against the formulas;
fourier is exact while fewer than r steps have passed; the aliasing identity
`C̃/r − C = Σ_{i≠l, r | i−l} p_i ⊗ κ_l` and its Frobenius bound; convergence in r;
the paper family at r = 2 (`K_{il} = 2(−1)^{i−l}`); the modular counter.

Notation: `p_i = e^{B_t−B_i} ⊙ β_i ⊙ v_i` and `κ_l = e^{G_t−G_l} ⊙ γ_l ⊙ k_l` are the
decayed value and key terms of SPEC §1's closed form, so `C_t = Σ_i p_i ⊗ κ_i`.
"""

from __future__ import annotations

import numpy as np
import oracles as O
import pytest
import strategies as S
from hypothesis import given
from hypothesis import strategies as st

from relit_eqx.functional import oscillators

FOURIER = S.Flavor("arelit", "fourier", S.METHODS)
PAPER = S.Flavor("arelit", "paper", S.METHODS)
GATED = S.Flavor("relit", "gated", S.METHODS)


def relit_of(case: S.Case) -> S.Case:
    """The same inputs with a zero ReLiT state."""
    d, n = case.v.shape[1], case.q.shape[1]
    return case.replace(state=(np.zeros((d, n), np.float32), np.zeros(n, np.float32)), r=None)


def zero_start(case: S.Case) -> S.Case:
    r, d, n = case.r, case.v.shape[1], case.q.shape[1]
    z = (
        np.zeros((r, d), np.float32),
        np.zeros((r, n), np.float32),
        np.zeros(n, np.float32),
        np.int32(0),
    )
    return case.replace(state=z)


def taus_since_reset(resets) -> np.ndarray:
    """`τ_t` from a zero start: steps since the start or the last reset, 1-based."""
    return np.asarray(O.arelit_ticks(resets, 0, len(resets), 10**9))


# ------------------------------------------------------------------------------------
# The oscillator helpers
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("oscillator", ["paper", "fourier"])
@pytest.mark.parametrize("r", range(1, 9))
def test_oscillator_helpers(oscillator, r):
    """`period`, `normaliser` and `features(τ)` equal SPEC §2's formulas (written again
    in the oracle): paper `cos(ω_j τ)`, `ω = linspace(−π, π, r)`, `c = 2r`,
    `P = 2(r−1)` (2 for r=1); fourier `[1, √2cos, √2sin (j = 1..⌊(r−1)/2⌋), cos(πτ)]`,
    `c = r`, `P = r`; for τ over three periods and for τ = 10^8 + k (no precision loss)."""
    P = O.osc_period(r, oscillator)
    assert oscillators.period(r, oscillator) == P
    assert oscillators.normaliser(r, oscillator) == O.osc_normaliser(r, oscillator)
    taus = [*range(3 * P), *(10**8 + k for k in range(2 * P)), 2**31 - 1]
    got = np.asarray(oscillators.features(np.asarray(taus, np.int32), r, oscillator))
    want = np.stack([O.osc_features(t, r, oscillator) for t in taus])
    assert got.shape == (len(taus), r)
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)


# ------------------------------------------------------------------------------------
# fourier: exact for fewer than r steps; the aliasing identity
# ------------------------------------------------------------------------------------

R_ANY = (1, 2, 3, 5, 8)


@given(data=st.data())
def test_fourier_exact_before_r_steps(data):
    """fourier equals ReLiT (gated rule, same inputs, zero start) at every step t with
    `τ_t ≤ r` (fewer than r steps since the start or the last reset, so no two steps
    alias), for any r ≥ 1. The AReLiT readout divides by `r·s·q + eps`, i.e.
    `(C̃/r) q / (s·q + eps/r)`, so ReLiT runs with `eps/r`. When `τ_T ≤ r` the final
    states also agree: `Σ_j ṽ^j ⊗ k̃^j / r = C` and the `s` are equal."""
    case = zero_start(data.draw(S.cases(FOURIER, t_buckets=(5, 37), r_choices=R_ANY)))
    r = case.r
    out_a, (V, K, s_a, _) = S.run(FOURIER, case, "scan")
    rel = relit_of(case)
    out_r, (C, s_r) = S.run(GATED, rel, "scan", eps=1e-6 / r)
    # round-off scales: the terms of both computations (AReLiT's include every pair)
    m_out, m_C, m_s = O.relit_magnitude(*rel.inputs, eps=1e-6 / r)
    a_out, a_V, a_K, _, _ = O.arelit_step(*case.inputs, r=r, oscillator="fourier", magnitude=True)
    early = taus_since_reset(case.resets) <= r
    assert early.any()
    S.assert_close(
        out_a[early], out_r[early], (m_out + a_out)[early], rtol=1e-4, what=f"r={r} early steps"
    )
    if early[-1]:
        S.assert_close(
            V.astype(np.float64).T @ K / r, C, m_C + a_V.T @ a_K / r, rtol=1e-4, what="C̃/r vs C"
        )
        S.assert_close(s_a, s_r, m_s, rtol=1e-4, what="s")


@given(data=st.data())
def test_fourier_aliasing_identity(data):
    """`C̃_T/r − C_T = Σ_{i≠l, i≡l (mod r)} p_i ⊗ κ_l` (SPEC §2: fourier has
    `K_{il} = r·[i ≡ l mod r]`), with `C̃ = Σ_j ṽ^j ⊗ k̃^j` from `arelit` and `C` from
    `relit` (both library scan form, float32, zero start, resets anywhere; the other forms
    equal scan by `test_forms.py`) and the sum from the independent oracle; and the
    Frobenius bound
    `‖C̃_T/r − C_T‖_F ≤ Σ_{i≠l, r | i−l} ‖p_i‖‖κ_l‖` holds."""
    case = zero_start(data.draw(S.cases(FOURIER, t_buckets=(5, 37), r_choices=(1, 2, 3, 5))))
    r = case.r
    _, (V, K, _, _) = S.run(FOURIER, case, "scan")
    _, (C, _) = S.run(GATED, relit_of(case), "scan")
    want, bound, mag = O.aliased_sum(case.v, case.k, case.beta, case.gamma, case.resets, r)
    diff = V.astype(np.float64).T @ K / r - C
    # round-off: every entry of C̃ and C sums terms bounded by 2·mag (|f_i[j] f_l[j]| ≤ 2)
    S.assert_close(diff, want, 2 * r * mag, rtol=1e-5, what=f"aliasing identity r={r}")
    assert np.linalg.norm(diff) <= bound + 1e-5 * 2 * r * np.linalg.norm(mag)


@given(data=st.data())
def test_fourier_converges_in_r(data):
    """With gates bounded away from 0 and 1 and zero start, the output error of fourier
    against ReLiT (float64 oracle, eps/r) is exactly the aliased sum
    `Σ_{aliased i≠l} p_i (κ_l·q_t) / (s_t·q_t + eps/r)` (oracle) and obeys its termwise
    bound; the bound never grows from r to 2r (the aliased pairs for 2r are a subset).
    With non-negative values every aliased term is ≥ 0, so the error itself falls:
    `err(2k) ≤ err(k)` elementwise up to round-off; and once r ≥ T it is below 1e-5
    relative. r ∈ {1, 2, 4, 8, 16}, T ∈ {5, 16}."""
    sign = data.draw(st.sampled_from(["positive", "signed"]))
    base = data.draw(
        S.cases(
            FOURIER,
            t_buckets=(5, 16),
            r_choices=(1,),
            gate_kinds=("moderate",),
            reset_kinds=("none", "single"),
            value_sign=sign,
            zero_inputs=False,
        )
    )
    T = base.T
    errs, bounds, mags = {}, {}, {}
    for r in (1, 2, 4, 8, 16):
        case = zero_start(base.replace(r=r))
        out_a, _ = S.run(FOURIER, case, "scan")
        ref, _, _ = O.relit_step(*case.inputs, eps=1e-6 / r)
        # round-off scale: every term of the AReLiT readout, all pairs (i, l) included
        mag = O.arelit_step(*case.inputs, r=r, oscillator="fourier", magnitude=True)[0]
        pred, bound = O.aliased_output_error(*case.inputs, r=r)
        err = out_a - ref
        S.assert_close(err, pred, mag, rtol=1e-5, what=f"error vs aliased sum, r={r}")
        assert np.all(np.abs(pred) <= bound * (1 + 1e-12) + 1e-300)
        errs[r], bounds[r], mags[r] = np.abs(err), bound, mag
        if r >= T:
            rel = np.linalg.norm(err) / max(np.linalg.norm(ref), 1e-30)
            assert rel < 1e-5, f"r={r} >= T={T}: relative error {rel:.3g}"
    for k in (1, 2, 4, 8):
        assert np.all(bounds[2 * k] <= bounds[k] * (1 + 1e-12) + 1e-300)
        if sign == "positive":
            slack = 1e-5 * (mags[k] + mags[2 * k])
            assert np.all(errs[2 * k] <= errs[k] + slack), f"error grew from r={k} to r={2 * k}"


# ------------------------------------------------------------------------------------
# paper, r = 2
# ------------------------------------------------------------------------------------


@given(data=st.data())
def test_paper_r2_closed_form(data):
    """The paper family at r = 2: `ω = (−π, π)`, so both rows are `cos(±πτ) = (−1)^τ`
    and `K_{il} = Σ_j f_i[j] f_l[j] = 2(−1)^{i−l}` (the counter offset cancels). Every
    form computes `out_t = Σ_{i,l≤t} 2(−1)^{i−l} p_i (κ_l·q_t) / (2r s_t·q_t + eps)`
    (oracle written from this closed form, not from the recurrence; sums start at the
    last reset). It is a model in its own right, not an approximation of ReLiT: pairs at
    odd lag enter with weight −2, even lags (the diagonal included) with +2, against
    ReLiT's `K = 2r·I / 2r`."""
    case = zero_start(data.draw(S.cases(PAPER, t_buckets=(37,), r_choices=(2,))))
    method = data.draw(st.sampled_from(S.METHODS))
    out, _ = S.run(PAPER, case, method)
    want = O.paper_r2_closed_form(*case.inputs)
    mag = O.arelit_step(*case.inputs, r=2, oscillator="paper", magnitude=True)[0]
    S.assert_close(out, want, mag, rtol=1e-4, what=f"paper r=2 {method}")


# ------------------------------------------------------------------------------------
# The counter
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", [PAPER, FOURIER], ids=["paper", "fourier"])
@pytest.mark.parametrize("method", S.METHODS)
@given(data=st.data())
def test_counter_modular(flavor, method, data):
    """A starting state whose counter is `10^8 + k` gives exactly (bit for bit) the
    outputs and final state of the same state with counter `(10^8 + k) mod P`, and the
    returned counter is `τ_T mod P` (issue 4 item 2); every form, both families."""
    case = data.draw(S.cases(flavor, t_buckets=(37,), state_kinds=("random",)))
    P = S.osc_period(case.r, flavor.name)
    big = 10**8 + data.draw(st.integers(0, 3 * P))
    V, K, s, _ = case.state
    out_big, st_big = S.run(flavor, case, method, state=(V, K, s, np.int32(big)))
    out_red, st_red = S.run(flavor, case, method, state=(V, K, s, np.int32(big % P)))
    np.testing.assert_array_equal(out_big, out_red)
    for a, b in zip(st_big, st_red, strict=True):
        np.testing.assert_array_equal(a, b)
    taus = O.arelit_ticks(case.resets, big, case.T, P)
    assert int(st_big[3]) == taus[-1] % P


@pytest.mark.slow
@pytest.mark.parametrize("flavor,r", [(PAPER, 5), (FOURIER, 7)], ids=["paper-r5", "fourier-r7"])
def test_counter_long_scan(flavor, r):
    """10^7 steps of the scan form (in 10 calls of 10^6, carrying the state) stay exact:
    the final counter is `10^7 mod P`, and with gates in [0.3, 0.7] (history older than
    200 steps contributes < 0.7^200) the last outputs and the final state equal the
    float64 oracle run on the last 400 steps from a zero state whose counter is
    `(10^7 − 400) mod P`. paper r=5 is not shift-invariant in τ (`cos(π/2·τ)` rows), so a
    counter that drifted would change the outputs."""
    d, n, steps, chunks = 2, 2, 10**6, 10
    P = S.osc_period(r, flavor.name)
    state = (
        np.zeros((r, d), np.float32),
        np.zeros((r, n), np.float32),
        np.zeros(n, np.float32),
        np.int32(0),
    )
    rng = np.random.default_rng(1)
    for _ in range(chunks):
        case = S.Case(
            "relu",
            rng.uniform(0, 1, (steps, n)).astype(np.float32),
            rng.uniform(0, 1, (steps, n)).astype(np.float32),
            rng.normal(size=(steps, d)).astype(np.float32),
            rng.uniform(0.3, 0.7, (steps, d)).astype(np.float32),
            rng.uniform(0.3, 0.7, (steps, n)).astype(np.float32),
            np.zeros(steps, bool),
            state,
            r=r,
        )
        out, state = S.run(flavor, case, "scan", chunk_size=64)
    assert int(state[3]) == (steps * chunks) % P
    w = 400
    tail = tuple(x[-w:] for x in case.inputs)
    e_out, V, K, s, tick = O.arelit_step(
        *tail, tick0=(steps * chunks - w) % P, r=r, oscillator=flavor.name
    )
    np.testing.assert_allclose(out[-200:], e_out[-200:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state[0], V, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state[1], K, rtol=1e-4, atol=1e-5)
    assert int(state[3]) == tick
