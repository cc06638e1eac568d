"""GTrXL (Parisotto et al. 2020): gated Transformer-XL layers with a fixed-size memory."""

from __future__ import annotations

import equinox as eqx
import jax.random as jr
from jaxtyping import PRNGKeyArray

from .._validation import check_positive, checked, positive
from ..nn.xl_attention import XLAttention
from ._stacked import StackedModel
from .contract import register_model
from .stack import Stack

__all__ = ["GTrXL"]


@register_model(
    "gtrxl",
    small=dict(d_model=16, n_layers=2, n_heads=2, d_head=8, d_ffn=16, memory_length=3),
)
class GTrXL(StackedModel):
    """The GTrXL baseline: an input embedding and `n_layers` gated blocks of `XLAttention`.

    Each layer caches the keys and values of its last `memory_length` (`M`) inputs, so a
    query at step `t` of layer `l` sees that layer's inputs at steps `t - M, ..., t` after
    the last reset; the model's output at `t` depends on at most the last
    `n_layers·M + 1` inputs.

    State: one `XLMemory` per layer (cached keys and values `[M, n_heads, d_head]` each,
    a validity mask `[M]` and the ring buffer's next slot). `state_size` counts the
    cached keys and values, `2·n_layers·M·n_heads·d_head` floats; the masks and slot
    indices (`M` booleans and one integer per layer) are not counted.
    """

    stack: Stack
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    n_layers: int = eqx.field(static=True)
    memory_length: int = eqx.field(static=True)

    @checked(positive("d_in", "d_model", "n_layers", "n_heads", "d_head", "d_ffn", "memory_length"))
    def __init__(
        self,
        d_in: int,
        *,
        d_model: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        d_head: int = 64,
        d_ffn: int = 128,
        memory_length: int = 128,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `d_in`: width of the inputs.
        - `d_model`: width of the residual stream and of the outputs.
        - `n_layers`: number of encoder blocks.
        - `n_heads`: attention heads per layer.
        - `d_head`: width of each head.
        - `d_ffn`: hidden width of each block's feed-forward network.
        - `memory_length`: `M`, the past steps each layer's attention can see.
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        check_positive(
            d_in=d_in,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            d_head=d_head,
            d_ffn=d_ffn,
            memory_length=memory_length,
        )
        k_stack, *k_mixers = jr.split(key, int(n_layers) + 1)
        mixers = [
            XLAttention(d_model, n_heads=n_heads, d_head=d_head, memory_length=memory_length, key=k)
            for k in k_mixers
        ]
        self.stack = Stack(d_in, mixers, d_model=d_model, d_ffn=d_ffn, key=k_stack)
        self.d_in = int(d_in)
        self.d_model = int(d_model)
        self.n_layers = int(n_layers)
        self.memory_length = int(memory_length)
