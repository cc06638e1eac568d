"""Shared methods of the models that are an embedding plus a `Stack` of encoder blocks."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, PyTree

from .._validation import checked
from .contract import SequenceModel, check_call, check_step
from .stack import Stack


class StackedModel(SequenceModel):
    """A `SequenceModel` whose body is a `Stack`; subclasses only build it in `__init__`."""

    stack: eqx.AbstractVar[Stack]

    @checked()
    def init_state(self) -> tuple[PyTree[Array], ...]:
        """The zero state: one mixer state per layer."""
        return self.stack.init_state()

    @property
    def state_size(self) -> int:
        """Floats per sequence held in the recurrent state (all layers)."""
        return self.stack.state_size

    @checked(check_call)
    def __call__(
        self, xs: Float[ArrayLike, "T d_in"], resets: Bool[ArrayLike, " T"], state: PyTree[Array]
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """Training form. **Arguments:** `xs [T, d_in]`, `resets bool [T]` (`True` starts a
        new episode at that step), `state` from `init_state()` or a previous call.
        **Returns:** `(ys [T, d_model], final state)`."""
        return self.stack(jnp.asarray(xs), jnp.asarray(resets), state)

    @checked(check_step)
    def step(
        self, x: Float[ArrayLike, " d_in"], reset: Bool[ArrayLike, ""], state: PyTree[Array]
    ) -> tuple[Float[Array, " d_model"], PyTree[Array]]:
        """Inference form: one step. **Returns:** `(y [d_model], new state)`."""
        return self.stack.step(jnp.asarray(x), jnp.asarray(reset), state)
