"""Hypothesis strategies and jitted calls for checking the functional core.

Compilation dominates the run time (every new input shape recompiles every form), so
shapes come from small fixed *buckets* and hypothesis varies everything else: values,
gates (stretches exactly 0, exactly 1, at 1e-6 and 1-1e-6, mixed), resets (none, at
t=0, consecutive, random, every step), starting states (zeros, random, and for AReLiT a
counter anywhere, including 10^8 + k), stretches of all-zero inputs.

- `T_BUCKETS` (1, 5, 37): one step, a short sequence, and a sequence of several chunks
  whose length is not a multiple of the chunk size (`chunk_for`); `LONG_T = 300` with
  chunk size 64 for the long-sequence checks.
- One feature width `N` and value width `D` for every kernel: a kernel's raw width
  (and `eta`) is chosen so that its `feature_dim` is `N` (`kernel_raw_dims`); features
  are formed outside the compiled programs, so all kernels share them. `WIDE` is a
  second width bucket.
- `Flavor`: one thing to check, either a ReLiT update rule or an AReLiT oscillator family.
"""

from __future__ import annotations

import dataclasses
import random
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from ..functional import AReLiTState, ReLiTState, arelit, relit
from ..kernels import KERNELS, Kernel
from ..update_rules import RULES, UpdateRule

__all__ = [
    "T_BUCKETS",
    "LONG_T",
    "D",
    "N",
    "WIDE",
    "R_FORMS",
    "METHODS",
    "LO",
    "HI",
    "GATE_KINDS",
    "RESET_KINDS",
    "Flavor",
    "Case",
    "FLAVORS",
    "FLAVOR_METHODS",
    "FLAVOR_NON_SCAN",
    "chunk_for",
    "kernel_raw_dims",
    "resolve_kernel",
    "gates",
    "resets_of",
    "features",
    "raw_inputs",
    "ticks_strategy",
    "cases",
    "osc_period",
    "run",
    "vjp",
    "assert_close",
    "describe",
    "fm_id",
]

# ------------------------------------------------------------------------------------
# Shape buckets
# ------------------------------------------------------------------------------------

T_BUCKETS = (1, 5, 37)
LONG_T = 300
D, N = 3, 6  # value width d, feature width n (d != n catches transposed axes)
WIDE = (2, 8)  # a second (d, n) bucket
R_FORMS = 4  # AReLiT r: rows 1, √2cos, √2sin and the sign row cos(πτ)
METHODS = ("scan", "associative", "chunked")
LO, HI = 1e-6, 1.0 - 1e-6  # the extreme gates short of 0 and 1


def chunk_for(T: int) -> int:
    """Chunk size per length bucket: several chunks, the last one partial."""
    return 64 if T >= 100 else (4 if T < 16 else 8)


def resolve_kernel(kernel: str | Kernel) -> Kernel:
    """A `Kernel` object from a registered name or the object itself."""
    if isinstance(kernel, Kernel):
        return kernel
    if isinstance(kernel, str):
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; registered kernels: {sorted(KERNELS)}")
        return KERNELS[kernel]
    raise TypeError(
        f"kernel must be a registered name or a relit_eqx.kernels.Kernel; "
        f"got {type(kernel).__name__}"
    )


def kernel_raw_dims(kernel: str | Kernel, n: int) -> tuple[int, int | None]:
    """`(raw width, eta or None)` such that the kernel's features have width `n`.

    Searched over small raw widths and `eta`s; a kernel whose feature width cannot hit
    `n` falls back to its natural size (`ValueError` from `cases` then names it)."""
    kern = resolve_kernel(kernel)
    etas = range(1, n + 1) if kern.uses_p else (1,)
    best: tuple[int, tuple[int, int | None]] | None = None
    for dx in range(n, 0, -1):
        for eta in etas:
            if kern.feature_dim(dx, eta) == n:
                cand = (dx, eta if kern.uses_p else None)
                # prefer a genuine outer product (eta > 1) and dx > 1
                score = int(cand[1] is None or cand[1] > 1) + int(dx > 1)
                if best is None or score > best[0]:
                    best = (score, cand)
    if best is None:
        return n, (2 if kern.uses_p else None)
    return best[1]


# ------------------------------------------------------------------------------------
# Flavors: what the checks run
# ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Flavor:
    """A ReLiT update rule (`kind="relit"`, `name` = rule) or an AReLiT oscillator
    family (`kind="arelit"`, `name` = oscillator), with the forms it supports.

    `rule` optionally holds the `UpdateRule` object itself: it keys the compiled
    programs, so two different rules registered in turn under one name never share one."""

    kind: str
    name: str
    methods: tuple[str, ...]
    rule: Any = None

    @property
    def id(self) -> str:
        return self.name if self.kind == "relit" else f"arelit-{self.name}"

    @property
    def is_arelit(self) -> bool:
        return self.kind == "arelit"

    @classmethod
    def of_rule(cls, rule: UpdateRule, methods: tuple[str, ...] | None = None) -> Flavor:
        supported = tuple(m for m in METHODS if m in rule.methods)
        if methods is not None:
            supported = tuple(m for m in supported if m in methods)
        return cls("relit", rule.name, supported, rule)

    @classmethod
    def of_oscillator(cls, oscillator: str, methods: tuple[str, ...] | None = None) -> Flavor:
        return cls(
            "arelit", oscillator, tuple(m for m in METHODS if methods is None or m in methods)
        )


FLAVORS: list[Flavor] = [
    *(Flavor.of_rule(rule) for rule in RULES.values()),
    Flavor.of_oscillator("paper"),
    Flavor.of_oscillator("fourier"),
]
"""The built-in flavors at import time: every registered rule, AReLiT paper and fourier."""

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
    """One drawn input: arrays exactly as the library sees them (float32 unless built
    otherwise). `kernel` is a registered name or a `Kernel`."""

    kernel: Any
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
        return int(self.q.shape[0])

    @property
    def kernel_name(self) -> str:
        return self.kernel.name if isinstance(self.kernel, Kernel) else str(self.kernel)

    @property
    def inputs(self) -> tuple:
        return (self.q, self.k, self.v, self.beta, self.gamma, self.resets)

    def replace(self, **kw: Any) -> Case:
        return dataclasses.replace(self, **kw)


GATE_KINDS = ("uniform", "zero", "one", "lo", "hi", "mixed", "sigmoid", "moderate")
RESET_KINDS = ("none", "first", "consecutive", "random", "all", "single")


@st.composite
def gates(draw, rng: np.random.Generator, T: int, w: int, kinds=GATE_KINDS) -> np.ndarray:
    """`[T, w]` gates in [0, 1]: 1-3 stretches, each uniform, exactly 0, exactly 1, all
    1e-6, all 1-1e-6, an entrywise mix of 0, 1, both near-extremes and uniform, logistic
    of wide normals, or bounded away from 0 and 1 ("moderate")."""
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
        elif kind == "zero":
            x = np.zeros(shape)
        elif kind == "one":
            x = np.ones(shape)
        elif kind == "lo":
            x = np.full(shape, LO)
        elif kind == "hi":
            x = np.full(shape, HI)
        elif kind == "mixed":
            x = rng.choice(np.array([0.0, LO, 0.5, HI, 1.0]), shape)
            x = np.where(rng.uniform(size=shape) < 0.3, rng.uniform(size=shape), x)
        elif kind == "sigmoid":
            x = 1.0 / (1.0 + np.exp(-4.0 * rng.normal(size=shape)))
        else:
            x = rng.uniform(0.1, 0.9, shape)
        g[a:b] = x
    return np.clip(g, 0.0, 1.0).astype(np.float32)


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


def features(kernel: str | Kernel, x: np.ndarray, p: np.ndarray | None) -> np.ndarray:
    """Map raw projections with the kernel (library code, float32); a writable copy.

    Python's global `random` state is restored afterwards: a runtime type checker (e.g.
    beartype under jaxtyping's import hook) samples container items with it, which
    hypothesis forbids inside a strategy."""
    kern = resolve_kernel(kernel)
    saved = random.getstate()
    try:
        out = kern(jnp.asarray(x), None if p is None else jnp.asarray(p))
    finally:
        random.setstate(saved)
    return np.array(out, dtype=np.float32)


def raw_inputs(
    kernel: str | Kernel, rng: np.random.Generator, T: int, n: int, scale: float
) -> tuple[np.ndarray, np.ndarray | None]:
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
    kernel: str | Kernel | None = None,
    t_buckets=T_BUCKETS,
    widths=((D, N),),
    r_choices=(R_FORMS,),
    state_kinds=("zeros", "random"),
    gate_kinds=GATE_KINDS,
    reset_kinds=RESET_KINDS,
    value_sign="signed",
    zero_inputs=True,
    kernels: tuple | None = None,
) -> Case:
    """A full input for `flavor`: features from a kernel (drawn from `kernels`, by default
    the registry, if not given), values, gates, resets and a starting state, float32."""
    if kernel is None:
        pool = kernels if kernels is not None else tuple(sorted(KERNELS))
        kernel = draw(st.sampled_from(pool))
    kern = resolve_kernel(kernel)
    T = draw(st.sampled_from(t_buckets))
    d, n = draw(st.sampled_from(widths))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    xs = draw(st.sampled_from([0.5, 1.0, 2.0]))
    vs = draw(st.sampled_from([0.1, 1.0, 10.0]))
    q = features(kern, *raw_inputs(kern, rng, T, n, xs))
    k = features(kern, *raw_inputs(kern, rng, T, n, xs))
    if q.shape != (T, n):
        raise ValueError(
            f"kernel {kern.name!r}: no raw width gives features of width {n} "
            f"(got shape {q.shape}); its feature_dim(d, eta) must reach {n}"
        )
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
    state: tuple
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
    return Case(kern, q, k, v, beta, gamma, resets, state, r)


def osc_period(r: int, oscillator: str) -> int:
    """The oscillator periods of the Mathematics page (written here, not read from the
    library)."""
    return (2 if r == 1 else 2 * (r - 1)) if oscillator == "paper" else r


def _gate_summary(x: np.ndarray) -> str:
    x = np.asarray(x)
    if x.size == 0:
        return "empty"
    vals = np.unique(x)
    if vals.size <= 4:
        shown = ", ".join(f"{float(u):.7g}" for u in vals)
        return f"values {{{shown}}}"
    return (
        f"in [{float(x.min()):.7g}, {float(x.max()):.7g}], {int(np.sum(x == 0))} exactly 0, "
        f"{int(np.sum(x == 1))} exactly 1"
    )


def describe(case: Case, **extra: Any) -> str:
    """A one-line account of a case: sizes, reset positions, gate values, state."""
    d, n = case.v.shape[1], case.q.shape[1]
    parts = [
        f"kernel={case.kernel_name}",
        f"T={case.T}",
        f"d={d}",
        f"n={n}",
    ]
    if case.r is not None:
        parts.append(f"r={case.r}")
    parts.append(f"resets at {np.nonzero(np.asarray(case.resets))[0].tolist()}")
    parts.append(f"beta {_gate_summary(case.beta)}")
    parts.append(f"gamma {_gate_summary(case.gamma)}")
    nonzero_state = any(np.any(np.asarray(x) != 0) for x in case.state[:3])
    parts.append("random start state" if nonzero_state else "zero start state")
    if case.r is not None:
        parts.append(f"tick={int(case.state[3])}")
    parts += [f"{k}={v}" for k, v in extra.items()]
    return ", ".join(parts)


# ------------------------------------------------------------------------------------
# Jitted calls (shared caches: equal shapes compile once per process)
# ------------------------------------------------------------------------------------

_STATIC = ("flavor", "method", "chunk_size", "r", "eps")


def _call(q, k, v, beta, gamma, resets, state, *, flavor, method, chunk_size, r, eps):
    st_: Any
    if flavor.kind == "relit":
        out, st_ = relit(
            q,
            k,
            v,
            beta,
            gamma,
            resets,
            ReLiTState(*state),
            rule=flavor.name,
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
            oscillator=flavor.name,
            method=method,
            chunk_size=chunk_size,
            eps=eps,
        )
    return out, tuple(st_)


_call_jit = jax.jit(_call, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=_STATIC)
def _vjp_jit(
    q, k, v, beta, gamma, resets, state, cot_out, cot_state, *, flavor, method, chunk_size, r, eps
):
    nf = 3 if flavor.is_arelit else 2  # float leaves of the state; the tick is closed over
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
            flavor=flavor,
            method=method,
            chunk_size=chunk_size,
            r=r,
            eps=eps,
        )
        return out, st_[:nf]

    _, pull = jax.vjp(f, q, k, v, beta, gamma, tuple(state[:nf]))
    return pull((cot_out, tuple(cot_state)))


def _static_flavor(flavor: Flavor) -> Flavor:
    """The flavor as a compile-cache key: the rule object if hashable, else its id."""
    if flavor.rule is None:
        return flavor
    try:
        hash(flavor.rule)
    except TypeError:
        return dataclasses.replace(flavor, rule=id(flavor.rule))
    return flavor


def run(
    flavor: Flavor,
    case: Case,
    method: str,
    *,
    chunk_size: int | None = None,
    eps: float = 1e-6,
    state: tuple | None = None,
    inputs: tuple | None = None,
) -> tuple[np.ndarray, tuple]:
    """Run `flavor` in form `method` on `case` (jitted); numpy `(out, state tuple)`."""
    inputs = case.inputs if inputs is None else inputs
    state = case.state if state is None else state
    cs = chunk_size if chunk_size is not None else chunk_for(inputs[0].shape[0])
    out, st_ = _call_jit(
        *inputs,
        tuple(state),
        flavor=_static_flavor(flavor),
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
    cot_out: np.ndarray,
    cot_state: tuple,
    *,
    chunk_size: int | None = None,
    eps: float = 1e-6,
) -> dict[str, np.ndarray]:
    """Reverse-mode pullback of `(out, float state)` w.r.t. `(q, k, v, beta, gamma,
    float state)` for the given cotangents; numpy arrays."""
    cs = chunk_size if chunk_size is not None else chunk_for(case.T)
    grads = _vjp_jit(
        *case.inputs,
        tuple(case.state),
        cot_out,
        tuple(cot_state),
        flavor=_static_flavor(flavor),
        method=method,
        chunk_size=cs,
        r=case.r,
        eps=eps,
    )
    q, k, v, b, g, fs = grads
    return {
        "q": np.asarray(q),
        "k": np.asarray(k),
        "v": np.asarray(v),
        "beta": np.asarray(b),
        "gamma": np.asarray(g),
        **{f"state[{i}]": np.asarray(x) for i, x in enumerate(fs)},
    }


# ------------------------------------------------------------------------------------
# Comparisons
# ------------------------------------------------------------------------------------


def assert_close(actual, expected, scale=0.0, *, rtol=1e-4, what="") -> None:
    """`|actual - expected| <= rtol·(|expected| + scale)` elementwise, all finite.

    `scale` is the magnitude of the terms summed into `expected` (from the oracles'
    magnitude runs): float32 round-off of any evaluation order is a small multiple of
    eps32 times it, whatever cancellation happened in the sum."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if not np.all(np.isfinite(actual)):
        bad_at = np.argwhere(~np.isfinite(actual))[:5].tolist()
        raise AssertionError(f"{what}: non-finite values at {bad_at} (first 5)")
    tol = rtol * (np.abs(expected) + np.asarray(scale, dtype=np.float64)) + 1e-30
    err = np.abs(actual - expected)
    bad = err > tol
    if np.any(bad):
        i = tuple(int(j) for j in np.unravel_index(np.argmax(err / tol), err.shape))
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} entries differ; worst at {i}: "
            f"actual {float(actual[i])!r}, expected {float(expected[i])!r}, |err| {err[i]:.3g}, "
            f"tol {tol[i]:.3g} (max err/tol {np.max(err / tol):.3g})"
        )
