"""Hypothesis strategies and jitted call helpers shared by the functional suites.

Compilation dominates the run time (every new input shape recompiles every form), so
shapes come from small fixed *buckets* and hypothesis varies everything else: values,
gates (including whole stretches at the extremes 1e-6 and 1-1e-6), resets (none, at
t=0, consecutive, random, every step), starting states (zeros, random, and for AReLiT a
counter anywhere, including 10^8 + k).

- `T_BUCKETS` (1, 5, 37): one step, a short sequence, and a sequence of several chunks
  whose length is not a multiple of the chunk size (`chunk_for`); `LONG_T = 300` with
  chunk size 64 for the long-sequence checks.
- One feature width `N` and value width `D` for every kernel: a kernel's raw width
  (and `eta`) is chosen so that its `feature_dim` is `N` (`kernel_raw_dims`), so all
  kernels share the compiled programs. `WIDE` is a second width bucket.
- `Flavor`: one thing the suites run, either a ReLiT update rule from `RULES` or an
  AReLiT oscillator family; the flavor list is read from the registries, so a newly
  registered rule is under the suites with no other edit.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from relit_eqx.functional import AReLiTState, ReLiTState, arelit, relit
from relit_eqx.kernels import KERNELS
from relit_eqx.update_rules import RULES

# ------------------------------------------------------------------------------------
# Shape buckets
# ------------------------------------------------------------------------------------

T_BUCKETS = (1, 5, 37)
LONG_T = 300
D, N = 3, 6  # value width d, feature width n (d != n catches transposed axes)
WIDE = (2, 8)  # a second (d, n) bucket
R_FORMS = 4  # AReLiT r in the form suite: rows 1, √2cos, √2sin and the sign row cos(πτ)
METHODS = ("scan", "associative", "chunked")
LO, HI = 1e-6, 1.0 - 1e-6  # the extreme gates of issue 3


def chunk_for(T: int) -> int:
    """Chunk size per length bucket: several chunks, the last one partial."""
    return 64 if T >= 100 else (4 if T < 16 else 8)


def kernel_raw_dims(name: str, n: int) -> tuple[int, int | None]:
    """`(raw width, eta or None)` such that the kernel's features have width `n`.

    Searched over small raw widths and `eta`s; a kernel whose feature width cannot hit
    `n` falls back to its natural size (its own compile, still tested)."""
    kern = KERNELS[name]
    etas = range(1, n + 1) if kern.uses_p else (1,)
    best = None
    for dx in range(n, 0, -1):
        for eta in etas:
            if kern.feature_dim(dx, eta) == n:
                cand = (dx, eta if kern.uses_p else None)
                # prefer a genuine outer product (eta > 1) and dx > 1
                score = (cand[1] is None or cand[1] > 1) + (dx > 1)
                if best is None or score > best[0]:
                    best = (score, cand)
    if best is None:
        return n, (2 if kern.uses_p else None)
    return best[1]


# ------------------------------------------------------------------------------------
# Flavors: what the suites run
# ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Flavor:
    """A ReLiT update rule (`kind="relit"`, `name` = rule) or an AReLiT oscillator
    family (`kind="arelit"`, `name` = oscillator), with the forms it supports."""

    kind: str
    name: str
    methods: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.name if self.kind == "relit" else f"arelit-{self.name}"

    @property
    def is_arelit(self) -> bool:
        return self.kind == "arelit"


FLAVORS: list[Flavor] = [
    *(
        Flavor("relit", name, tuple(m for m in METHODS if m in rule.methods))
        for name, rule in RULES.items()
    ),
    Flavor("arelit", "paper", METHODS),
    Flavor("arelit", "fourier", METHODS),
]

#: every (flavor, method) pair, and every pair except scan (compared with scan)
FLAVOR_METHODS = [(f, m) for f in FLAVORS for m in f.methods]
FLAVOR_NON_SCAN = [(f, m) for f, m in FLAVOR_METHODS if m != "scan"]


def fm_id(fm: tuple[Flavor, str]) -> str:
    return f"{fm[0].id}-{fm[1]}"


# ------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """One drawn input: float32 arrays exactly as the library sees them."""

    kernel: str
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    resets: np.ndarray
    state: tuple  # (C, s) or (v_tilde, k_tilde, s, tick)
    r: int | None = None

    @property
    def T(self) -> int:
        return self.q.shape[0]

    @property
    def inputs(self) -> tuple:
        return (self.q, self.k, self.v, self.beta, self.gamma, self.resets)

    def replace(self, **kw: Any) -> Case:
        return dataclasses.replace(self, **kw)


GATE_KINDS = ("uniform", "lo", "hi", "mixed", "sigmoid", "moderate")
RESET_KINDS = ("none", "first", "consecutive", "random", "all", "single")


@st.composite
def gates(draw, rng: np.random.Generator, T: int, w: int, kinds=GATE_KINDS) -> np.ndarray:
    """`[T, w]` gates in (0, 1): 1-3 stretches, each uniform, all 1e-6, all 1-1e-6,
    an entrywise mix of both extremes and uniform, logistic of wide normals, or
    bounded away from 0 and 1 ("moderate")."""
    n_str = draw(st.integers(1, min(3, T)))
    cuts = sorted(
        draw(st.lists(st.integers(1, max(1, T - 1)), min_size=n_str - 1, max_size=n_str - 1))
    )
    bounds = [0, *cuts, T]
    g = np.empty((T, w))
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        kind = draw(st.sampled_from(kinds))
        shape = (b - a, w)
        if kind == "uniform":
            x = rng.uniform(0.0, 1.0, shape)
        elif kind == "lo":
            x = np.full(shape, LO)
        elif kind == "hi":
            x = np.full(shape, HI)
        elif kind == "mixed":
            x = rng.choice(np.array([LO, HI, 0.5]), shape)
            x = np.where(rng.uniform(size=shape) < 0.3, rng.uniform(size=shape), x)
        elif kind == "sigmoid":
            x = 1.0 / (1.0 + np.exp(-4.0 * rng.normal(size=shape)))
        else:
            x = rng.uniform(0.1, 0.9, shape)
        g[a:b] = x
    g = np.clip(g, LO, HI).astype(np.float32)
    return g


@st.composite
def resets_of(draw, rng: np.random.Generator, T: int, kinds=RESET_KINDS) -> np.ndarray:
    """Reset patterns: none, at t=0, a run of consecutive resets, random, all, one."""
    kind = draw(st.sampled_from(kinds))
    res = np.zeros(T, dtype=bool)
    if kind == "first":
        res[0] = True
    elif kind == "consecutive":
        a = draw(st.integers(0, T - 1))
        b = draw(st.integers(a, min(T - 1, a + 3)))
        res[a : b + 1] = True
    elif kind == "random":
        res = rng.uniform(size=T) < draw(st.sampled_from([0.05, 0.2, 0.5]))
    elif kind == "all":
        res[:] = True
    elif kind == "single":
        res[draw(st.integers(0, T - 1))] = True
    return res


def features(kernel: str, x: np.ndarray, p: np.ndarray | None) -> np.ndarray:
    """Map raw projections with the registered kernel (library code, float32)."""
    kern = KERNELS[kernel]
    out = kern(jnp.asarray(x), None if p is None else jnp.asarray(p))
    return np.array(out, dtype=np.float32)  # a writable copy


def raw_inputs(kernel: str, rng: np.random.Generator, T: int, n: int, scale: float):
    dx, eta = kernel_raw_dims(kernel, n)
    x = (rng.normal(size=(T, dx)) * scale).astype(np.float32)
    p = None if eta is None else (rng.normal(size=(T, eta)) * scale).astype(np.float32)
    return x, p


def ticks_strategy(P: int):
    """A starting counter: small (possibly >= P, not yet reduced) or 10^8 + k."""
    return st.one_of(st.integers(0, 3 * P), st.integers(10**8, 10**8 + 4 * P))


@st.composite
def cases(
    draw,
    flavor: Flavor,
    kernel: str | None = None,
    t_buckets=T_BUCKETS,
    widths=((D, N),),
    r_choices=(R_FORMS,),
    state_kinds=("zeros", "random"),
    gate_kinds=GATE_KINDS,
    reset_kinds=RESET_KINDS,
    value_sign="signed",
    zero_inputs=True,
) -> Case:
    """A full input for `flavor`: features from a kernel (drawn from `KERNELS` if not
    given), values, gates, resets and a starting state, all float32."""
    kernel = kernel if kernel is not None else draw(st.sampled_from(sorted(KERNELS)))
    T = draw(st.sampled_from(t_buckets))
    d, n = draw(st.sampled_from(widths))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    xs = draw(st.sampled_from([0.5, 1.0, 2.0]))
    vs = draw(st.sampled_from([0.1, 1.0, 10.0]))
    q = features(kernel, *raw_inputs(kernel, rng, T, n, xs))
    k = features(kernel, *raw_inputs(kernel, rng, T, n, xs))
    v = rng.normal(size=(T, d)) * vs
    if value_sign == "positive":
        v = np.abs(v)
    v = v.astype(np.float32)
    if zero_inputs and draw(st.integers(0, 9)) == 0:  # a stretch of all-zero features
        a = draw(st.integers(0, T - 1))
        b = draw(st.integers(a + 1, T))
        q[a:b] = 0.0
        k[a:b] = 0.0
        v[a:b] = 0.0
    beta = draw(gates(rng, T, d, gate_kinds))
    gamma = draw(gates(rng, T, n, gate_kinds))
    resets = draw(resets_of(rng, T, reset_kinds))
    kind = draw(st.sampled_from(state_kinds))
    ss = draw(st.sampled_from([0.1, 1.0, 5.0]))
    r = None
    if flavor.is_arelit:
        r = draw(st.sampled_from(r_choices))
        P = osc_period(r, flavor.name)
        tick = draw(ticks_strategy(P)) if kind == "random" else 0
        if kind == "random":
            state = (
                (rng.normal(size=(r, d)) * ss).astype(np.float32),
                (rng.normal(size=(r, n)) * ss).astype(np.float32),
                np.abs(rng.normal(size=n) * ss).astype(np.float32),
                np.int32(tick),
            )
        else:
            state = (
                np.zeros((r, d), np.float32),
                np.zeros((r, n), np.float32),
                np.zeros(n, np.float32),
                np.int32(0),
            )
    else:
        if kind == "random":
            state = (
                (rng.normal(size=(d, n)) * ss).astype(np.float32),
                np.abs(rng.normal(size=n) * ss).astype(np.float32),
            )
        else:
            state = (np.zeros((d, n), np.float32), np.zeros(n, np.float32))
    return Case(kernel, q, k, v, beta, gamma, resets, state, r)


def osc_period(r: int, oscillator: str) -> int:
    """SPEC §2 periods (written here, not read from the library)."""
    return (2 if r == 1 else 2 * (r - 1)) if oscillator == "paper" else r


# ------------------------------------------------------------------------------------
# Jitted calls (shared caches: equal shapes compile once per process)
# ------------------------------------------------------------------------------------

_STATIC = ("kind", "name", "method", "chunk_size", "r", "eps")


def _call(q, k, v, beta, gamma, resets, state, *, kind, name, method, chunk_size, r, eps):
    if kind == "relit":
        out, st_ = relit(
            q,
            k,
            v,
            beta,
            gamma,
            resets,
            ReLiTState(*state),
            rule=name,
            method=method,
            chunk_size=chunk_size,
            eps=eps,
        )
    else:
        out, st_ = arelit(
            q,
            k,
            v,
            beta,
            gamma,
            resets,
            AReLiTState(*state),
            r=r,
            oscillator=name,
            method=method,
            chunk_size=chunk_size,
            eps=eps,
        )
    return out, tuple(st_)


_call_jit = jax.jit(_call, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=_STATIC)
def _vjp_jit(
    q,
    k,
    v,
    beta,
    gamma,
    resets,
    state,
    cot_out,
    cot_state,
    *,
    kind,
    name,
    method,
    chunk_size,
    r,
    eps,
):
    nf = 2 if kind == "relit" else 3  # float leaves of the state; the tick is closed over
    rest = tuple(state[nf:])

    def f(q, k, v, beta, gamma, fstate):
        out, st_ = _call(
            q,
            k,
            v,
            beta,
            gamma,
            resets,
            (*fstate, *rest),
            kind=kind,
            name=name,
            method=method,
            chunk_size=chunk_size,
            r=r,
            eps=eps,
        )
        return out, st_[:nf]

    _, pull = jax.vjp(f, q, k, v, beta, gamma, tuple(state[:nf]))
    return pull((cot_out, tuple(cot_state)))


def run(
    flavor: Flavor,
    case: Case,
    method: str,
    *,
    chunk_size: int | None = None,
    eps: float = 1e-6,
    state: tuple | None = None,
    inputs: tuple | None = None,
):
    """Run `flavor` in form `method` on `case` (jitted); numpy `(out, state tuple)`."""
    inputs = case.inputs if inputs is None else inputs
    state = case.state if state is None else state
    cs = chunk_size if chunk_size is not None else chunk_for(inputs[0].shape[0])
    out, st_ = _call_jit(
        *inputs,
        tuple(state),
        kind=flavor.kind,
        name=flavor.name,
        method=method,
        chunk_size=cs,
        r=case.r,
        eps=eps,
    )
    return np.asarray(out), tuple(np.asarray(x) for x in st_)


def vjp(
    flavor: Flavor,
    case: Case,
    method: str,
    cot_out,
    cot_state,
    *,
    chunk_size: int | None = None,
    eps: float = 1e-6,
):
    """Reverse-mode pullback of `(out, float state)` w.r.t. `(q, k, v, beta, gamma,
    float state)` for the given cotangents; numpy arrays."""
    cs = chunk_size if chunk_size is not None else chunk_for(case.T)
    grads = _vjp_jit(
        *case.inputs,
        tuple(case.state),
        cot_out,
        tuple(cot_state),
        kind=flavor.kind,
        name=flavor.name,
        method=method,
        chunk_size=cs,
        r=case.r,
        eps=eps,
    )
    q, k, v, b, g, fs = grads
    return {
        "q": q,
        "k": k,
        "v": v,
        "beta": b,
        "gamma": g,
        **{f"state[{i}]": x for i, x in enumerate(fs)},
    }


# ------------------------------------------------------------------------------------
# Comparisons
# ------------------------------------------------------------------------------------


def assert_close(actual, expected, scale=0.0, *, rtol=1e-4, what=""):
    """`|actual - expected| <= rtol·(|expected| + scale)` elementwise, all finite.

    `scale` is the magnitude of the terms summed into `expected` (from the oracles'
    magnitude runs): float32 round-off of any evaluation order is a small multiple of
    eps32 times it, whatever cancellation happened in the sum."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values {actual}"
    tol = rtol * (np.abs(expected) + np.asarray(scale, dtype=np.float64)) + 1e-30
    err = np.abs(actual - expected)
    bad = err > tol
    if np.any(bad):
        i = np.unravel_index(np.argmax(err / tol), err.shape)
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} entries differ; worst at {i}: "
            f"actual {actual[i]!r}, expected {expected[i]!r}, |err| {err[i]:.3g}, "
            f"tol {tol[i]:.3g} (max err/tol {np.max(err / tol):.3g})"
        )
