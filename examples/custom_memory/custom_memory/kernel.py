"""The `softplus` feature map, registered with `relit_eqx.kernels.register_kernel`."""

from __future__ import annotations

import jax

from relit_eqx.kernels import register_kernel

SOFTPLUS = register_kernel(
    "softplus",
    lambda x, p, eta: jax.nn.softplus(x),  # [..., d] -> [..., d], positive
    lambda d, eta: d,  # feature width n = d
)
