"""The GRU gate of GTrXL (Parisotto et al. 2020), used in place of residual connections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._validation import check_array, check_positive, checked
from .dense import Dense

__all__ = ["GRUGate"]


def _check_inputs(arguments: Mapping[str, Any]) -> None:
    size = ("d_model", arguments["self"].d_model)
    check_array("x", arguments["x"], (size,), "floating")
    check_array("y", arguments["y"], (size,), "floating")


class GRUGate(eqx.Module):
    """Gated residual connection: combines a stream `x` with a sublayer output `y`.

    $$r = σ(W_r y + U_r x), \\quad z = σ(W_z y + U_z x - b_g),$$
    $$h = \\tanh(W_g y + U_g (r ⊙ x)), \\quad \\text{out} = (1 - z) ⊙ x + z ⊙ h.$$

    With `bias` $b_g > 0$ the update gate starts nearly closed, so a freshly
    initialised layer is close to the identity map on `x`. Acts on single vectors;
    `jax.vmap` over time.
    """

    w: Dense
    u: Dense
    u_g: Dense
    d_model: int = eqx.field(static=True)
    bias: float = eqx.field(static=True)

    def __init__(
        self, d_model: int, *, bias: float = 2.0, orthogonal: bool = False, key: PRNGKeyArray
    ):
        """**Arguments:**

        - `d_model`: width of both `x` and `y`.
        - `bias`: the gate bias $b_g$ subtracted inside the update gate.
        - `orthogonal`: initialise each of the six matrices orthogonally with gain √2 (the
          authors' AGaLiTe code) instead of uniformly in `±1/√d_model`.
        - `key`: a `jax.random.PRNGKey` for the initialisation.

        The six matrices are held as three layers: `w = [W_r; W_z; W_g]` (one matmul
        for `y`), `u = [U_r; U_z]` (one matmul for `x`) and `u_g`.
        """
        check_positive(d_model=d_model)
        d_model = int(d_model)
        k_w, k_u, k_g = jr.split(key, 3)
        # Each gate's column block of the [d_model, k·d_model] weights has fan-in d_model,
        # so it is initialised as a separate d_model × d_model layer would be.
        if orthogonal:
            self.w = Dense.orthogonal_blocks(d_model, (d_model,) * 3, use_bias=False, key=k_w)
            self.u = Dense.orthogonal_blocks(d_model, (d_model,) * 2, use_bias=False, key=k_u)
            self.u_g = Dense.orthogonal(d_model, d_model, use_bias=False, key=k_g)
        else:
            self.w = Dense(d_model, 3 * d_model, use_bias=False, key=k_w)
            self.u = Dense(d_model, 2 * d_model, use_bias=False, key=k_u)
            self.u_g = Dense(d_model, d_model, use_bias=False, key=k_g)
        self.d_model = d_model
        self.bias = float(bias)

    @checked(_check_inputs)
    def __call__(
        self, x: Float[Array, " d_model"], y: Float[Array, " d_model"]
    ) -> Float[Array, " d_model"]:
        """**Arguments:**

        - `x`: the residual stream (the gate's "state").
        - `y`: the sublayer output (the gate's "input").

        **Returns:**

        The gated combination, of shape `(d_model,)`.
        """
        wr, wz, wg = jnp.split(self.w(y), 3)
        ur, uz = jnp.split(self.u(x), 2)
        r = jax.nn.sigmoid(wr + ur)
        z = jax.nn.sigmoid(wz + uz - self.bias)
        h = jnp.tanh(wg + self.u_g(r * x))
        return (1 - z) * x + z * h
