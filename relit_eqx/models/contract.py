"""The sequence-model contract (the Concepts page) and the model registry.

Every memory model is an `eqx.Module` with

- `init_state()`: a PyTree of fixed shapes (zeros: "no history");
- `__call__(xs, resets, state) -> (ys, final_state)`: the training form over `T` steps;
- `step(x, reset, state) -> (y, new_state)`: the inference form, one step;
- `state_size`: floats per sequence held in the recurrent state.

`reset_t = True` means `x_t` is the first observation of a new episode: the state is
zeroed *before* step `t` is absorbed. Batching is `jax.vmap`, never a batch axis.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PyTree

__all__ = [
    "SequenceModel",
    "register_model",
    "get_model",
    "model_names",
    "small_kwargs",
    "check_sequence_inputs",
    "check_state",
]


class SequenceModel(eqx.Module):
    """Abstract base of every memory model (the Concepts page).

    Subclasses declare `d_in` and `d_model` as static fields and implement
    `init_state`, `__call__`, `step` and `state_size`.
    """

    d_in: eqx.AbstractVar[int]
    d_model: eqx.AbstractVar[int]

    @abc.abstractmethod
    def init_state(self) -> PyTree[Array]:
        """The zero state: a PyTree of fixed shapes and dtypes."""

    @abc.abstractmethod
    def __call__(
        self,
        xs: Float[Array, "T d_in"],
        resets: Bool[Array, " T"],
        state: PyTree[Array],
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """Training form: `T` steps from `state`; returns outputs and the final state."""

    @abc.abstractmethod
    def step(
        self,
        x: Float[Array, " d_in"],
        reset: Bool[Array, ""],
        state: PyTree[Array],
    ) -> tuple[Float[Array, " d_model"], PyTree[Array]]:
        """Inference form: one step from `state`."""

    @property
    @abc.abstractmethod
    def state_size(self) -> int:
        """Floats per sequence held in the recurrent state."""


M = TypeVar("M", bound=Callable[..., Any])

_MODELS: dict[str, Callable[..., SequenceModel]] = {}
_SMALL: dict[str, dict[str, Any]] = {}


def register_model(name: str, *, small: dict[str, Any] | None = None) -> Callable[[M], M]:
    """Class decorator: make a model constructible by `name` (contract suite, RL presets).

    **Arguments:**

    - `name`: the registry key, e.g. `"arelit"`.
    - `small`: keyword arguments for a tiny configuration of the model, used by the
      contract suite and quick benchmarks (so registering is all a new model needs).
    """

    def wrap(cls: M) -> M:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = cls
        _SMALL[name] = dict(small or {})
        return cls

    return wrap


def small_kwargs(name: str) -> dict[str, Any]:
    """The tiny configuration registered with model `name` (a copy)."""
    get_model(name)
    return dict(_SMALL[name])


def get_model(name: str) -> Callable[..., SequenceModel]:
    """The constructor registered under `name`; `ValueError` naming the choices if unknown."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(_MODELS)}") from None


def model_names() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def check_sequence_inputs(model: Any, xs: Any, resets: Any) -> None:
    """Raise a named error when `xs`/`resets` do not fit `model` (runs at trace time)."""
    xs_shape = np.shape(xs)
    if len(xs_shape) != 2:
        raise ValueError(
            f"xs must have shape (T, d_in={model.d_in}); got shape {xs_shape} "
            "(batch with jax.vmap, not a leading axis)"
        )
    if xs_shape[1] != model.d_in:
        raise ValueError(
            f"xs has last dimension {xs_shape[1]} but the model's d_in is {model.d_in}"
        )
    if not jnp.issubdtype(jnp.result_type(xs), jnp.floating):
        raise TypeError(f"xs must be a floating array; got dtype {jnp.result_type(xs)}")
    r_shape = np.shape(resets)
    if r_shape != (xs_shape[0],):
        raise ValueError(f"resets must have shape (T,) = ({xs_shape[0]},) like xs; got {r_shape}")
    if jnp.result_type(resets) != jnp.bool_:
        raise TypeError(f"resets must be a boolean array; got dtype {jnp.result_type(resets)}")


def check_step_inputs(model: Any, x: Any, reset: Any) -> None:
    """Raise a named error when a single step's `x`/`reset` do not fit `model`."""
    if np.shape(x) != (model.d_in,):
        raise ValueError(f"x must have shape (d_in,) = ({model.d_in},); got {np.shape(x)}")
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise TypeError(f"x must be a floating array; got dtype {jnp.result_type(x)}")
    if np.shape(reset) != ():
        raise ValueError(f"reset must be a scalar boolean; got shape {np.shape(reset)}")
    if jnp.result_type(reset) != jnp.bool_:
        raise TypeError(f"reset must be boolean; got dtype {jnp.result_type(reset)}")


def check_call(arguments: Mapping[str, Any]) -> None:
    """The checked boundary of a model's `__call__(xs, resets, state)` (for
    `relit_eqx._validation.checked`): inputs, then the state."""
    model = arguments["self"]
    check_sequence_inputs(model, arguments["xs"], arguments["resets"])
    check_state(model, arguments["state"])


def check_step(arguments: Mapping[str, Any]) -> None:
    """The checked boundary of a model's `step(x, reset, state)`: inputs, then the state."""
    model = arguments["self"]
    check_step_inputs(model, arguments["x"], arguments["reset"])
    check_state(model, arguments["state"])


def check_state(model: Any, state: Any) -> None:
    """Raise `ValueError` when `state` is not shaped like `model.init_state()`."""
    expected = jax.eval_shape(model.init_state)
    exp_leaves, exp_tree = jax.tree_util.tree_flatten(expected)
    got_leaves, got_tree = jax.tree_util.tree_flatten(state)
    if str(exp_tree) != str(got_tree):
        raise ValueError(
            f"state does not belong to this {type(model).__name__} configuration: "
            f"expected structure {exp_tree}, got {got_tree}"
        )
    for e, g in zip(exp_leaves, got_leaves, strict=True):
        if tuple(np.shape(g)) != tuple(e.shape) or jnp.result_type(g) != e.dtype:
            raise ValueError(
                f"state does not belong to this {type(model).__name__} configuration: "
                f"a leaf has shape {np.shape(g)} dtype {jnp.result_type(g)}, "
                f"expected {e.shape} {e.dtype}"
            )
