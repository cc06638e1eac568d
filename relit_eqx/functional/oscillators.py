"""Oscillator features `f(τ) ∈ R^R` of AReLiT and the modular step counter (the Mathematics page).

Two families, both periodic in the integer step counter `τ`, so the counter is kept
modulo the period `P` and never loses precision:

- `paper` (the authors' code): `f[j] = cos(ω_j τ)`, `ω = linspace(-π, π, r)`, `R = r`,
  normaliser `c = 2r`, period `P = 2(r-1)` (`2` for `r = 1`). For `r = 2` both rows are
  `(-1)^τ`, so `K_{il} = Σ_j f_i[j] f_l[j] = 2(-1)^{i-l}`: a model in its own right, not a
  convergent approximation of ReLiT.
- `fourier` (exact by construction): `f = [1, √2cos(2πjτ/r), √2sin(2πjτ/r) (j = 1..⌊(r-1)/2⌋),
  cos(πτ) if r even]`, `R = r`, `c = r`, `P = r`. Then `K_{il} = r·[i ≡ l (mod r)]`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

__all__ = [
    "OSCILLATORS",
    "features",
    "period",
    "normaliser",
    "check_oscillator",
    "ticks",
    "counter_features",
    "reduce_tick",
]

OSCILLATORS = ("paper", "fourier")
"""The oscillator families."""


def check_oscillator(r: object, oscillator: object) -> None:
    """Raise a named error for a bad `r` or `oscillator`."""
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
        raise TypeError(f"r must be an int; got {type(r).__name__}")
    if r < 1:
        raise ValueError(f"r must be >= 1; got r={r}")
    if oscillator not in OSCILLATORS:
        raise ValueError(f"unknown oscillator {oscillator!r}; choose one of {OSCILLATORS}")


def period(r: int, oscillator: str) -> int:
    """Period `P` of `f(τ)` in `τ`: `2(r-1)` (`2` if `r = 1`) for paper, `r` for fourier."""
    check_oscillator(r, oscillator)
    if oscillator == "paper":
        return 2 if r == 1 else 2 * (r - 1)
    return r


def normaliser(r: int, oscillator: str) -> float:
    """The constant `c` of the readout `C̃ φ(q) / (c·sᵀφ(q) + ε)`: `2r` (paper) or `r` (fourier)."""
    check_oscillator(r, oscillator)
    return float(2 * r if oscillator == "paper" else r)


def _table(r: int, oscillator: str) -> np.ndarray:
    """`f(τ)` for `τ = 0..P-1` as a float64 `[P, R]` table (angles formed from exact `τ`)."""
    tau = np.arange(period(r, oscillator), dtype=np.float64)[:, None]
    if oscillator == "paper":
        return np.cos(np.linspace(-np.pi, np.pi, r) * tau)
    rows = [np.ones_like(tau)]
    for j in range(1, (r - 1) // 2 + 1):
        angle = (2 * math.pi * j / r) * tau
        rows += [math.sqrt(2) * np.cos(angle), math.sqrt(2) * np.sin(angle)]
    if r % 2 == 0:
        rows.append(1.0 - 2.0 * np.mod(tau, 2))
    return np.concatenate(rows, axis=-1)


def features(
    tau: Int[ArrayLike, "*batch"], r: int, oscillator: str, dtype: Any = jnp.float32
) -> Float[Array, "*batch R"]:
    """Oscillator features `f(τ)` for integer counters `τ` (any shape).

    `f` is periodic with period `P`, so it is read from a `[P, R]` table computed once in
    float64 at the reduced counter `τ mod P`: angles stay exact, the sign row `cos(πτ)` is
    exactly `±1`, and no cosine is evaluated at run time (XLA would otherwise recompute it
    for every element of every array it is broadcast into).
    """
    P = period(r, oscillator)
    table = jnp.asarray(_table(r, oscillator), dtype=dtype)
    return table[jnp.mod(jnp.asarray(tau), P)]


def ticks(resets: Array, tick0: Array, P: int) -> Int[Array, " T"]:
    """Counters `τ_t mod P` for a sequence: `τ_t = 1` at a reset, else `τ_{t-1} + 1`.

    `tick0` is the counter of the last step before the sequence (0 for a fresh state).
    """
    T = resets.shape[0]
    idx = jnp.arange(T, dtype=jnp.int32)
    last = jax.lax.cummax(jnp.where(resets, idx, -1), axis=0)
    since_start = jnp.mod(jnp.mod(tick0, P) + jnp.mod(idx + 1, P), P)
    return jnp.where(last >= 0, jnp.mod(idx - last + 1, P), since_start).astype(jnp.int32)


def counter_features(
    resets: Array, tick0: Array, r: int, oscillator: str, dtype: Any
) -> tuple[Int[Array, " T"], Float[Array, "T R"]]:
    """Counters `τ_t mod P` of a sequence and their features `f(τ_t)`."""
    tau = ticks(resets, tick0, period(r, oscillator))
    return tau, features(tau, r, oscillator, dtype)


def reduce_tick(tick: Any, r: int, oscillator: str) -> Int[Array, "*batch"]:
    """A state's counter `tick` (any shape) reduced modulo the period `P`, as `int32`.

    A concrete counter (a Python or NumPy integer, or a JAX array outside `jit`) is
    reduced exactly, whatever its size (`2**40` included, which `int32` cannot hold);
    a negative one raises `ValueError`. A traced counter (inside `jit`, `vmap`, `grad`)
    cannot be inspected: it is reduced with `jnp.mod`, so it must already fit its dtype,
    and a negative value is taken modulo `P`.
    """
    P = period(r, oscillator)
    try:
        host = np.asarray(tick)
    except jax.errors.TracerArrayConversionError:
        return jnp.mod(tick, P).astype(jnp.int32)
    if host.dtype == object:  # Python ints too large for int64
        if not all(isinstance(t, (int, np.integer)) for t in host.flat):
            raise TypeError(f"state.tick must be an integer; got {tick!r}")
    elif not np.issubdtype(host.dtype, np.integer):
        raise TypeError(f"state.tick must be an integer; got dtype {host.dtype}")
    if np.any(host < 0):
        raise ValueError(f"state.tick must be >= 0 (steps since the last reset); got {tick!r}")
    return jnp.asarray(np.asarray(np.mod(host, P)).astype(np.int32))
