"""AReLiT: the GTrXL-ordered stack with AReLiT self-attention (the Mathematics and Models pages)."""

from __future__ import annotations

import functools

import equinox as eqx
import jax.random as jr
from jaxtyping import PRNGKeyArray

from .._validation import check_positive, checked, positive
from ..nn.attention import AReLiTAttention
from ._stacked import StackedModel
from .contract import register_model
from .stack import Stack

__all__ = ["AReLiT"]

_SMALL = dict(d_model=16, n_layers=2, n_heads=2, d_head=4, d_ffn=16, eta=2, r=2, chunk_size=4)


@register_model("arelit", small=_SMALL)
class AReLiT(StackedModel):
    """Approximate Recurrent Linear Transformer (AReLiT; AGaLiTe in the TMLR version).

    **Arguments:** (defaults are the paper's settings)

    - `d_in`: width of the inputs.
    - `d_model`: width of the residual stream and of the outputs.
    - `n_layers`: number of encoder blocks.
    - `n_heads`, `d_head`: attention heads per layer and their width `d`.
    - `d_ffn`: hidden width of each block's feed-forward network.
    - `eta`: feature expansion; keys and queries have `n = eta·d` features.
    - `r`: oscillator rows `R` of the approximation (`r >= 1`).
    - `oscillator`: `"paper"` (the authors' `cos(ω_j τ)` features) or `"fourier"` (exact
      for fewer than `r` steps since a reset, convergent in `r`).
    - `kernel`: feature map, a name in `relit_eqx.kernels.KERNELS`.
    - `method`: evaluation form of the training pass: `"scan"` (the recurrence in a loop
      with a hand-written backward pass, `functional.adjoint.arelit_loop`; the fastest
      measured on CPU), `"associative"` or `"chunked"` (all equal to round-off; `step` is
      always the recurrence). On a GPU the parallel forms can be faster (the Performance
      page).
    - `chunk_size`: steps between the carries kept for the backward pass (scan) or per
      chunk (chunked).
    - `factored`: scan only: give the loop the outer-product features as their two
      factors (`functional.adjoint.arelit_loop_outer`); faster on one CPU core, slower on
      two (the Performance page). Off by default.
    - `authors_init`: start as the authors' AGaLiTe code does (embedding, gates and
      feed-forward layers orthogonal with gain √2, the `p`-projections initialised as a
      layer of their own); used by the paper's T-Maze sweep (`relit-eqx sweep --algo
      a2c`). Off by default: the `tmaze-arelit` PPO preset learns with the default and
      did not with this one (the Results page).
    - `key`: a `jax.random.PRNGKey` for the initialisation.

    State per layer: `AReLiTState(v_tilde [H, r, d_head], k_tilde [H, r, n], s [H, n],
    tick [H])`: `r·(d_head + n) + n` floats per head instead of ReLiT's `d_head·n + n`.
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
        r: int = 2,
        oscillator: str = "paper",
        kernel: str = "pp_relu",
        method: str = "scan",
        chunk_size: int = 16,
        factored: bool = False,
        authors_init: bool = False,
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
                factored=factored,
                authors_init=authors_init,
                key=k,
            )  # fmt: skip
            for k in k_mix
        ]
        self.stack = Stack(
            d_in, mixers, d_model=d_model, d_ffn=d_ffn, orthogonal=authors_init, key=k_stack
        )
        self.d_in, self.d_model = d_in, d_model


register_model("arelit-fourier", small={**_SMALL, "r": 3})(
    functools.partial(AReLiT, oscillator="fourier")
)
