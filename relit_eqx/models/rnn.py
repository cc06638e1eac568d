"""Recurrent baselines: stacked GRU and LSTM cells under the sequence-model contract."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray, PyTree

from .._validation import checked, positive
from .contract import SequenceModel, check_call, check_step, register_model

__all__ = ["GRU", "LSTM"]


class _StackedRNN(SequenceModel):
    # Shared by GRU and LSTM: `n_layers` cells, the first reading `d_in`, each next one
    # reading the hidden state of the one below; the output is the top hidden state.

    cells: eqx.AbstractVar[tuple[Callable[..., Any], ...]]

    @abc.abstractmethod
    def _hidden(self, cell_state: PyTree[Array]) -> Float[Array, " d_model"]:
        """The hidden vector (the layer's output) inside one cell's state."""

    def _step(self, x, reset, state):
        # `step` without the input checks (also the body of the scan in `__call__`).
        state = jax.tree.map(lambda s: jnp.where(reset, jnp.zeros_like(s), s), state)
        new_state = []
        h = x
        for cell, cell_state in zip(self.cells, state, strict=True):
            cell_state = cell(h, cell_state)
            h = self._hidden(cell_state)
            new_state.append(cell_state)
        return h, tuple(new_state)

    @checked(check_call)
    def __call__(
        self, xs: Float[ArrayLike, "T d_in"], resets: Bool[ArrayLike, " T"], state: PyTree[Array]
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """**Arguments:**

        - `xs`: inputs over `T` steps.
        - `resets`: `resets[t]` zeroes the state before `xs[t]` is absorbed.
        - `state`: the state before step 0.

        **Returns:**

        The top layer's hidden states `[T, d_model]` and the state after step `T - 1`
        (a `lax.scan` of `step`).
        """
        xs, resets = jnp.asarray(xs), jnp.asarray(resets)

        def body(carry, inputs):
            x, reset = inputs
            y, carry = self._step(x, reset, carry)
            return carry, y

        state, ys = jax.lax.scan(body, state, (xs, resets))
        return ys, state

    @checked(check_step)
    def step(
        self, x: Float[ArrayLike, " d_in"], reset: Bool[ArrayLike, ""], state: PyTree[Array]
    ) -> tuple[Float[Array, " d_model"], PyTree[Array]]:
        """One step: `x` is `[d_in]`, `reset` a scalar boolean; returns `([d_model], state)`."""
        return self._step(jnp.asarray(x), jnp.asarray(reset), state)


@register_model("gru", small=dict(d_model=16, n_layers=2))
class GRU(_StackedRNN):
    """Stacked GRU cells (`eqx.nn.GRUCell`). State: one hidden vector `[d_model]` per layer."""

    cells: tuple[eqx.nn.GRUCell, ...]
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    n_layers: int = eqx.field(static=True)

    @checked(positive("d_in", "d_model", "n_layers"))
    def __init__(self, d_in: int, *, d_model: int = 128, n_layers: int = 1, key: PRNGKeyArray):
        """**Arguments:**

        - `d_in`: width of the inputs.
        - `d_model`: hidden width of every layer, and of the outputs.
        - `n_layers`: number of stacked cells.
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        d_in, d_model, n_layers = int(d_in), int(d_model), int(n_layers)
        keys = jr.split(key, n_layers)
        self.cells = tuple(
            eqx.nn.GRUCell(d_in if i == 0 else d_model, d_model, key=k) for i, k in enumerate(keys)
        )
        self.d_in = d_in
        self.d_model = d_model
        self.n_layers = n_layers

    @checked()
    def init_state(self) -> tuple[Float[Array, " d_model"], ...]:
        """Zero hidden vectors, one per layer."""
        return tuple(jnp.zeros(self.d_model, jnp.float32) for _ in range(self.n_layers))

    @property
    def state_size(self) -> int:
        """Floats per sequence in the state: `n_layers·d_model`."""
        return self.n_layers * self.d_model

    def _hidden(self, cell_state):
        return cell_state


@register_model("lstm", small=dict(d_model=16, n_layers=2))
class LSTM(_StackedRNN):
    """Stacked LSTM cells (`eqx.nn.LSTMCell`). State: `(h, c)`, each `[d_model]`, per layer."""

    cells: tuple[eqx.nn.LSTMCell, ...]
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    n_layers: int = eqx.field(static=True)

    @checked(positive("d_in", "d_model", "n_layers"))
    def __init__(self, d_in: int, *, d_model: int = 128, n_layers: int = 1, key: PRNGKeyArray):
        """**Arguments:**

        - `d_in`: width of the inputs.
        - `d_model`: hidden width of every layer, and of the outputs.
        - `n_layers`: number of stacked cells.
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        d_in, d_model, n_layers = int(d_in), int(d_model), int(n_layers)
        keys = jr.split(key, n_layers)
        self.cells = tuple(
            eqx.nn.LSTMCell(d_in if i == 0 else d_model, d_model, key=k) for i, k in enumerate(keys)
        )
        self.d_in = d_in
        self.d_model = d_model
        self.n_layers = n_layers

    @checked()
    def init_state(self) -> tuple[tuple[Float[Array, " d_model"], Float[Array, " d_model"]], ...]:
        """Zero `(h, c)` pairs, one per layer."""
        zeros = jnp.zeros(self.d_model, jnp.float32)
        return tuple((zeros, zeros) for _ in range(self.n_layers))

    @property
    def state_size(self) -> int:
        """Floats per sequence in the state: `2·n_layers·d_model` (hidden and cell)."""
        return 2 * self.n_layers * self.d_model

    def _hidden(self, cell_state):
        return cell_state[0]
