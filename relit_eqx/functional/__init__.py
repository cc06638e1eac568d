"""The functional core: ReLiT and AReLiT for one head on already-projected inputs (the API page).

Heads and batch are `jax.vmap` over these functions. Three evaluation orders compute
the same thing to float32 round-off:

- `method="scan"`: the step recurrence (`naive.py`), the specification;
- `method="associative"`: `jax.lax.associative_scan` (`associative.py`), `O(T·d·n)` memory;
- `method="chunked"`: dense work inside chunks, state carried between them (`chunked.py`);
- AReLiT only, `method="loop"`: the step loop with a hand-written backward pass
  (`adjoint.py`, reverse mode only), the training form of `AReLiTAttention`.

What every form assumes, and does not check inside `jit` (a check there would cost a pass
over the data): gates `beta`, `gamma` in `[0, 1]` (the decays `1-β`, `1-γ` are then in
`[0, 1]`; the chunked form takes their logarithms) and non-negative features `q`, `k` (the
normaliser `sᵀφ(q)` is then non-negative). Gates outside `[0, 1]` in concrete inputs
(NumPy, or JAX arrays outside `jit`) raise `ValueError`. Gates exactly 0 or 1 are in range:
outputs and gradients of every form agree with the step loop's there.

Resets are applied by selection: after a reset every form gives what a fresh start gives,
to round-off, whatever came before it (NaN and infinities included), and so do the
gradients with respect to the inputs after the reset. `T = 0` is allowed: the output is
`[0, d]` and the state is returned unchanged.

The step functions `relit_step` and `arelit_step` (one step of one head) and the loop
`arelit_loop`/`arelit_loop_outer` (many heads, time first) are the building blocks the
layers of `relit_eqx.nn` use.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from .._validation import checked
from ..update_rules import get_rule
from . import oscillators
from .adjoint import LoopInputs, Outer, OuterLoopInputs, arelit_loop, arelit_loop_outer
from .associative import arelit_associative, relit_associative
from .chunked import arelit_chunked, relit_chunked
from .naive import arelit_scan, arelit_step, relit_scan, relit_step
from .state import AReLiTState, ReLiTState, arelit_state_floats, relit_state_floats

__all__ = [
    "METHODS",
    "ARELIT_METHODS",
    "relit",
    "arelit",
    "relit_step",
    "arelit_step",
    "arelit_loop",
    "arelit_loop_outer",
    "LoopInputs",
    "OuterLoopInputs",
    "Outer",
    "ReLiTState",
    "AReLiTState",
    "relit_state_floats",
    "arelit_state_floats",
    "oscillators",
]

METHODS = ("scan", "associative", "chunked")
"""The evaluation forms of `relit`, each equal to the others to round-off."""

ARELIT_METHODS = (*METHODS, "loop")
"""The evaluation forms of `arelit`: `METHODS` and the hand-written adjoint loop."""


def _check_gates(beta: Any, gamma: Any) -> None:
    # Concrete inputs only: a traced array cannot be read (and inside jit a check would
    # cost a pass over the data). NaN passes: it is not a range error.
    for name, x in (("beta", beta), ("gamma", gamma)):
        try:
            host = np.asarray(x)
        except jax.errors.TracerArrayConversionError:
            continue
        bad = (host < 0) | (host > 1)
        if np.any(bad):
            raise ValueError(
                f"{name} must lie in [0, 1] (a gate); got {host[bad].ravel()[0]!r} "
                f"at index {tuple(int(i) for i in np.argwhere(bad)[0])}"
            )


def _check_common(
    q: Any,
    k: Any,
    v: Any,
    beta: Any,
    gamma: Any,
    resets: Any,
    method: Any,
    chunk_size: Any,
    methods: tuple[str, ...] = METHODS,
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
    n, d = np.shape(q)[1], np.shape(v)[1]
    for name in ("k", "gamma"):
        if np.shape(named[name])[1] != n:
            raise ValueError(f"{name} has width {np.shape(named[name])[1]} but q has width n={n}")
    if np.shape(beta)[1] != d:
        raise ValueError(f"beta has width {np.shape(beta)[1]} but v has width d={d}")
    if method not in methods:
        raise ValueError(f"unknown method {method!r}; choose one of {methods}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"chunk_size must be an int; got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    _check_gates(beta, gamma)
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
    methods = METHODS if state_cls is ReLiTState else ARELIT_METHODS
    T, d, n, _ = _check_common(
        a["q"], a["k"], a["v"], a["beta"], a["gamma"], a["resets"], a["method"],
        a["chunk_size"], methods,
    )  # fmt: skip
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
    - `gamma`: key gates in `[0, 1]`, `[T, n]`. Gates outside `[0, 1]` and negative
      features are not supported (see the module docstring: checked for concrete inputs
      only).
    - `resets`: boolean `[T]`; `True` zeroes the state before step `t` (the Concepts page),
      by selection: nothing before it reaches what follows, not even a NaN.
    - `state`: a `ReLiTState(C [d, n], s [n])` to continue from; `None` means zeros.
    - `rule`: an update rule from `relit_eqx.update_rules.RULES`.
    - `method`: `"scan"`, `"associative"` or `"chunked"`; all agree to round-off.
    - `chunk_size`: steps per chunk for `"chunked"` (any `T` works).
    - `eps`: added to the normaliser.

    **Returns:** `(out [T, d], final ReLiTState)`; the final state continues the sequence.
    `T = 0` returns `[0, d]` and the state unchanged.
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
    if T == 0:
        return jnp.zeros((0, d), dtype), state
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
      means zeros. `tick` may be any non-negative integer (a concrete one of any size is
      reduced exactly modulo the period; a negative one raises `ValueError`; see
      `oscillators.reduce_tick`).
    - `method`: as `relit`, or `"loop"`: the step loop with a hand-written backward pass
      (`arelit_loop`; reverse-mode differentiation only), the layers' training form;
      `chunk_size` is then the number of steps between the states kept for the backward
      pass.
    - `r`: number of oscillator rows (`R = r`), `r >= 1`.
    - `oscillator`: `"paper"` (the authors' features) or `"fourier"` (exact for fewer
      than `r` steps, convergent in `r`).

    **Returns:** `(out [T, d], final AReLiTState)`; `T = 0` returns `[0, d]` and the
    state unchanged (its counter reduced).
    """
    T, d, n, dtype = _check_common(
        q, k, v, beta, gamma, resets, method, chunk_size, methods=ARELIT_METHODS
    )
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
        tick=oscillators.reduce_tick(state.tick, r, oscillator),
    )
    if T == 0:
        return jnp.zeros((0, d), dtype), state
    args = (q, k, v, beta, gamma, resets, state, r, oscillator, eps)
    if method == "scan":
        return arelit_scan(*args)
    if method == "associative":
        return arelit_associative(*args)
    if method == "loop":
        return _arelit_loop_one_head(*args, chunk_size)
    return arelit_chunked(*args, chunk_size)


def _arelit_loop_one_head(
    q, k, v, beta, gamma, resets, state, r, oscillator, eps, chunk_size
) -> tuple[Array, AReLiTState]:
    """`arelit` by `arelit_loop` with one head (a head axis of 1 added and removed)."""
    tau, f = oscillators.counter_features(resets, state.tick, r, oscillator, v.dtype)
    a, g, u, w = get_rule("gated").factors(k, v, beta, gamma)
    inputs = LoopInputs(*(x[:, None, :] for x in (q, a, g, u, w, f)))
    carry = (state.v_tilde[None], state.k_tilde[None], state.s[None])
    c = oscillators.normaliser(r, oscillator)
    out, (V, K, s) = arelit_loop(inputs, resets, carry, c=c, eps=eps, chunk_size=chunk_size)
    return out[:, 0], AReLiTState(v_tilde=V[0], k_tilde=K[0], s=s[0], tick=tau[-1])
