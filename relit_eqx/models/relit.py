"""ReLiT: the GTrXL-ordered stack with ReLiT self-attention (the Mathematics and Models pages)."""

from __future__ import annotations

import equinox as eqx
import jax.random as jr
from jaxtyping import PRNGKeyArray

from .._validation import check_positive, checked, positive
from ..nn.attention import ReLiTAttention
from ._stacked import StackedModel
from .contract import register_model
from .stack import Stack

__all__ = ["ReLiT"]

_SMALL = dict(d_model=16, n_layers=2, n_heads=2, d_head=4, d_ffn=16, eta=2, chunk_size=4)


@register_model("relit", small=_SMALL)
class ReLiT(StackedModel):
    """Recurrent Linear Transformer (ReLiT; GaLiTe in the TMLR version).

    **Arguments:** (defaults are the paper's settings)

    - `d_in`: width of the inputs.
    - `d_model`: width of the residual stream and of the outputs.
    - `n_layers`: number of encoder blocks.
    - `n_heads`, `d_head`: attention heads per layer and their width `d`.
    - `d_ffn`: hidden width of each block's feed-forward network.
    - `eta`: feature expansion; keys and queries have `n = eta·d` features.
    - `kernel`: feature map, a name in `relit_eqx.kernels.KERNELS`.
    - `update_rule`: a name in `relit_eqx.update_rules.RULES`.
    - `method`: evaluation form of the training pass: `"scan"` (`step` in a loop,
      rematerialised every `chunk_size` steps), `"associative"` or `"chunked"` (all
      equal to round-off; `step` is always the recurrence). `"chunked"` is the fastest
      measured on CPU for ReLiT (its per-step state is `d×n` per head).
    - `chunk_size`: steps per chunk (chunked) or per rematerialised segment (scan); 8
      was the fastest chunk measured on CPU at T = 128 (13% faster than 16, 4 slower).
    - `embed_relu`: `relu` after the input embedding, as in every model of ours and
      the authors' AGaLiTe; the authors' GaLiTe (their T-Maze ReLiT) embeds linearly,
      `embed_relu=False` (`rl.presets.PAPER_TMAZE_SIZES`).
    - `key`: a `jax.random.PRNGKey` for the initialisation.

    State per layer: `ReLiTState(C [H, d_head, n], s [H, n])`, `n = eta·d_head` for the
    outer-product kernels.
    """

    stack: Stack
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)

    @checked(positive("d_in", "d_model", "n_layers", "d_ffn"))
    def __init__(
        self,
        d_in: int,
        *,
        d_model: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        d_head: int = 64,
        d_ffn: int = 128,
        eta: int = 4,
        kernel: str = "pp_relu",
        update_rule: str = "gated",
        method: str = "chunked",
        chunk_size: int = 8,
        embed_relu: bool = True,
        key: PRNGKeyArray,
    ):
        check_positive(d_in=d_in, d_model=d_model, n_layers=n_layers, d_ffn=d_ffn)
        k_stack, *k_mix = jr.split(key, n_layers + 1)
        mixers = [
            ReLiTAttention(
                d_model,
                n_heads=n_heads,
                d_head=d_head,
                eta=eta,
                kernel=kernel,
                update_rule=update_rule,
                method=method,
                chunk_size=chunk_size,
                key=k,
            )  # fmt: skip
            for k in k_mix
        ]
        self.stack = Stack(
            d_in, mixers, d_model=d_model, d_ffn=d_ffn, embed_relu=embed_relu, key=k_stack
        )
        self.d_in, self.d_model = d_in, d_model
