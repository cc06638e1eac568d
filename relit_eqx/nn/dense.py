"""The dense layer of every model and head: `y = x W + b` with `W` stored `[d_in, d_out]`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._validation import check_array, check_positive, checked

__all__ = ["Dense"]


def _check_input(arguments: Mapping[str, Any]) -> None:
    layer = arguments["self"]
    check_array("x", arguments["x"], (("d_in", layer.d_in),), "floating", batch=True)


class Dense(eqx.Module):
    """A dense layer applied over any leading axes: `y = x W + b`.

    The weight is stored `[d_in, d_out]` (Flax's layout, the transpose of
    `eqx.nn.Linear`'s), so that sequences `[..., d_in]` (token axes leading, as the
    models keep them) meet it in a plain matrix product. Measured on CPU at the paper's
    size: `eqx.nn.Linear`'s `W x` under `vmap` produced feature-major products whose
    transposes XLA fused into, and recomputed in, the gradient chains of the GRU gates and
    layer norms (`jit(grad)` of AReLiT and GTrXL 1.7× and 2.0× slower, T = 128, batch
    16); `x Wᵀ` with the `[d_out, d_in]` weight fixed that but transposed the weights at
    every inference step (AReLiT at batch 1: 1.6 → 2.5 ms). Stored `[d_in, d_out]`,
    neither transpose happens.

    **Arguments:**

    - `d_in`, `d_out`: input and output widths.
    - `use_bias`: whether to add a bias.
    - `key`: initialisation as `eqx.nn.Linear` (uniform in `±1/√d_in`, bias too).
    """

    weight: Float[Array, "d_in d_out"]
    bias: Float[Array, " d_out"] | None

    def __init__(self, d_in: int, d_out: int, *, use_bias: bool = True, key: PRNGKeyArray):
        check_positive(d_in=d_in, d_out=d_out)
        linear = eqx.nn.Linear(d_in, d_out, use_bias=use_bias, key=key)
        self.weight = linear.weight.T
        self.bias = linear.bias

    @classmethod
    def orthogonal(
        cls,
        d_in: int,
        d_out: int,
        *,
        key: PRNGKeyArray,
        gain: float = math.sqrt(2),
        use_bias: bool = True,
    ) -> Dense:
        """A layer with an orthogonal weight scaled by `gain` and a zero bias."""
        layer = cls(d_in, d_out, use_bias=use_bias, key=key)
        w = jax.nn.initializers.orthogonal(scale=gain)(key, (d_out, d_in), jnp.float32)
        layer = eqx.tree_at(lambda m: m.weight, layer, w.T)
        if use_bias:
            layer = eqx.tree_at(lambda m: m.bias, layer, jnp.zeros((d_out,), jnp.float32))
        return layer

    @classmethod
    def orthogonal_blocks(
        cls,
        d_in: int,
        widths: tuple[int, ...],
        *,
        key: PRNGKeyArray,
        gain: float = math.sqrt(2),
        use_bias: bool = True,
    ) -> Dense:
        """One layer whose output columns are the blocks `widths`, each initialised as
        a separate orthogonal layer `Dense.orthogonal(d_in, w)` (zero bias): the weights
        of several layers fused into one matrix product."""
        keys = jax.random.split(key, len(widths))
        parts = [
            cls.orthogonal(d_in, w, key=k, gain=gain).weight
            for w, k in zip(widths, keys, strict=True)
        ]
        layer = cls(d_in, sum(widths), use_bias=use_bias, key=key)
        layer = eqx.tree_at(lambda m: m.weight, layer, jnp.concatenate(parts, axis=1))
        if use_bias:
            layer = eqx.tree_at(lambda m: m.bias, layer, jnp.zeros((sum(widths),), jnp.float32))
        return layer

    @property
    def d_in(self) -> int:
        return self.weight.shape[0]

    @property
    def d_out(self) -> int:
        return self.weight.shape[1]

    @checked(_check_input)
    def __call__(self, x: Float[ArrayLike, "*batch d_in"]) -> Float[Array, "*batch d_out"]:
        """`x W + b` over the leading axes of `x`."""
        y = jnp.asarray(x) @ self.weight
        # The bias as [1, ..., 1, d_out]: same rank as y (no implicit rank promotion).
        return y if self.bias is None else y + self.bias.reshape((1,) * (y.ndim - 1) + (-1,))
