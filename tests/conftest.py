"""Shared pytest set-up: strict numerics, quick compiles, a shared compilation cache and
hypothesis profiles.

Every test runs under JAX's strict dtype promotion (an int/float mix or a float32/float64
mix must be written out with an explicit cast) and with rank promotion raising (no implicit
broadcasting of a lower-rank operand). The package is also imported under jaxtyping's
runtime checker with beartype (`--jaxtyping-packages` in pyproject.toml), so every
annotated shape and dtype in `relit_eqx` is checked while the tests run.

XLA compiles with its optimisations mostly off (`jax_disable_most_optimizations`): the
suite's programs are tiny and compiling dominates, so this saves about a quarter of its
time. `RELIT_EQX_TEST_OPTIMIZED=1 pytest` compiles as users' programs are compiled.

Compiled programs are kept in a persistent JAX cache shared by the run's workers (a
temporary directory, removed at the end), so a program that several tests compile (the
tiny training chunk, a model's forms) is compiled once per run. A cache directory chosen
by the user (`JAX_COMPILATION_CACHE_DIR`) is used instead and left in place.

Hypothesis profiles: `default` keeps CI fast (JAX compiles dominate); `thorough` runs
deep: `HYPOTHESIS_PROFILE=thorough pytest`.
"""

import os
import shutil
import tempfile

import jax
import pytest
from hypothesis import HealthCheck, settings

STRICT_CONFIG = {"jax_numpy_dtype_promotion": "strict", "jax_numpy_rank_promotion": "raise"}


_OWNED_CACHE = "_relit_eqx_owned_cache_dir"


def pytest_configure(config: pytest.Config) -> None:
    # Process-wide, so that module-level and module-scoped set-up (built before any
    # function-scoped fixture) is strict too.
    for name, value in STRICT_CONFIG.items():
        jax.config.update(name, value)
    if os.environ.get("RELIT_EQX_TEST_OPTIMIZED") != "1":
        jax.config.update("jax_disable_most_optimizations", True)
        os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"  # the tests' subprocesses too
    # The first process (the xdist controller, or pytest alone) makes the directory; the
    # workers and the tests' subprocesses inherit it through the environment.
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        path = tempfile.mkdtemp(prefix="relit_eqx-tests-jax-cache-")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = path
        setattr(config, _OWNED_CACHE, path)
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.25)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = getattr(config, _OWNED_CACHE, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def strict_numerics():
    """Every test inside `jax.numpy_dtype_promotion("strict")` and
    `jax.numpy_rank_promotion("raise")`, whatever an earlier test set globally."""
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        yield


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
