"""Shared methods of the models that are an embedding plus a `Stack` of encoder blocks."""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array, Bool, Float, PyTree

from .contract import SequenceModel, check_sequence_inputs, check_state, check_step_inputs
from .stack import Stack


class StackedModel(SequenceModel):
    """A `SequenceModel` whose body is a `Stack`; subclasses only build it in `__init__`."""

    stack: eqx.AbstractVar[Stack]

    def init_state(self) -> tuple[PyTree[Array], ...]:
        """The zero state: one mixer state per layer."""
        return self.stack.init_state()

    @property
    def state_size(self) -> int:
        """Floats per sequence held in the recurrent state (all layers)."""
        return self.stack.state_size

    def __call__(
        self, xs: Float[Array, "T d_in"], resets: Bool[Array, " T"], state: PyTree[Array]
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """Training form. **Arguments:** `xs [T, d_in]`, `resets bool [T]` (`True` starts a
        new episode at that step), `state` from `init_state()` or a previous call.
        **Returns:** `(ys [T, d_model], final state)`."""
        check_sequence_inputs(self, xs, resets)
        check_state(self, state)
        return self.stack(xs, resets, state)

    def step(
        self, x: Float[Array, " d_in"], reset: Bool[Array, ""], state: PyTree[Array]
    ) -> tuple[Float[Array, " d_model"], PyTree[Array]]:
        """Inference form: one step. **Returns:** `(y [d_model], new state)`."""
        check_step_inputs(self, x, reset)
        check_state(self, state)
        return self.stack.step(x, reset, state)
