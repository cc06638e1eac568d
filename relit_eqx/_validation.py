"""Checks shared by every layer and model: configuration values, and the checked public
boundary (hand-written checks with one-line messages, then jaxtyping + beartype).

A call to a function decorated with `checked` first runs its hand-written check, whose
error's first line names the argument, the expected and the received shape or dtype;
then jaxtyping checks every annotated shape and dtype with beartype (consistent sizes
across arguments, the return value). Both run when the function is called, which under
`jax.jit` is once, at trace time: a compiled call pays nothing for them.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import beartype
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import jaxtyped

__all__ = [
    "check_positive",
    "positive",
    "check_array",
    "check_key",
    "check_key_argument",
    "checked",
]

F = TypeVar("F", bound=Callable[..., Any])

_KINDS = {"floating": jnp.floating, "integer": jnp.integer, "bool": jnp.bool_}


def check_positive(**values: object) -> None:
    """Raise `ValueError` naming the first argument that is not a positive integer
    (bools and floats are rejected too)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")


def positive(*names: str) -> Callable[[Mapping[str, Any]], None]:
    """A `checked` precheck: `check_positive` on the arguments `names`."""

    def precheck(arguments: Mapping[str, Any]) -> None:
        check_positive(**{name: arguments[name] for name in names})

    return precheck


Size = int | str | tuple[str, int] | None


def _size(entry: Size) -> int | None:
    if isinstance(entry, tuple):
        return entry[1]
    return entry if isinstance(entry, int) else None


def _label(entry: Size) -> str:
    if isinstance(entry, tuple):
        return f"{entry[0]}={entry[1]}"
    return "…" if entry is None else str(entry)


def _spec(shape: Sequence[Size]) -> str:
    parts = [_label(entry) for entry in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check_array(
    name: str,
    x: Any,
    shape: Sequence[Size] | None = None,
    kind: str | None = None,
    *,
    batch: bool = False,
) -> None:
    """Raise a one-line error naming `name` when `x` does not have `shape` or `kind`.

    **Arguments:**

    - `name`: the argument's name, as the caller wrote it.
    - `x`: an array-like value (a JAX or NumPy array, a tracer, a scalar).
    - `shape`: the expected shape; an entry is a fixed size (`int`), a named fixed size
      (`("d_in", 3)`, shown as `d_in=3`), or any size (a name such as `"T"`, or `None`).
    - `kind`: `"floating"`, `"integer"` or `"bool"`; `None` accepts any dtype.
    - `batch`: `shape` is the trailing shape and any leading axes are allowed.

    Raises `ValueError` for a wrong rank or size, `TypeError` for a wrong dtype, each
    reading `"<name> must have shape (T, d_in=3); got shape (2, 5, 3)"` or
    `"<name> must be a floating array; got dtype int32"`.
    """
    if shape is not None:
        got = tuple(np.shape(x))
        want = tuple(shape)
        spec = _spec(("*batch", *want) if batch else want)
        rank_ok = len(got) >= len(want) if batch else len(got) == len(want)
        tail = got[len(got) - len(want) :] if rank_ok else ()
        sizes = [_size(w) for w in want]
        if not rank_ok or any(w is not None and w != g for w, g in zip(sizes, tail, strict=True)):
            raise ValueError(f"{name} must have shape {spec}; got shape {got}")
    if kind is not None:
        dtype = jnp.result_type(x)
        if not jnp.issubdtype(dtype, _KINDS[kind]):
            article = {"floating": "a floating", "integer": "an integer", "bool": "a boolean"}
            raise TypeError(f"{name} must be {article[kind]} array; got dtype {dtype}")


def check_key(name: str, key: Any) -> None:
    """Raise `TypeError` naming `name` unless `key` is one PRNG key: a typed key of shape
    `()` (`jax.random.key`) or a raw `uint32 [2]` key (`jax.random.PRNGKey`)."""
    dtype, shape = getattr(key, "dtype", None), tuple(np.shape(key))
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if shape == ():
            return
    elif dtype == jnp.uint32 and shape == (2,):
        return
    raise TypeError(
        f"{name} must be one PRNG key (jax.random.key(0), shape (); or "
        f"jax.random.PRNGKey(0), uint32 shape (2,)); got dtype {dtype} shape {shape}"
    )


def check_key_argument(arguments: Mapping[str, Any]) -> None:
    """A `checked` precheck: `check_key` on the argument `key` (environments)."""
    check_key("key", arguments["key"])


def checked(precheck: Callable[[Mapping[str, Any]], None] | None = None) -> Callable[[F], F]:
    """Decorator for a public function or method: the checked boundary.

    On each call, `precheck(arguments)` runs first with the call's arguments bound by
    name (defaults applied, `self` included for a method) and raises the hand-written,
    one-line error; then `jaxtyping.jaxtyped(typechecker=beartype.beartype)` checks the
    annotations: every `Float[Array, "T d"]` shape and dtype, sizes that must agree
    across arguments, the return value. Both run at trace time under `jax.jit`.
    """

    def wrap(fn: F) -> F:
        typed = jaxtyped(typechecker=beartype.beartype)(fn)
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if precheck is not None:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                precheck(bound.arguments)
            return typed(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return wrap
