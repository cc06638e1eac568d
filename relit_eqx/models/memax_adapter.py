"""memax's Equinox memory models under the sequence-model contract (the Models page).

[memax](https://github.com/smorad/memax) builds residual stacks of memory layers
(`memax.equinox.train_utils.get_residual_memory_model`): linear-recurrent units, state-space
models, fast-weight and delta-rule memories, windowed attention and classic RNN cells, each
with a start flag per step. `MemaxModel` wraps one such stack as a `SequenceModel`, registered
as `memax-<name>` (e.g. `memax-lru`), so a memax model goes wherever a model name does
(`relit-eqx train --model.name memax-lru`, `bench`, `sweep`).

The wrapper maps the two interfaces onto each other:

- memax's start flag is our reset flag (`start_t = True` zeroes the state before `x_t`);
- the state is memax's carry (`initialize_carry()`), one `(layer_state, start_seen)` pair per
  layer, with every complex leaf stored as float32 `[..., 2]` (real, imaginary), so the state
  is a PyTree of float32, int32 and bool arrays;
- memax resets by `state·(1 - start) + h0·start`, which keeps a NaN or an infinity of the
  old state (`NaN·0 = NaN`); the wrapper swaps each layer's reset for a selection
  (`where(start, h0, state)`), so after a reset every form equals a fresh start whatever
  came before;
- memax's code is written for JAX's default promotion rules: it runs inside
  `jax.numpy_dtype_promotion("standard")` and `jax.numpy_rank_promotion("allow")`.

memax is optional: `pip install 'relit_eqx[memax]'`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from .._validation import check_positive, checked
from .contract import (
    SequenceModel,
    check_call,
    check_sequence_inputs,
    check_state,
    check_step,
    check_step_inputs,
    register_model,
)

__all__ = ["MemaxModel", "MEMAX_MODELS"]

MEMAX_MODELS: dict[str, str] = {
    "lru": "LRU",
    "ffm": "FFM",
    "s6": "S6",
    "gdn": "GDN",
    "deltanet": "DeltaNet",
    "deltaproduct": "DeltaProduct",
    "fart": "FART",
    "fwp": "FWP",
    "linearrnn": "LinearRNN",
    "attention": "Attention",
    "gru": "GRU",
    "lstm": "LSTM",
    "mgu": "MGU",
}
"""Registered as `memax-<key>`: memax's name of each wrapped model (`get_residual_memory_model`).

`lru` Linear Recurrent Unit, `ffm` Fast and Forgetful Memory, `s6` Mamba's selective
state-space layer, `gdn` Gated DeltaNet, `deltanet` DeltaNet, `deltaproduct` DeltaProduct
(rank 4), `fart` linear attention (Fast AutoRegressive Transformer), `fwp` fast-weight
programmer, `linearrnn` a diagonal linear RNN, `attention` softmax attention over a sliding
window of 20 steps, `gru`/`lstm`/`mgu` classic gated cells (sequential scan).
"""


def _require_memax() -> Any:
    try:
        from memax.equinox import groups, train_utils
    except ImportError as err:
        raise ImportError(
            "memax models need memax: pip install 'relit_eqx[memax]' (memax[equinox])"
        ) from err
    return groups, train_utils


@contextlib.contextmanager
def _memax_rules() -> Iterator[None]:
    # memax relies on JAX's default promotion (int/float mixes, broadcasting of lower ranks).
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


def _select_resettable() -> type:
    """A subclass of memax's `Resettable` that resets by selection rather than by product."""
    _require_memax()
    from ._memax_select import SelectResettable

    return SelectResettable


def _to_ours(tree: PyTree[Array]) -> PyTree[Array]:
    # complex leaves as float32 [..., 2] (real, imaginary)
    return jax.tree.map(
        lambda x: (
            jnp.stack([jnp.real(x), jnp.imag(x)], -1).astype(jnp.float32)
            if jnp.iscomplexobj(x)
            else x
        ),
        tree,
    )


def _to_memax(tree: PyTree[Array], complex_leaves: tuple[bool, ...]) -> PyTree[Array]:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    leaves = [
        jax.lax.complex(x[..., 0], x[..., 1]) if c else x
        for x, c in zip(leaves, complex_leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


class MemaxModel(SequenceModel):
    """One of memax's residual memory stacks (`memax-<name>`), as a `SequenceModel`.

    memax's stack: `Linear(d_in → d_model)`, then per layer the memory layer followed by
    `Linear`, `LayerNorm` (no affine) and leaky ReLU, then `Linear(d_model → d_model)`.
    State: memax's carry per layer (complex leaves as float32 `[..., 2]`), plus the layer's
    bool "a start was seen" flag; `state_size` counts its floats.
    """

    memax: eqx.Module
    name: str = eqx.field(static=True)
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    n_layers: int = eqx.field(static=True)
    complex_leaves: tuple[bool, ...] = eqx.field(static=True)

    def __init__(
        self,
        name: str,
        d_in: int,
        *,
        d_model: int = 64,
        n_layers: int = 2,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `name`: a key of `MEMAX_MODELS` (e.g. `"lru"`) or memax's own name (`"LRU"`).
        - `d_in`: width of the inputs.
        - `d_model`: memax's `hidden` (width of every layer) and `output` width.
        - `n_layers`: memax's `num_layers`.
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        check_positive(d_in=d_in, d_model=d_model, n_layers=n_layers)
        memax_name = MEMAX_MODELS.get(name, name)
        if memax_name not in MEMAX_MODELS.values():
            raise ValueError(
                f"name: unknown memax model {name!r}; choose from {sorted(MEMAX_MODELS)}"
            )
        if memax_name == "FFM" and d_model < 4:
            raise ValueError(
                f"d_model must be at least 4 for FFM (context d_model // 4); got {d_model}"
            )
        _, train_utils = _require_memax()
        d_in, d_model, n_layers = int(d_in), int(d_model), int(n_layers)
        with _memax_rules():
            model = train_utils.get_residual_memory_model(
                memax_name, d_in, d_model, d_model, n_layers, key=key
            )
            resettable = _select_resettable()
            model = eqx.tree_at(
                lambda m: tuple(layer.algebra for layer in m.layers),
                model,
                replace=tuple(resettable(layer.algebra.algebra) for layer in model.layers),
            )
            carry = jax.eval_shape(model.initialize_carry)
        self.memax = model
        self.name = memax_name
        self.d_in = d_in
        self.d_model = d_model
        self.n_layers = n_layers
        self.complex_leaves = tuple(
            bool(jnp.issubdtype(x.dtype, jnp.complexfloating)) for x in jax.tree.leaves(carry)
        )

    def init_state(self) -> PyTree[Array]:
        """memax's initial carry (`initialize_carry()`), complex leaves as float32 `[..., 2]`."""
        with _memax_rules():
            return _to_ours(self.memax.initialize_carry())  # type: ignore[attr-defined]

    @property
    def state_size(self) -> int:
        """Floats per sequence in the state (a complex number counts as two)."""
        leaves = jax.tree.leaves(jax.eval_shape(self.init_state))
        return int(sum(np.prod(x.shape) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)))

    def _run(self, xs, resets, state):
        if xs.shape[0] == 0:  # nothing to run (memax indexes the last step)
            return jnp.zeros((0, self.d_model), jnp.float32), state
        with _memax_rules():
            carry = _to_memax(state, self.complex_leaves)
            states, ys = self.memax(carry, (xs, resets))  # type: ignore[operator]
            final = jax.tree.map(lambda s: s[-1], states)
            return ys.astype(jnp.float32), _to_ours(final)

    @checked(check_call)
    def __call__(
        self, xs: Float[Array, "T d_in"], resets: Bool[Array, " T"], state: PyTree[Array]
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """**Arguments:**

        - `xs`: inputs over `T` steps.
        - `resets`: `resets[t]` (memax's start flag) restarts the state before `xs[t]`.
        - `state`: the state before step 0.

        **Returns:**

        memax's outputs `[T, d_model]` and the state after step `T - 1`.
        """
        check_sequence_inputs(self, xs, resets)
        check_state(self, state)
        return self._run(xs, resets, state)

    @checked(check_step)
    def step(
        self, x: Float[Array, " d_in"], reset: Bool[Array, ""], state: PyTree[Array]
    ) -> tuple[Float[Array, " d_model"], PyTree[Array]]:
        """One step (`__call__` on a sequence of length 1): `([d_model], state)`."""
        check_step_inputs(self, x, reset)
        check_state(self, state)
        ys, state = self._run(x[None], reset[None], state)
        return ys[0], state


def _factory(key_name: str) -> Callable[..., MemaxModel]:
    def build(d_in: int, *, d_model: int = 64, n_layers: int = 2, key: PRNGKeyArray) -> MemaxModel:
        return MemaxModel(key_name, d_in, d_model=d_model, n_layers=n_layers, key=key)

    build.__name__ = build.__qualname__ = f"memax_{key_name}"
    build.__doc__ = (
        f"memax's {MEMAX_MODELS[key_name]} residual stack as a `MemaxModel` "
        "(`d_in`, `d_model`, `n_layers`, `key`)."
    )
    return build


for _key in MEMAX_MODELS:
    register_model(f"memax-{_key}", small=dict(d_model=16, n_layers=2))(_factory(_key))
