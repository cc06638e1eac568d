"""Feature maps φ (kernels) applied to keys and queries, and their registry.

A kernel maps a raw projection `x: [..., d]` (and, for the learned outer-product maps,
a second projection `p: [..., eta]`) to non-negative features `[..., n]`. The functional
core (`relit_eqx.functional`) takes already-mapped features, so any kernel works with any
update rule and evaluation form. Registering a kernel (one `register_kernel` line) puts it
under the shared equivalence suite in `tests/test_forms.py` with no other edit.

| name | features | `n` |
|---|---|---|
| `elu+1` | `elu(x) + 1` (Katharopoulos et al. 2020) | `d` |
| `relu` | `relu(x)` | `d` |
| `dpfp` | deterministic parameter-free projection (Schlag et al. 2021), `nu = 1` | `2·d` |
| `pp_relu` | `vec(relu(p) ⊗ relu(x))`, the paper's learned outer-product map | `eta·d` |
| `pp_elu+1` | `vec((elu(p)+1) ⊗ (elu(x)+1))` | `eta·d` |

Outer-product features are p-major: feature `i_p·d + i_x` is `p[i_p]·x[i_x]`. The
expansion `eta` is the width of `p`: the authors' code calls it `nu` (`kernel: {name:
pp_relu, nu: 2}` in their ReLiT configuration is `kernel="pp_relu", eta=2` here), and
lays the features out x-major, a permutation that changes no model output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._validation import check_array, checked

__all__ = ["Kernel", "KERNELS", "register_kernel", "get_kernel", "vec_outer"]


def _check_feature_args(arguments: Mapping[str, Any]) -> None:
    # The checked boundary of a feature map: one-line errors naming the argument.
    kernel, x, p = arguments["self"], arguments["x"], arguments["p"]
    check_array("x", x, ("d",), "floating", batch=True)
    if kernel.uses_p and p is None:
        raise ValueError(f"kernel {kernel.name!r} needs the projection p")
    if not kernel.uses_p and p is not None:
        raise ValueError(f"kernel {kernel.name!r} takes no projection p")
    if p is not None:
        check_array("p", p, (*np.shape(x)[:-1], "eta"), "floating")


class Kernel(eqx.Module):
    """A registered feature map.

    **Fields:**

    - `name`: registry key.
    - `uses_p`: whether the map takes the second projection `p: [..., eta]`.
    - `fn`: `fn(x, p, eta) -> features`.
    - `dim`: `dim(d, eta) -> n`, the feature width.
    - `factors`: for an outer-product map, `factors(x, p) -> (left [..., eta], right
      [..., d])` with `fn(x, p, eta) = vec(left ⊗ right)`; else `None`.
    """

    name: str = eqx.field(static=True)
    uses_p: bool = eqx.field(static=True)
    fn: Callable[[Array, Array | None, int], Array] = eqx.field(static=True)
    dim: Callable[[int, int], int] = eqx.field(static=True)
    factors: Callable[[Array, Array], tuple[Array, Array]] | None = eqx.field(
        static=True, default=None
    )

    def feature_dim(self, d: int, eta: int) -> int:
        """Width `n` of the features for raw width `d` and expansion `eta`."""
        return self.dim(d, eta)

    @checked(_check_feature_args)
    def __call__(
        self, x: Float[ArrayLike, "*batch d"], p: Float[ArrayLike, "*batch eta"] | None = None
    ) -> Float[Array, "*batch n"]:
        """Map raw projections to features.

        **Arguments:**

        - `x`: raw key or query projection, `[..., d]`.
        - `p`: the second projection `[..., eta]`; required iff `uses_p`.

        **Returns:** features `[..., n]`.
        """
        x = jnp.asarray(x)
        p = None if p is None else jnp.asarray(p)
        eta = 1 if p is None else p.shape[-1]
        return self.fn(x, p, eta)

    @checked(_check_feature_args)
    def outer_factors(
        self, x: Float[ArrayLike, "*batch d"], p: Float[ArrayLike, "*batch eta"] | None = None
    ) -> tuple[Float[Array, "*batch e"], Float[Array, "*batch m"]]:
        """The features as a pair `(left, right)` with `self(x, p) = vec(left ⊗ right)`:
        the kernel's own `factors` if it has them, else `(ones [..., 1], self(x, p))`.
        AReLiT's training loop takes features in this form (`arelit_loop_outer`)."""
        if self.factors is None or p is None:
            full = self(x, p)
            return jnp.ones((*full.shape[:-1], 1), full.dtype), full
        return self.factors(jnp.asarray(x), jnp.asarray(p))


KERNELS: dict[str, Kernel] = {}
"""The registered feature maps by name: `elu+1`, `relu`, `dpfp`, `pp_relu`, `pp_elu+1`."""


def register_kernel(
    name: str,
    fn: Callable[[Array, Array | None, int], Array],
    dim: Callable[[int, int], int],
    *,
    uses_p: bool = False,
    factors: Callable[[Array, Array], tuple[Array, Array]] | None = None,
) -> Kernel:
    """Register a feature map under `name` and return it.

    **Arguments:**

    - `name`: registry key (`ValueError` if taken).
    - `fn`: `fn(x, p, eta) -> features`, mapping `x: [..., d]` (and `p: [..., eta]` when
      `uses_p`, else `None`) to `[..., n]`. Features should be non-negative, so that the
      normaliser `sᵀφ(q)` stays positive.
    - `dim`: `dim(d, eta) -> n`, the feature width.
    - `uses_p`: whether the map takes the second projection `p`.
    - `factors`: optional, for an outer-product map (`uses_p`): `factors(x, p) ->
      (left, right)` with `fn(x, p, eta) = vec(left ⊗ right)`, `left: [..., eta]`; the
      shared kernel tests check that identity.
    """
    if name in KERNELS:
        raise ValueError(f"kernel {name!r} is already registered")
    if factors is not None and not uses_p:
        raise ValueError(f"kernel {name!r}: factors needs uses_p=True (the left factor is p's)")
    KERNELS[name] = Kernel(name=name, uses_p=uses_p, fn=fn, dim=dim, factors=factors)
    return KERNELS[name]


def get_kernel(name: str) -> Kernel:
    """The kernel registered under `name`; `ValueError` listing the choices otherwise."""
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(
            f"unknown kernel {name!r}; registered kernels: {sorted(KERNELS)}"
        ) from None


def _elu1(x: Array) -> Array:
    return jax.nn.elu(x) + 1.0


def vec_outer(p: Float[Array, "... e"], x: Float[Array, "... m"]) -> Float[Array, "... n"]:
    """`vec(p ⊗ x)` over any leading axes, p-major: feature `i_p·m + i_x` is
    `p[i_p]·x[i_x]`, the layout of the outer-product kernels (`n = e·m`)."""
    out = p[..., :, None] * x[..., None, :]
    return out.reshape(*out.shape[:-2], -1)


def _pp_relu(x: Array, p: Array) -> tuple[Array, Array]:
    return jax.nn.relu(p), jax.nn.relu(x)


def _pp_elu1(x: Array, p: Array) -> tuple[Array, Array]:
    return _elu1(p), _elu1(x)


def _of_factors(
    factors: Callable[[Array, Array], tuple[Array, Array]],
) -> Callable[[Array, Array | None, int], Array]:
    """The feature map `vec(left ⊗ right)` of an outer-product map's `factors`."""
    return lambda x, p, eta: vec_outer(*factors(x, p))  # type: ignore[arg-type]


def _dpfp(x: Array, p: Array | None, eta: int) -> Array:
    # Schlag et al. 2021, DPFP with nu = 1: r = [relu(x), relu(-x)], features r_i · r_{i+1}.
    r = jnp.concatenate([jax.nn.relu(x), jax.nn.relu(-x)], axis=-1)
    return r * jnp.roll(r, -1, axis=-1)


register_kernel("elu+1", lambda x, p, eta: _elu1(x), lambda d, eta: d)
register_kernel("relu", lambda x, p, eta: jax.nn.relu(x), lambda d, eta: d)
register_kernel("dpfp", _dpfp, lambda d, eta: 2 * d)
register_kernel(
    "pp_relu", _of_factors(_pp_relu), lambda d, eta: eta * d, uses_p=True, factors=_pp_relu
)
register_kernel(
    "pp_elu+1", _of_factors(_pp_elu1), lambda d, eta: eta * d, uses_p=True, factors=_pp_elu1
)
