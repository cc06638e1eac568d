"""The encoder block in the GTrXL ordering (the Models page), around any sequence mixer."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from .._validation import check_positive, checked
from .dense import Dense
from .gating import GRUGate
from .mixer import SequenceMixer, check_mixer_call, check_mixer_step

__all__ = ["EncoderBlock"]


class EncoderBlock(eqx.Module):
    """One encoder layer with identity-map reordering and GRU gates (Parisotto et al. 2020).

    $$y = \\mathrm{relu}(\\mathrm{mixer}(\\mathrm{LN}_1(x))), \\quad x_1 = g_1(x, y),$$
    $$z = \\mathrm{relu}(D_2(\\mathrm{relu}(D_1(\\mathrm{LN}_2(x_1))))), \\quad
    \\text{out} = g_2(x_1, z).$$

    Everything but the mixer acts position-wise; the block's recurrent state is the
    mixer's.
    """

    mixer: SequenceMixer
    norm1: eqx.nn.LayerNorm
    gate1: GRUGate
    norm2: eqx.nn.LayerNorm
    dense1: Dense
    dense2: Dense
    gate2: GRUGate
    d_model: int = eqx.field(static=True)
    d_ffn: int = eqx.field(static=True)

    def __init__(
        self,
        mixer: SequenceMixer,
        d_model: int,
        d_ffn: int,
        *,
        orthogonal: bool = False,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `mixer`: the attention slot, mapping `[T, d_model]` to `[T, d_model]`.
        - `d_model`: width of the residual stream.
        - `d_ffn`: hidden width of the position-wise feed-forward network.
        - `orthogonal`: initialise the gates and the feed-forward layers orthogonally with
          gain √2 and zero biases (the authors' AGaLiTe code) instead of uniformly in
          `±1/√fan_in`.
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        if not isinstance(mixer, SequenceMixer):
            raise TypeError(f"mixer must be a SequenceMixer; got {type(mixer).__name__}")
        check_positive(d_model=d_model, d_ffn=d_ffn)
        d_model, d_ffn = int(d_model), int(d_ffn)
        k_gate1, k_dense1, k_dense2, k_gate2 = jr.split(key, 4)
        self.mixer = mixer
        self.norm1 = eqx.nn.LayerNorm(d_model)
        dense = Dense.orthogonal if orthogonal else Dense
        self.gate1 = GRUGate(d_model, orthogonal=orthogonal, key=k_gate1)
        self.norm2 = eqx.nn.LayerNorm(d_model)
        self.dense1 = dense(d_model, d_ffn, key=k_dense1)
        self.dense2 = dense(d_ffn, d_model, key=k_dense2)
        self.gate2 = GRUGate(d_model, orthogonal=orthogonal, key=k_gate2)
        self.d_model = d_model
        self.d_ffn = d_ffn

    def init_state(self) -> PyTree[Array]:
        """The mixer's zero state."""
        return self.mixer.init_state()

    @property
    def state_size(self) -> int:
        """Floats held in the state (the mixer's)."""
        return self.mixer.state_size

    def _after_mixer(
        self, x: Float[Array, " d_model"], y: Float[Array, " d_model"]
    ) -> Float[Array, " d_model"]:
        # Position-wise remainder of the block, given the mixer output `y` at `x`.
        x1 = self.gate1(x, jax.nn.relu(y))
        z = jax.nn.relu(self.dense2(jax.nn.relu(self.dense1(self.norm2(x1)))))
        return self.gate2(x1, z)

    @checked(check_mixer_call)
    def __call__(
        self, xs: Float[Array, "T d_model"], resets: Bool[Array, " T"], state: PyTree[Array]
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """**Arguments:**

        - `xs`: the residual stream over `T` steps.
        - `resets`: `resets[t]` marks `xs[t]` as the first step of a new episode.
        - `state`: the mixer state before step 0.

        **Returns:**

        The block outputs `[T, d_model]` and the mixer state after step `T - 1`.
        """
        ys, state = self.mixer(jax.vmap(self.norm1)(xs), resets, state)
        return jax.vmap(self._after_mixer)(xs, ys), state

    @checked(check_mixer_step)
    def step(
        self, x: Float[Array, " d_model"], reset: Bool[Array, ""], state: PyTree[Array]
    ) -> tuple[Float[Array, " d_model"], PyTree[Array]]:
        """One step of `__call__`: `x` is `[d_model]`, `reset` a scalar boolean."""
        y, state = self.mixer.step(self.norm1(x), reset, state)
        return self._after_mixer(x, y), state
