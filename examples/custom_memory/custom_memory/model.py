"""`GatedLinearAttention`: a sequence model of the user's own, registered as `custom_gla`."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from relit_eqx.functional import ReLiTState, relit, relit_state_floats
from relit_eqx.kernels import get_kernel
from relit_eqx.models import SequenceModel, register_model

from . import kernel as _kernel  # noqa: F401  (registers "softplus")
from . import rule as _rule  # noqa: F401  (registers "gla")


@register_model("custom_gla", small=dict(d_model=16, d_key=4, d_value=4))
class GatedLinearAttention(SequenceModel):
    """One head of gated linear attention on projections of the input:
    `q, k = softplus(W_q x), softplus(W_k x)`, `v = W_v x`, `γ = σ(W_γ x)`, the `gla`
    rule over time, then `y = W_o out`.

    State: `ReLiTState(C [d_value, d_key], s [d_key])`.
    """

    query: eqx.nn.Linear
    key_proj: eqx.nn.Linear
    value: eqx.nn.Linear
    gate: eqx.nn.Linear
    out: eqx.nn.Linear
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    d_key: int = eqx.field(static=True)
    d_value: int = eqx.field(static=True)
    method: str = eqx.field(static=True)

    def __init__(
        self,
        d_in: int,
        *,
        d_model: int = 64,
        d_key: int = 16,
        d_value: int = 16,
        method: str = "scan",
        key: PRNGKeyArray,
    ):
        kq, kk, kv, kg, ko = jr.split(key, 5)
        self.query = eqx.nn.Linear(d_in, d_key, key=kq)
        self.key_proj = eqx.nn.Linear(d_in, d_key, key=kk)
        self.value = eqx.nn.Linear(d_in, d_value, key=kv)
        self.gate = eqx.nn.Linear(d_in, d_key, key=kg)
        self.out = eqx.nn.Linear(d_value, d_model, key=ko)
        self.d_in, self.d_model, self.d_key, self.d_value = d_in, d_model, d_key, d_value
        self.method = method

    def init_state(self) -> ReLiTState:
        return ReLiTState(C=jnp.zeros((self.d_value, self.d_key)), s=jnp.zeros((self.d_key,)))

    @property
    def state_size(self) -> int:
        return relit_state_floats(self.d_value, self.d_key)

    def _attend(self, xs, resets, state, method):
        phi = get_kernel("softplus")
        q = phi(jax.vmap(self.query)(xs))
        k = phi(jax.vmap(self.key_proj)(xs))
        v = jax.vmap(self.value)(xs)
        gamma = jax.nn.sigmoid(jax.vmap(self.gate)(xs))
        beta = jnp.ones_like(v)  # the gla rule ignores β
        out, state = relit(q, k, v, beta, gamma, resets, state, rule="gla", method=method)
        return jax.vmap(self.out)(out), state

    def __call__(
        self, xs: Float[Array, "T d_in"], resets: Bool[Array, " T"], state: ReLiTState
    ) -> tuple[Float[Array, "T d_model"], ReLiTState]:
        return self._attend(xs, resets, state, self.method)

    def step(
        self, x: Float[Array, " d_in"], reset: Bool[Array, ""], state: ReLiTState
    ) -> tuple[Float[Array, " d_model"], ReLiTState]:
        ys, state = self._attend(x[None], reset[None], state, "scan")
        return ys[0], state
