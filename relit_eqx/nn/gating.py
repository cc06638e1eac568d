"""The GRU gate of GTrXL (Parisotto et al. 2020), used in place of residual connections."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._validation import check_positive

__all__ = ["GRUGate"]


class GRUGate(eqx.Module):
    """Gated residual connection: combines a stream `x` with a sublayer output `y`.

    $$r = σ(W_r y + U_r x), \\quad z = σ(W_z y + U_z x - b_g),$$
    $$h = \\tanh(W_g y + U_g (r ⊙ x)), \\quad \\text{out} = (1 - z) ⊙ x + z ⊙ h.$$

    With `bias` $b_g > 0$ the update gate starts nearly closed, so a freshly
    initialised layer is close to the identity map on `x`. Acts on single vectors;
    `jax.vmap` over time.
    """

    w_r: eqx.nn.Linear
    u_r: eqx.nn.Linear
    w_z: eqx.nn.Linear
    u_z: eqx.nn.Linear
    w_g: eqx.nn.Linear
    u_g: eqx.nn.Linear
    d_model: int = eqx.field(static=True)
    bias: float = eqx.field(static=True)

    def __init__(self, d_model: int, *, bias: float = 2.0, key: PRNGKeyArray):
        """**Arguments:**

        - `d_model`: width of both `x` and `y`.
        - `bias`: the gate bias $b_g$ subtracted inside the update gate.
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        check_positive(d_model=d_model)
        d_model = int(d_model)
        keys = jr.split(key, 6)

        def linear(k):
            return eqx.nn.Linear(d_model, d_model, use_bias=False, key=k)

        self.w_r, self.u_r, self.w_z, self.u_z, self.w_g, self.u_g = map(linear, keys)
        self.d_model = d_model
        self.bias = float(bias)

    def __call__(
        self, x: Float[Array, " d_model"], y: Float[Array, " d_model"]
    ) -> Float[Array, " d_model"]:
        """**Arguments:**

        - `x`: the residual stream (the gate's "state").
        - `y`: the sublayer output (the gate's "input").

        **Returns:**

        The gated combination, of shape `(d_model,)`.
        """
        r = jax.nn.sigmoid(self.w_r(y) + self.u_r(x))
        z = jax.nn.sigmoid(self.w_z(y) + self.u_z(x) - self.bias)
        h = jnp.tanh(self.w_g(y) + self.u_g(r * x))
        return (1 - z) * x + z * h
