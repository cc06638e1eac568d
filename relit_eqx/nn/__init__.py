"""Equinox layers built on the functional core."""
