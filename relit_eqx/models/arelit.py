"""AReLiT: the GTrXL-ordered stack with AReLiT self-attention (SPEC §2, §3)."""

from __future__ import annotations

import equinox as eqx
import jax.random as jr
from jaxtyping import PRNGKeyArray

from ..nn.attention import AReLiTAttention, check_positive
from ._stacked import StackedModel
from .contract import register_model
from .stack import Stack

__all__ = ["AReLiT"]

_SMALL = dict(d_model=16, n_layers=2, n_heads=2, d_head=4, d_ffn=16, eta=2, r=2, chunk_size=4)


@register_model("arelit", small=_SMALL)
@register_model("arelit-fourier", small={**_SMALL, "oscillator": "fourier", "r": 3})
class AReLiT(StackedModel):
    """Approximate Recurrent Linear Transformer (AReLiT; AGaLiTe in the TMLR version).

    **Arguments:** as `ReLiT` (the update rule is the gated one), plus `r` (oscillator
    rows) and `oscillator` (`"paper"`, the authors' features, or `"fourier"`, exact for
    fewer than `r` steps). Defaults are the paper's settings.

    State per layer: `AReLiTState(v_tilde [H, r, d_head], k_tilde [H, r, n], s [H, n],
    tick [H])`: `r·(d_head + n) + n` floats per head instead of ReLiT's `d_head·n + n`.
    """

    stack: Stack
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)

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
        r: int = 2,
        oscillator: str = "paper",
        kernel: str = "pp_relu",
        method: str = "chunked",
        chunk_size: int = 64,
        key: PRNGKeyArray,
    ):
        check_positive(d_in=d_in, d_model=d_model, n_layers=n_layers, d_ffn=d_ffn)
        k_stack, *k_mix = jr.split(key, n_layers + 1)
        mixers = [
            AReLiTAttention(
                d_model,
                n_heads=n_heads,
                d_head=d_head,
                eta=eta,
                r=r,
                oscillator=oscillator,
                kernel=kernel,
                method=method,
                chunk_size=chunk_size,
                key=k,
            )  # fmt: skip
            for k in k_mix
        ]
        self.stack = Stack(d_in, mixers, d_model=d_model, d_ffn=d_ffn, key=k_stack)
        self.d_in, self.d_model = d_in, d_model
