"""The interface of a sequence mixer: the attention slot of an encoder block.

A mixer maps layer-normed inputs `[T, d_model]` to outputs `[T, d_model]`, carrying a
recurrent state across calls. ReLiT/AReLiT attention, Transformer-XL attention with a
fixed memory, and anything a user adds all fit this slot. It has the same shape as the
model contract (the Concepts page): `__call__` over `T` steps equals `T` calls of `step`, and
`reset_t = True` zeroes the state before step `t` is absorbed.
"""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Bool, Float, PyTree

__all__ = ["SequenceMixer"]


class SequenceMixer(eqx.Module):
    """Abstract attention slot of an encoder block."""

    @abc.abstractmethod
    def init_state(self) -> PyTree[Array]:
        """Zero state of fixed shape."""

    @abc.abstractmethod
    def __call__(
        self, xs: Float[Array, "T d_model"], resets: Bool[Array, " T"], state: PyTree[Array]
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """Mix a sequence; returns outputs and the final state."""

    @abc.abstractmethod
    def step(
        self, x: Float[Array, " d_model"], reset: Bool[Array, ""], state: PyTree[Array]
    ) -> tuple[Float[Array, " d_model"], PyTree[Array]]:
        """Mix one step."""

    @property
    @abc.abstractmethod
    def state_size(self) -> int:
        """Floats held in the state."""
