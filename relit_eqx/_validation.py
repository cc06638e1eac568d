"""Configuration checks shared by every layer and model."""

from __future__ import annotations

import numbers


def check_positive(**values: object) -> None:
    """Raise `ValueError` naming the first argument that is not a positive integer
    (bools and floats are rejected too)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
