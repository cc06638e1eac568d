"""What the subcommands share: error reporting, the optional `rl` extra, JAX's
persistent compilation cache."""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["error", "missing_rl_extra", "enable_compilation_cache"]


def error(command: str, msg: str) -> int:
    """Print `relit-eqx COMMAND: error: MSG` on stderr; returns the exit code 2."""
    print(f"relit-eqx {command}: error: {msg}", file=sys.stderr)
    return 2


def missing_rl_extra(*modules: str) -> str | None:
    """A message naming the extra to install if one of `modules` (packages of the
    `rl` extra) is missing, else `None`."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    plural = len(missing) > 1
    return (
        f"the optional package{'s' * plural} {', '.join(map(repr, missing))} of the 'rl' "
        f"extra {'are' if plural else 'is'} not installed; install "
        f"{'them' if plural else 'it'} with: pip install 'relit_eqx[rl]'"
    )


def enable_compilation_cache() -> None:
    """Keep compiled programs on disk (JAX's persistent cache) unless the user chose a
    cache directory already: the second run of a configuration skips compilation."""
    import jax

    chosen = getattr(jax.config, "jax_compilation_cache_dir", None)
    if chosen or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    jax.config.update("jax_compilation_cache_dir", os.path.join(base, "relit_eqx", "jax"))
