"""Running one property under hypothesis and reporting its failure by name."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from ..update_rules import RULES, UpdateRule

__all__ = ["PropertyFailure", "make_settings", "run_property", "run_once", "registered_rule"]


class PropertyFailure(AssertionError):
    """A property of a `check_*` function does not hold.

    **Attributes:** `subject` (what was checked, e.g. `"update rule 'gated'"`),
    `property` (the property's name), `form` (the evaluation form or method),
    `counterexample` (the shrunk input: sizes, reset positions, gate values) and
    `detail` (the comparison that failed)."""

    def __init__(
        self, subject: str, property: str, form: str, counterexample: str, detail: str
    ) -> None:
        self.subject = subject
        self.property = property
        self.form = form
        self.counterexample = counterexample
        self.detail = detail
        super().__init__(
            f"{subject}: property {property!r} fails in {form}.\n"
            f"  Counterexample: {counterexample}\n  {detail}"
        )


def make_settings(max_examples: int, deadline: float | None, settings: Any) -> Any:
    """`settings` if given, else the active hypothesis profile with `max_examples`,
    `deadline` (milliseconds or `None`), no example database, and the health checks
    that JAX's compile times trip switched off."""
    if settings is not None:
        return settings
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive int; got {max_examples!r}")
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=deadline,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def _detail(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) < 2000 else text[:2000] + " …"


def run_property(
    subject: str,
    prop: str,
    form: str,
    body: Callable[[Any, Callable[[str], None]], None],
    settings: Any,
) -> None:
    """Run `body(data, note)` under hypothesis (`data` is `st.data()`); `note(text)`
    records the current input. On failure, raise `PropertyFailure` naming `prop`, `form`
    and the last input noted: hypothesis replays the shrunk example last."""
    record = {"ce": "(failed before any input was drawn)"}

    def note(text: str) -> None:
        record["ce"] = text

    @settings
    @given(st.data())
    def inner(data: Any) -> None:
        body(data, note)

    try:
        inner()
    except Exception as err:
        raise PropertyFailure(subject, prop, form, record["ce"], _detail(err)) from err


def run_once(subject: str, prop: str, form: str, body: Callable[[Callable[[str], None]], None]):
    """As `run_property` for a property with a fixed input (no hypothesis)."""
    record = {"ce": "(fixed input)"}

    def note(text: str) -> None:
        record["ce"] = text

    try:
        body(note)
    except Exception as err:
        raise PropertyFailure(subject, prop, form, record["ce"], _detail(err)) from err


@contextlib.contextmanager
def registered_rule(rule: UpdateRule) -> Iterator[UpdateRule]:
    """Make `rule` reachable by name in `relit_eqx.functional` for the duration: a rule
    already registered is used as is; an unregistered one is registered and removed after.
    `ValueError` if a different rule holds its name."""
    current = RULES.get(rule.name)
    if current is rule:
        yield rule
        return
    if current is not None:
        raise ValueError(
            f"update rule {rule.name!r}: a different rule is registered under this name; "
            "give the rule a name of its own"
        )
    RULES[rule.name] = rule
    try:
        yield rule
    finally:
        del RULES[rule.name]
