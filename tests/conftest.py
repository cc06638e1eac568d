"""Shared pytest set-up: strict numerics, hypothesis profiles and the `quick_compiles` fixture.

Every test runs under JAX's strict dtype promotion (an int/float mix or a float32/float64
mix must be written out with an explicit cast) and with rank promotion raising (no implicit
broadcasting of a lower-rank operand). The package is also imported under jaxtyping's
runtime checker with beartype (`--jaxtyping-packages` in pyproject.toml), so every
annotated shape and dtype in `relit_eqx` is checked while the tests run.

Hypothesis profiles: `default` keeps CI fast (JAX compiles dominate); `thorough` runs
deep: `HYPOTHESIS_PROFILE=thorough pytest`.
"""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

STRICT_CONFIG = {"jax_numpy_dtype_promotion": "strict", "jax_numpy_rank_promotion": "raise"}


def pytest_configure(config: pytest.Config) -> None:
    # Process-wide, so that module-level and module-scoped set-up (built before any
    # function-scoped fixture) is strict too.
    for name, value in STRICT_CONFIG.items():
        jax.config.update(name, value)


@pytest.fixture(autouse=True)
def strict_numerics():
    """Every test inside `jax.numpy_dtype_promotion("strict")` and
    `jax.numpy_rank_promotion("raise")`, whatever an earlier test set globally."""
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        yield


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
