"""The functional core: ReLiT and AReLiT for one head on already-projected inputs (the API page).

Heads and batch are `jax.vmap` over these functions. Three evaluation orders compute
the same thing to float32 round-off:

- `method="scan"`: the step recurrence (`naive.py`), the specification;
- `method="associative"`: `jax.lax.associative_scan` (`associative.py`), `O(T·d·n)` memory;
- `method="chunked"`: dense work inside chunks, state carried between them (`chunked.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from .._validation import checked
from ..update_rules import get_rule
from . import oscillators
from .associative import arelit_associative, relit_associative
from .chunked import arelit_chunked, relit_chunked
from .naive import arelit_scan, relit_scan
from .state import AReLiTState, ReLiTState, arelit_state_floats, relit_state_floats

__all__ = [
    "METHODS",
    "relit",
    "arelit",
    "ReLiTState",
    "AReLiTState",
    "relit_state_floats",
    "arelit_state_floats",
    "oscillators",
]

METHODS = ("scan", "associative", "chunked")
"""The evaluation forms, each equal to the others to round-off."""


def _check_common(
    q: Any, k: Any, v: Any, beta: Any, gamma: Any, resets: Any, method: Any, chunk_size: Any
) -> tuple[int, int, int, Any]:
    named = {"q": q, "k": k, "v": v, "beta": beta, "gamma": gamma}
    for name, x in named.items():
        if np.ndim(x) != 2:
            raise ValueError(f"{name} must have rank 2 ([T, width]); got shape {np.shape(x)}")
        if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            raise TypeError(f"{name} must be a floating array; got dtype {jnp.result_type(x)}")
    if np.ndim(resets) != 1:
        raise ValueError(f"resets must have rank 1 ([T]); got shape {np.shape(resets)}")
    if jnp.result_type(resets) != jnp.bool_:
        raise TypeError(f"resets must be a boolean array; got dtype {jnp.result_type(resets)}")
    T = np.shape(q)[0]
    for name, x in (*named.items(), ("resets", resets)):
        if np.shape(x)[0] != T:
            raise ValueError(f"{name} has length {np.shape(x)[0]} but q has length T={T}")
    if T < 1:
        raise ValueError("q has length T=0; sequences need at least one step")
    n, d = np.shape(q)[1], np.shape(v)[1]
    for name in ("k", "gamma"):
        if np.shape(named[name])[1] != n:
            raise ValueError(f"{name} has width {np.shape(named[name])[1]} but q has width n={n}")
    if np.shape(beta)[1] != d:
        raise ValueError(f"beta has width {np.shape(beta)[1]} but v has width d={d}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"chunk_size must be an int; got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    dtype = jnp.result_type(q, k, v, beta, gamma)
    return T, d, n, dtype


def _check_state(state: Any, cls: type, shapes: dict[str, tuple[int, ...]]) -> None:
    if not isinstance(state, cls):
        raise TypeError(f"state must be a {cls.__name__} (or None); got {type(state).__name__}")
    for field, shape in shapes.items():
        got = np.shape(getattr(state, field))
        if got != shape:
            raise ValueError(f"state.{field} has shape {got}; expected {shape}")


def _precheck(state_cls: type, a: Mapping[str, Any]) -> None:
    # The checked boundary's hand-written part: one-line errors naming the argument.
    T, d, n, _ = _check_common(
        a["q"], a["k"], a["v"], a["beta"], a["gamma"], a["resets"], a["method"], a["chunk_size"]
    )
    if state_cls is AReLiTState:
        oscillators.check_oscillator(a["r"], a["oscillator"])
    state = a["state"]
    if state is None:
        return
    if state_cls is ReLiTState:
        _check_state(state, ReLiTState, {"C": (d, n), "s": (n,)})
    else:
        r = a["r"]
        shapes = {"v_tilde": (r, d), "k_tilde": (r, n), "s": (n,), "tick": ()}
        _check_state(state, AReLiTState, shapes)


@checked(functools.partial(_precheck, ReLiTState))
def relit(
    q: Float[ArrayLike, "T n"],
    k: Float[ArrayLike, "T n"],
    v: Float[ArrayLike, "T d"],
    beta: Float[ArrayLike, "T d"],
    gamma: Float[ArrayLike, "T n"],
    resets: Bool[ArrayLike, " T"],
    state: ReLiTState | None = None,
    *,
    rule: str = "gated",
    method: str = "scan",
    chunk_size: int = 64,
    eps: float = 1e-6,
) -> tuple[Float[Array, "T d"], ReLiTState]:
    """ReLiT self-attention for one head (the Mathematics page): with the `gated` rule,

    `C_t = ((1-β_t) ⊗ (1-γ_t)) ⊙ C_{t-1} + (β_t ⊙ v_t) ⊗ (γ_t ⊙ φ(k_t))`,
    `s_t = (1-γ_t) ⊙ s_{t-1} + γ_t ⊙ φ(k_t)`, `out_t = C_t φ(q_t) / (s_tᵀ φ(q_t) + ε)`.

    **Arguments:**

    - `q`, `k`: feature-mapped queries and keys `φ(q), φ(k)`, `[T, n]`.
    - `v`: values `[T, d]`; `beta`: value gates in `[0, 1]`, `[T, d]`.
    - `gamma`: key gates in `[0, 1]`, `[T, n]`.
    - `resets`: boolean `[T]`; `True` zeroes the state before step `t` (the Concepts page).
    - `state`: a `ReLiTState(C [d, n], s [n])` to continue from; `None` means zeros.
    - `rule`: an update rule from `relit_eqx.update_rules.RULES`.
    - `method`: `"scan"`, `"associative"` or `"chunked"`; all agree to round-off.
    - `chunk_size`: steps per chunk for `"chunked"` (any `T` works).
    - `eps`: added to the normaliser.

    **Returns:** `(out [T, d], final ReLiTState)`; the final state continues the sequence.
    """
    T, d, n, dtype = _check_common(q, k, v, beta, gamma, resets, method, chunk_size)
    update = get_rule(rule)
    if method not in update.methods:
        raise NotImplementedError(
            f"update rule {rule!r} does not support method {method!r}; "
            f"it supports {sorted(update.methods)}"
        )
    if state is None:
        state = ReLiTState(C=jnp.zeros((d, n), dtype), s=jnp.zeros((n,), dtype))
    _check_state(state, ReLiTState, {"C": (d, n), "s": (n,)})
    q, k, v, beta, gamma = (jnp.asarray(x, dtype) for x in (q, k, v, beta, gamma))
    resets = jnp.asarray(resets)
    state = ReLiTState(C=jnp.asarray(state.C, dtype), s=jnp.asarray(state.s, dtype))
    if method == "scan":
        return relit_scan(update, q, k, v, beta, gamma, resets, state, eps)
    if method == "associative":
        return relit_associative(update, q, k, v, beta, gamma, resets, state, eps)
    return relit_chunked(update, q, k, v, beta, gamma, resets, state, eps, chunk_size)


@checked(functools.partial(_precheck, AReLiTState))
def arelit(
    q: Float[ArrayLike, "T n"],
    k: Float[ArrayLike, "T n"],
    v: Float[ArrayLike, "T d"],
    beta: Float[ArrayLike, "T d"],
    gamma: Float[ArrayLike, "T n"],
    resets: Bool[ArrayLike, " T"],
    state: AReLiTState | None = None,
    *,
    r: int = 2,
    oscillator: str = "paper",
    method: str = "scan",
    chunk_size: int = 64,
    eps: float = 1e-6,
) -> tuple[Float[Array, "T d"], AReLiTState]:
    """AReLiT self-attention for one head (the Mathematics page): `R` rank-one summaries instead of `C`,

    `ṽ^j_t = (1-β_t) ⊙ ṽ^j_{t-1} + f_t[j] (β_t ⊙ v_t)`,
    `k̃^j_t = (1-γ_t) ⊙ k̃^j_{t-1} + f_t[j] (γ_t ⊙ φ(k_t))`,
    `out_t = Σ_j ṽ^j_t (k̃^j_t·φ(q_t)) / (c·s_tᵀφ(q_t) + ε)`, `f_t = f(τ_t)`
    (see `relit_eqx.functional.oscillators` for the two families and `c`).

    **Arguments:** as `relit`, plus

    - `state`: an `AReLiTState(v_tilde [R, d], k_tilde [R, n], s [n], tick [])`; `None`
      means zeros. `tick` may be any non-negative integer; it is reduced modulo the period.
    - `r`: number of oscillator rows (`R = r`), `r >= 1`.
    - `oscillator`: `"paper"` (the authors' features) or `"fourier"` (exact for fewer
      than `r` steps, convergent in `r`).

    **Returns:** `(out [T, d], final AReLiTState)`.
    """
    T, d, n, dtype = _check_common(q, k, v, beta, gamma, resets, method, chunk_size)
    oscillators.check_oscillator(r, oscillator)
    if state is None:
        state = AReLiTState(
            v_tilde=jnp.zeros((r, d), dtype),
            k_tilde=jnp.zeros((r, n), dtype),
            s=jnp.zeros((n,), dtype),
            tick=jnp.zeros((), jnp.int32),
        )
    _check_state(state, AReLiTState, {"v_tilde": (r, d), "k_tilde": (r, n), "s": (n,), "tick": ()})
    if not jnp.issubdtype(jnp.result_type(state.tick), jnp.integer):
        raise TypeError(f"state.tick must be an integer; got dtype {jnp.result_type(state.tick)}")
    q, k, v, beta, gamma = (jnp.asarray(x, dtype) for x in (q, k, v, beta, gamma))
    resets = jnp.asarray(resets)
    state = AReLiTState(
        v_tilde=jnp.asarray(state.v_tilde, dtype),
        k_tilde=jnp.asarray(state.k_tilde, dtype),
        s=jnp.asarray(state.s, dtype),
        tick=jnp.asarray(state.tick),
    )
    args = (q, k, v, beta, gamma, resets, state, r, oscillator, eps)
    if method == "scan":
        return arelit_scan(*args)
    if method == "associative":
        return arelit_associative(*args)
    return arelit_chunked(*args, chunk_size)
