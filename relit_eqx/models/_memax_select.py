"""memax's `Resettable` resetting by selection; imported only when a memax model is built.

Kept in a module of its own so that the subclass is defined once, by Python's import
system, without a cache of ours (memax is an optional dependency).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from memax.equinox import groups


class SelectResettable(groups.Resettable):
    """memax's `Resettable` with `where(start, h0, h)` for `h·(1 - start) + h0·start`."""

    def __call__(self, carry, input):
        states, prev_start = carry
        xs, start = input
        initial = self.algebra.initialize_carry(None)
        states = jax.tree.map(lambda h, h0: jnp.where(start, h0, h), states, initial)
        return self.algebra(states, xs), jnp.logical_or(start, prev_start)
