"""The `relit-eqx` command line: `relit-eqx SUBCOMMAND [options]`; argument parsing only
(the work is done by `relit_eqx.rl` and `relit_eqx.bench`).

Subcommands are entries of `COMMANDS` (name → function taking the remaining arguments
and returning an exit code), so a new one is one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["COMMANDS", "main"]


def _train(argv: list[str]) -> int:
    from .train import train_command

    return train_command(argv)


def _bench(argv: list[str]) -> int:
    from ..bench.cli import bench_command

    return bench_command(argv)


def _sweep(argv: list[str]) -> int:
    from .sweep import sweep_command

    return sweep_command(argv)


#: Subcommand name → (function(argv) -> exit code, one-line summary).
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (_train, "train an agent with PPO/A2C (see `relit-eqx train --help`)"),
    "bench": (_bench, "benchmarks: forms | inference | training | ppo (see `relit-eqx bench -h`)"),
    "sweep": (_sweep, "T-Maze sweep: lengths x models x seeds (see `relit-eqx sweep -h`)"),
}


def _usage() -> str:
    lines = ["usage: relit-eqx COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default `sys.argv[1:]`); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"relit-eqx: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[name][0](rest)
    except SystemExit as e:  # argparse/tyro exit on bad arguments or --help
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 2)
