"""Input embedding followed by a stack of encoder blocks: the body of every transformer model."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from .._validation import check_positive
from ..nn.block import EncoderBlock
from ..nn.dense import Dense
from ..nn.mixer import SequenceMixer

__all__ = ["Stack"]


class Stack(eqx.Module):
    """`relu(Linear(x))` (or `Linear(x)`) to `d_model`, then one `EncoderBlock` per mixer
    (the Models page).

    The state is the tuple of the blocks' states, first layer first. Inputs are not
    checked here; the models wrapping a `Stack` check them.
    """

    embed: Dense
    blocks: tuple[EncoderBlock, ...]
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    embed_relu: bool = eqx.field(static=True)

    def __init__(
        self,
        d_in: int,
        mixers: Sequence[SequenceMixer],
        *,
        d_model: int,
        d_ffn: int,
        orthogonal: bool = False,
        embed_relu: bool = True,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `d_in`: width of the inputs.
        - `mixers`: one mixer per layer, each acting on width `d_model`.
        - `d_model`: width of the residual stream.
        - `d_ffn`: hidden width of each block's feed-forward network.
        - `orthogonal`: the authors' AGaLiTe initialisation: the embedding, gates and
          feed-forward layers orthogonal with gain √2 and zero biases (else uniform in
          `±1/√fan_in`, as `eqx.nn.Linear`).
        - `embed_relu`: apply `relu` to the embedding (the authors' AGaLiTe and GTrXL
          do; their GaLiTe, the paper's ReLiT, embeds linearly: `False`).
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        check_positive(d_in=d_in)
        mixers = tuple(mixers)
        if len(mixers) == 0:
            raise ValueError("mixers must hold at least one mixer")
        k_embed, *k_blocks = jr.split(key, len(mixers) + 1)
        self.embed = (Dense.orthogonal if orthogonal else Dense)(int(d_in), d_model, key=k_embed)
        self.blocks = tuple(
            EncoderBlock(m, d_model, d_ffn, orthogonal=orthogonal, key=k)
            for m, k in zip(mixers, k_blocks, strict=True)
        )
        self.d_in = int(d_in)
        self.d_model = self.blocks[0].d_model
        self.embed_relu = bool(embed_relu)

    def _embed(self, x: Array) -> Array:
        h = self.embed(x)
        return jax.nn.relu(h) if self.embed_relu else h

    def init_state(self) -> tuple[PyTree[Array], ...]:
        """The tuple of the blocks' zero states."""
        return tuple(block.init_state() for block in self.blocks)

    @property
    def state_size(self) -> int:
        """Floats held in the state: the sum over blocks."""
        return sum(block.state_size for block in self.blocks)

    def __call__(
        self,
        xs: Float[Array, "T d_in"],
        resets: Bool[Array, " T"],
        state: tuple[PyTree[Array], ...],
    ) -> tuple[Float[Array, "T d_model"], tuple[PyTree[Array], ...]]:
        """**Arguments:**

        - `xs`: inputs over `T` steps.
        - `resets`: `resets[t]` marks `xs[t]` as the first step of a new episode.
        - `state`: the blocks' states before step 0.

        **Returns:**

        The last block's outputs `[T, d_model]` and the blocks' states after step `T - 1`.
        """
        hs = self._embed(xs)
        new_state = []
        for block, block_state in zip(self.blocks, state, strict=True):
            hs, block_state = block(hs, resets, block_state)
            new_state.append(block_state)
        return hs, tuple(new_state)

    def step(
        self,
        x: Float[Array, " d_in"],
        reset: Bool[Array, ""],
        state: tuple[PyTree[Array], ...],
    ) -> tuple[Float[Array, " d_model"], tuple[PyTree[Array], ...]]:
        """One step of `__call__`: `x` is `[d_in]`, `reset` a scalar boolean."""
        h = self._embed(x)
        new_state = []
        for block, block_state in zip(self.blocks, state, strict=True):
            h, block_state = block.step(h, reset, block_state)
            new_state.append(block_state)
        return h, tuple(new_state)
