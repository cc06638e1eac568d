"""The interface of a sequence mixer: the attention slot of an encoder block.

A mixer maps layer-normed inputs `[T, d_model]` to outputs `[T, d_model]`, carrying a
recurrent state across calls. ReLiT/AReLiT attention, Transformer-XL attention with a
fixed memory, and anything a user adds all fit this slot. It has the same shape as the
model contract (the Concepts page): `__call__` over `T` steps equals `T` calls of `step`, and
`reset_t = True` zeroes the state before step `t` is absorbed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import numpy as np
from jaxtyping import Array, Bool, Float, PyTree

from .._validation import check_array

__all__ = ["SequenceMixer", "check_mixer_call", "check_mixer_step"]


def _check_layer_state(layer: Any, state: Any) -> None:
    from ..models.contract import check_state  # (models import nn: import at call time)

    check_state(layer, state)


def check_mixer_call(arguments: Mapping[str, Any]) -> None:
    """The checked boundary of a layer's `__call__(xs, resets, state)` (for
    `relit_eqx._validation.checked`): `xs [T, d_model]` floating, `resets bool [T]`, and a
    state shaped like the layer's `init_state()`."""
    layer, xs = arguments["self"], arguments["xs"]
    check_array("xs", xs, ("T", ("d_model", layer.d_model)), "floating")
    check_array("resets", arguments["resets"], (("T", np.shape(xs)[0]),), "bool")
    _check_layer_state(layer, arguments["state"])


def check_mixer_step(arguments: Mapping[str, Any]) -> None:
    """The checked boundary of a layer's `step(x, reset, state)`: `x [d_model]` floating,
    `reset` a boolean scalar, and a state shaped like the layer's `init_state()`."""
    layer = arguments["self"]
    check_array("x", arguments["x"], (("d_model", layer.d_model),), "floating")
    check_array("reset", arguments["reset"], (), "bool")
    _check_layer_state(layer, arguments["state"])


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
