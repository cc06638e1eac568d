"""Independent float64 oracles: plain numpy step loops and closed forms.

Nothing here imports the rest of the library: every equation is written again from the
Mathematics page (gated, linear, projected-sigmoid and delta rules; AReLiT's oscillators),
so comparing the library's output with these functions compares two independently
written computations. Each recurrence also has a second evaluation order (a closed form,
or a product of transition matrices) that the project's suite checks against the loop,
so the oracles are themselves cross-checked.

Conventions: one head; `q, k: [T, n]` already feature-mapped, `v, beta: [T, d]`,
`gamma: [T, n]`, `resets: bool [T]`. A reset at step `t` zeroes the whole state (for
AReLiT the counter too) *before* step `t` is absorbed (the Concepts page).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Array = np.ndarray


def f64(x) -> Array:
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------------------
# Kernels (feature maps)
# --------------------------------------------------------------------------------------


def _elu1(x: Array) -> Array:
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def _outer_p_major(p: Array, x: Array) -> Array:
    out = p[..., :, None] * x[..., None, :]
    return out.reshape(*out.shape[:-2], -1)


def dpfp(x: Array, nu: int = 1) -> Array:
    """DPFP (Schlag et al. 2021, eq. 25): `r = [relu(x), relu(-x)]`,
    `φ_{i,j}(x) = r_i · r_{i+j}` (indices cyclic), `j = 1..nu`, j-major."""
    r = np.concatenate([np.maximum(x, 0.0), np.maximum(-x, 0.0)], axis=-1)
    return np.concatenate([r * np.roll(r, -j, axis=-1) for j in range(1, nu + 1)], axis=-1)


#: name -> f(x, p, n) with n the feature width (dpfp reads its `nu` from it).
KERNEL_ORACLES: dict[str, Callable[..., Array]] = {
    "elu+1": lambda x, p, n: _elu1(x),
    "relu": lambda x, p, n: np.maximum(x, 0.0),
    "dpfp": lambda x, p, n: dpfp(x, nu=n // (2 * x.shape[-1])),
    "pp_relu": lambda x, p, n: _outer_p_major(np.maximum(p, 0.0), np.maximum(x, 0.0)),
    "pp_elu+1": lambda x, p, n: _outer_p_major(_elu1(p), _elu1(x)),
}


# --------------------------------------------------------------------------------------
# ReLiT update rules: step loops
# --------------------------------------------------------------------------------------

RULE_ORACLES = ("gated", "linear", "projected_sigmoid", "delta")


def _l1_normalise(x: Array, eps: float) -> Array:
    return x / (np.sum(np.abs(x)) + eps)


def relit_step(q, k, v, beta, gamma, resets, C0=None, s0=None, *, rule="gated", eps=1e-6):
    """The step recurrence of one update rule, one step at a time (the Mathematics and Concepts pages).

    - gated: `C_t = ((1-β)⊗(1-γ))⊙C + (β⊙v)⊗(γ⊙k)`, `s_t = (1-γ)⊙s + γ⊙k`,
      `out = C q / (s·q + eps)`;
    - linear: `C_t = C + v⊗k`, `s_t = s + k`, same readout;
    - projected_sigmoid: `C_t = (1 - β⊗γ)⊙C + (β⊗γ)⊙(v⊗k)`, `s` as gated, same readout;
    - delta: `k̂ = k/(Σ|k| + eps)`, `C_t = C + (β⊙(v - C k̂))⊗k̂`, `s` unchanged,
      `out = C q̂`.

    **Returns:** `(out [T, d], C [d, n], s [n])` in float64.
    """
    q, k, v, beta, gamma = (f64(x) for x in (q, k, v, beta, gamma))
    T, n = q.shape
    d = v.shape[1]
    C = np.zeros((d, n)) if C0 is None else f64(C0).copy()
    s = np.zeros(n) if s0 is None else f64(s0).copy()
    out = np.zeros((T, d))
    for t in range(T):
        if resets[t]:
            C = np.zeros((d, n))
            s = np.zeros(n)
        qt, kt, vt, bt, gt = q[t], k[t], v[t], beta[t], gamma[t]
        if rule == "gated":
            C = np.outer(1 - bt, 1 - gt) * C + np.outer(bt * vt, gt * kt)
            s = (1 - gt) * s + gt * kt
            out[t] = C @ qt / (s @ qt + eps)
        elif rule == "linear":
            C = C + np.outer(vt, kt)
            s = s + kt
            out[t] = C @ qt / (s @ qt + eps)
        elif rule == "projected_sigmoid":
            bg = np.outer(bt, gt)
            C = (1 - bg) * C + bg * np.outer(vt, kt)
            s = (1 - gt) * s + gt * kt
            out[t] = C @ qt / (s @ qt + eps)
        elif rule == "delta":
            kh = _l1_normalise(kt, eps)
            C = C + np.outer(bt * (vt - C @ kh), kh)
            out[t] = C @ _l1_normalise(qt, eps)
        else:
            raise KeyError(f"no oracle for rule {rule!r}")
    return out, C, s


def relit_magnitude(q, k, v, beta, gamma, resets, C0=None, s0=None, *, rule="gated", eps=1e-6):
    """Scales for round-off tolerances: `(out_scale [T, d], C_scale [d, n], s_scale [n])`.

    For the rules linear in `(v, C0)` it is the same recurrence run on `|v|`, `|C0|`
    (every term taken in absolute value), so float32 round-off of any evaluation order is
    a small multiple of eps32 times it. For `delta` (non-linear in `C`) it is the bound
    `‖C_t[m]‖₂ ≤ ‖C_0[m]‖₂ + Σ_i β_i[m]|v_i[m]|‖k̂_i‖₂` (each step is a contraction plus
    the new term), and `|out_t[m]| ≤ that · ‖q̂_t‖₂`.
    """
    if rule != "delta":
        C0a = None if C0 is None else np.abs(f64(C0))
        out, C, s = relit_step(
            q, k, np.abs(f64(v)), beta, gamma, resets, C0a, s0, rule=rule, eps=eps
        )
        s = np.abs(s)
        return out, C, s
    q, k, v, beta = (f64(x) for x in (q, k, v, beta))
    T, n = q.shape
    d = v.shape[1]
    row = np.zeros(d) if C0 is None else np.linalg.norm(f64(C0), axis=1)
    out = np.zeros((T, d))
    for t in range(T):
        if resets[t]:
            row = np.zeros(d)
        kh = _l1_normalise(k[t], eps)
        row = row + beta[t] * np.abs(v[t]) * np.linalg.norm(kh)
        out[t] = row * np.linalg.norm(_l1_normalise(q[t], eps))
    s = np.zeros(n) if s0 is None else np.abs(f64(s0))
    return out, np.repeat(row[:, None], n, axis=1), s


# --------------------------------------------------------------------------------------
# ReLiT: second evaluation orders (closed forms), used to cross-check the loops
# --------------------------------------------------------------------------------------


def _segment_start(resets, t: int) -> int:
    """Index of the last reset at or before `t`, or -1 if none (then the state counts)."""
    idx = np.nonzero(np.asarray(resets[: t + 1]))[0]
    return int(idx[-1]) if idx.size else -1


def _delta_transitions(beta_m: Array, kh: Array, lo: int, hi: int) -> Array:
    """`Π_{lo ≤ j < hi} (I - β_j[m] k̂_j k̂_jᵀ)` (row vectors multiply from the left)."""
    M = np.eye(kh.shape[1])
    for j in range(lo, hi):
        M = M @ (np.eye(kh.shape[1]) - beta_m[j] * np.outer(kh[j], kh[j]))
    return M


def relit_closed_form(q, k, v, beta, gamma, resets, C0=None, s0=None, *, rule="gated", eps=1e-6):
    """The parallel form: every `C_t`, `s_t` as an explicit sum over past steps.

    For `gated` (and `linear`, with β = γ = 1 in the inputs and no decay), the Mathematics page's
    `C_t = Σ_i (e^{B_t-B_i} β_i v_i) ⊗ (e^{G_t-G_i} γ_i k_i) + (e^{B_t}⊗e^{G_t})⊙C_0`
    with cumulative log-decays `B`, `G`; for `projected_sigmoid`, elementwise products
    `Π_{i<j≤t} (1 - β_j⊗γ_j)`. Sums start at the last reset (the state is dropped then).
    For `delta`, the per-row product of transition matrices
    `C_t[m] = C_0[m] Π_j A_j^m + Σ_i β_i[m] v_i[m] k̂_iᵀ Π_{j>i} A_j^m`,
    `A_j^m = I - β_j[m] k̂_j k̂_jᵀ`.
    """
    q, k, v, beta, gamma = (f64(x) for x in (q, k, v, beta, gamma))
    T, n = q.shape
    d = v.shape[1]
    C0 = np.zeros((d, n)) if C0 is None else f64(C0)
    s0 = np.zeros(n) if s0 is None else f64(s0)
    out = np.zeros((T, d))
    C = s = None
    for t in range(T):
        start = _segment_start(resets, t)
        first = max(start, 0)
        if rule in ("gated", "linear"):
            if rule == "gated":
                la, lg, u, w = np.log1p(-beta), np.log1p(-gamma), beta * v, gamma * k
            else:
                la, lg, u, w = np.zeros_like(v), np.zeros_like(k), v, k
            C = np.zeros((d, n))
            s = np.zeros(n)
            for i in range(first, t + 1):
                da = np.exp(la[i + 1 : t + 1].sum(axis=0))
                dg = np.exp(lg[i + 1 : t + 1].sum(axis=0))
                C += np.outer(da * u[i], dg * w[i])
                s += dg * w[i]
            if start < 0:
                C += np.outer(np.exp(la[: t + 1].sum(0)), np.exp(lg[: t + 1].sum(0))) * C0
                s += np.exp(lg[: t + 1].sum(0)) * s0
            out[t] = C @ q[t] / (s @ q[t] + eps)
        elif rule == "projected_sigmoid":
            D = 1.0 - beta[:, :, None] * gamma[:, None, :]  # [T, d, n]
            U = (beta * v)[:, :, None] * (gamma * k)[:, None, :]
            C = np.zeros((d, n))
            s = np.zeros(n)
            for i in range(first, t + 1):
                C += np.prod(D[i + 1 : t + 1], axis=0) * U[i]
                s += np.prod(1 - gamma[i + 1 : t + 1], axis=0) * gamma[i] * k[i]
            if start < 0:
                C += np.prod(D[: t + 1], axis=0) * C0
                s += np.prod(1 - gamma[: t + 1], axis=0) * s0
            out[t] = C @ q[t] / (s @ q[t] + eps)
        elif rule == "delta":
            kh = k / (np.abs(k).sum(axis=1, keepdims=True) + eps)
            qh = q / (np.abs(q).sum(axis=1, keepdims=True) + eps)
            C = np.zeros((d, n))
            for m in range(d):
                if start < 0:
                    C[m] += C0[m] @ _delta_transitions(beta[:, m], kh, 0, t + 1)
                for i in range(first, t + 1):
                    C[m] += (
                        beta[i, m]
                        * v[i, m]
                        * kh[i]
                        @ _delta_transitions(beta[:, m], kh, i + 1, t + 1)
                    )
            s = s0 if start < 0 else np.zeros(n)
            out[t] = C @ qh[t]
        else:
            raise KeyError(f"no oracle for rule {rule!r}")
    return out, C, s


# --------------------------------------------------------------------------------------
# AReLiT oscillators (the Mathematics page), written from the formulas
# --------------------------------------------------------------------------------------


def osc_period(r: int, oscillator: str) -> int:
    if oscillator == "paper":
        return 2 if r == 1 else 2 * (r - 1)
    if oscillator == "fourier":
        return r
    raise KeyError(oscillator)


def osc_normaliser(r: int, oscillator: str) -> float:
    return float(2 * r) if oscillator == "paper" else float(r)


def osc_features(tau: int, r: int, oscillator: str) -> Array:
    """`f(τ) ∈ R^r`. paper: `cos(ω_j τ)`, `ω = linspace(-π, π, r)`; fourier:
    `[1, √2cos(2πjτ/r), √2sin(2πjτ/r) (j = 1..⌊(r-1)/2⌋, interleaved), cos(πτ) if r even]`.

    `τ` is an exact Python integer; it is reduced modulo the period before the angle is
    formed (a float64 angle of 10^8 would keep only ~8 correct digits). Periodicity of
    the unreduced formula is checked separately in `test_oracles_agree`."""
    return osc_features_raw(int(tau) % osc_period(r, oscillator), r, oscillator)


def osc_features_raw(tau: int | float, r: int, oscillator: str) -> Array:
    """The formula itself, for any (float) τ, without reduction."""
    if oscillator == "paper":
        return np.cos(np.linspace(-np.pi, np.pi, r) * tau)
    rows = [1.0]
    for j in range(1, (r - 1) // 2 + 1):
        a = 2 * math.pi * j * tau / r
        rows += [math.sqrt(2) * math.cos(a), math.sqrt(2) * math.sin(a)]
    if r % 2 == 0:
        rows.append(math.cos(math.pi * tau))
    return np.asarray(rows)


def arelit_ticks(resets, tick0: int, T: int, P: int) -> list[int]:
    """`τ_t` (exact integers, not reduced): 1 at a reset, else `τ_{t-1} + 1`."""
    taus, tau = [], int(tick0)
    for t in range(T):
        tau = 1 if resets[t] else tau + 1
        taus.append(tau)
    return taus


def arelit_step(
    q,
    k,
    v,
    beta,
    gamma,
    resets,
    vt0=None,
    kt0=None,
    s0=None,
    tick0=0,
    *,
    r,
    oscillator,
    eps=1e-6,
    magnitude=False,
):
    """AReLiT, one step at a time (the Mathematics page):
    `ṽ^j = (1-β)⊙ṽ^j + f[j](β⊙v)`, `k̃^j = (1-γ)⊙k̃^j + f[j](γ⊙k)`, `s = (1-γ)⊙s + γ⊙k`,
    `out = Σ_j ṽ^j (k̃^j·q) / (c s·q + eps)`, `f = f(τ_t)`.

    With `magnitude=True` every signed quantity (`v`, `ṽ_0`, `k̃_0`) is replaced by its
    absolute value and every feature by `max_j |f[j]|` (a float32 feature that should be
    0, e.g. `√2cos(π/2)`, is off by ~eps32 of the row scale, not of itself): the result
    bounds every term, a scale for round-off tolerances.

    **Returns:** `(out [T, d], v_tilde [R, d], k_tilde [R, n], s [n], tick)` with
    `tick = τ_T mod P`.
    """
    q, k, v, beta, gamma = (f64(x) for x in (q, k, v, beta, gamma))
    T, n = q.shape
    d = v.shape[1]
    P = osc_period(r, oscillator)
    c = osc_normaliser(r, oscillator)
    V = np.zeros((r, d)) if vt0 is None else f64(vt0).copy()
    K = np.zeros((r, n)) if kt0 is None else f64(kt0).copy()
    s = np.zeros(n) if s0 is None else f64(s0).copy()
    ab = np.abs if magnitude else (lambda x: x)
    V, K, v = ab(V), ab(K), ab(v)
    out = np.zeros((T, d))
    taus = arelit_ticks(resets, tick0, T, P)
    for t in range(T):
        if resets[t]:
            V, K, s = np.zeros((r, d)), np.zeros((r, n)), np.zeros(n)
        f = osc_features(taus[t], r, oscillator)
        if magnitude:
            f = np.full(r, np.abs(f).max())
        V = (1 - beta[t]) * V + f[:, None] * (beta[t] * v[t])
        K = (1 - gamma[t]) * K + f[:, None] * (gamma[t] * k[t])
        s = (1 - gamma[t]) * s + gamma[t] * k[t]
        out[t] = ((K @ q[t]) @ V) / (c * (s @ q[t]) + eps)
    return out, V, K, s, taus[-1] % P


def _decayed_terms(v, k, beta, gamma, resets, t: int):
    """`p_i = Π_{i<j≤t}(1-β_j) β_i v_i`, `κ_i = Π_{i<j≤t}(1-γ_j) γ_i k_i` for the steps
    `i` of the current segment (from the last reset, or 0), as explicit products."""
    first = max(_segment_start(resets, t), 0)
    ps, ks = [], []
    for i in range(first, t + 1):
        ps.append(np.prod(1 - beta[i + 1 : t + 1], axis=0) * beta[i] * v[i])
        ks.append(np.prod(1 - gamma[i + 1 : t + 1], axis=0) * gamma[i] * k[i])
    return first, np.asarray(ps), np.asarray(ks)


def arelit_closed_form(
    q,
    k,
    v,
    beta,
    gamma,
    resets,
    vt0=None,
    kt0=None,
    s0=None,
    tick0=0,
    *,
    r,
    oscillator,
    eps=1e-6,
):
    """AReLiT through explicit sums: `ṽ^j_t = e^{B_t} ṽ^j_0 + Σ_i f_i[j] p_i`,
    `k̃^j_t = e^{G_t} k̃^j_0 + Σ_l f_l[j] κ_l` (initial terms only before any reset),
    `out_t = Σ_j ṽ^j_t (k̃^j_t·q_t) / (c Σ_l κ_l·q_t + ... + eps)`."""
    q, k, v, beta, gamma = (f64(x) for x in (q, k, v, beta, gamma))
    T, n = q.shape
    d = v.shape[1]
    P = osc_period(r, oscillator)
    c = osc_normaliser(r, oscillator)
    taus = arelit_ticks(resets, tick0, T, P)
    out = np.zeros((T, d))
    V = K = s = None
    for t in range(T):
        first, ps, ks = _decayed_terms(v, k, beta, gamma, resets, t)
        F = np.stack([osc_features(taus[i], r, oscillator) for i in range(first, t + 1)])
        V, K, s = F.T @ ps, F.T @ ks, ks.sum(axis=0)
        if _segment_start(resets, t) < 0:
            if vt0 is not None:
                V = V + np.prod(1 - beta[: t + 1], axis=0) * f64(vt0)
                K = K + np.prod(1 - gamma[: t + 1], axis=0) * f64(kt0)
            if s0 is not None:
                s = s + np.prod(1 - gamma[: t + 1], axis=0) * f64(s0)
        out[t] = ((K @ q[t]) @ V) / (c * (s @ q[t]) + eps)
    return out, V, K, s, taus[-1] % P


# --------------------------------------------------------------------------------------
# AReLiT: the aliasing identity (fourier) and the paper r = 2 closed form
# --------------------------------------------------------------------------------------


def aliased_sum(v, k, beta, gamma, resets, r: int, t: int | None = None):
    """`Σ_{i≠l, τ_i ≡ τ_l (mod r)} p_i ⊗ κ_l` at step `t` (default: last), from a zero start.

    Within a segment `τ_i - τ_l = i - l`, so the condition is `r | i - l`.

    **Returns:** `(sum [d, n], frobenius_bound, magnitude [d, n])`: the bound is
    `Σ_{same pairs} ‖p_i‖‖κ_l‖`; `magnitude = (Σ_i |p_i|) ⊗ (Σ_l |κ_l|)` bounds every term
    of `C̃_t` and `C_t`, a scale for round-off.
    """
    v, k, beta, gamma = (f64(x) for x in (v, k, beta, gamma))
    t = v.shape[0] - 1 if t is None else t
    first, ps, ks = _decayed_terms(v, k, beta, gamma, resets, t)
    m = ps.shape[0]
    total = np.zeros((v.shape[1], k.shape[1]))
    bound = 0.0
    for i in range(m):
        for ell in range(m):
            if i != ell and (i - ell) % r == 0:
                total += np.outer(ps[i], ks[ell])
                bound += float(np.linalg.norm(ps[i]) * np.linalg.norm(ks[ell]))
    mag = np.outer(np.abs(ps).sum(0), np.abs(ks).sum(0))
    return total, bound, mag


def aliased_output_error(q, k, v, beta, gamma, resets, r: int, eps=1e-6):
    """Predicted `out_fourier - out_relit(eps/r)` at every step, and its termwise bound.

    `out_fourier = (C̃/r) q / (s·q + eps/r)`, so the difference is
    `(Σ_{aliased pairs} p_i (κ_l·q_t)) / (s_t·q_t + eps/r)`, written as
    `pᵀ M (κ q_t)` with the explicit pair mask `M[i, l] = [i ≠ l, r | i - l]`.

    **Returns:** `(err [T, d], bound [T, d])`, `bound = Σ |p_i| (|κ_l|·q) / (...)`.
    """
    q, k, v, beta, gamma = (f64(x) for x in (q, k, v, beta, gamma))
    T, d = v.shape
    err = np.zeros((T, d))
    bound = np.zeros((T, d))
    for t in range(T):
        _, ps, ks = _decayed_terms(v, k, beta, gamma, resets, t)
        den = ks.sum(0) @ q[t] + eps / r
        kq = ks @ q[t]
        lag = np.subtract.outer(np.arange(len(ps)), np.arange(len(ps)))
        mask = ((lag != 0) & (lag % r == 0)).astype(np.float64)
        err[t] = ps.T @ mask @ kq / den
        bound[t] = np.abs(ps).T @ mask @ np.abs(kq) / den
    return err, bound


def paper_r2_closed_form(q, k, v, beta, gamma, resets, eps=1e-6):
    """The paper family at r = 2 from its kernel: `K_{il} = 2(-1)^{i-l}` within a segment,

    `out_t = Σ_{i,l ≤ t} 2(-1)^{i-l} p_i (κ_l·q_t) / (2r s_t·q_t + eps)`, r = 2,
    with `p_i`, `κ_l` the decayed terms and `s_t = Σ_l κ_l` (zero start); the double sum
    is `pᵀ K (κ q_t)` with `K` written out as a matrix."""
    q, k, v, beta, gamma = (f64(x) for x in (q, k, v, beta, gamma))
    T, d = v.shape
    out = np.zeros((T, d))
    for t in range(T):
        _, ps, ks = _decayed_terms(v, k, beta, gamma, resets, t)
        lag = np.subtract.outer(np.arange(len(ps)), np.arange(len(ps)))
        K = 2.0 * (-1.0) ** lag
        out[t] = ps.T @ K @ (ks @ q[t]) / (4.0 * (ks.sum(0) @ q[t]) + eps)
    return out
