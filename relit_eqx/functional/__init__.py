"""Functional core (placeholder while being written)."""
