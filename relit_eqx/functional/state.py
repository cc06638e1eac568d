"""Recurrent states of the functional core (the API page), named after the paper's symbols."""

from __future__ import annotations

from typing import NamedTuple

from jaxtyping import Array, Float, Int

__all__ = ["ReLiTState", "AReLiTState", "relit_state_floats", "arelit_state_floats"]


class ReLiTState(NamedTuple):
    """ReLiT state of one head: `C: [d, n]`, `s: [n]` (the Mathematics page)."""

    C: Float[Array, "d n"]
    s: Float[Array, " n"]


class AReLiTState(NamedTuple):
    """AReLiT state of one head (the Mathematics page).

    `v_tilde: [R, d]`, `k_tilde: [R, n]`, `s: [n]`, and `tick: int32 []`, the step counter τ
    of the last absorbed step, kept modulo the oscillator family's period.
    """

    v_tilde: Float[Array, "R d"]
    k_tilde: Float[Array, "R n"]
    s: Float[Array, " n"]
    tick: Int[Array, ""]


def relit_state_floats(d: int, n: int, *, n_heads: int = 1, n_layers: int = 1) -> int:
    """Floats per sequence in ReLiT's state: `layers · heads · (d·n + n)`, `n = eta·d`."""
    return n_layers * n_heads * (d * n + n)


def arelit_state_floats(d: int, n: int, r: int, *, n_heads: int = 1, n_layers: int = 1) -> int:
    """Floats per sequence in AReLiT's state: `layers · heads · (r·d + r·n + n)`, `n = eta·d`.

    Both oscillator families keep `R = r` rows. The integer step counter (one per head) is
    not a float and is not counted.
    """
    return n_layers * n_heads * (r * d + r * n + n)
