"""Shared pytest set-up: hypothesis profiles and the `quick_compiles` fixture.

`default` keeps CI fast (JAX compiles dominate); `thorough` runs deep:
`HYPOTHESIS_PROFILE=thorough pytest`.
"""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings


@pytest.fixture(scope="module")
def quick_compiles():
    """Compile with XLA's optimisations mostly off, for a module of tiny programs where
    compiling dominates (`pytestmark = pytest.mark.usefixtures("quick_compiles")`)."""
    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


settings.register_profile(
    "default",
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
