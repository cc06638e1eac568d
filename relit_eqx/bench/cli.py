"""`relit-eqx bench forms|inference|training|ppo [--quick] [--tiny] [--out DIR]`
(`ppo --memory-length M`: on bsuite MemoryChain)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import forms, inference, ppo, training

# Sizes for a smoke run: every model and form, compiled small.
TINY = dict(d_model=16, n_layers=1, n_heads=2, d_head=4, d_ffn=16, eta=2, memory_length=8)


def bench_command(argv: list[str]) -> int:
    """Parse `argv` and run one benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="relit-eqx bench",
        description="Time compiled functions after warm-up (medians of interleaved repeats) "
        "and write JSON, a markdown table and plots to --out.",
    )
    parser.add_argument("which", choices=["forms", "inference", "training", "ppo"])
    parser.add_argument("--quick", action="store_true", help="fewer models, sizes, repeats")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="directory for the results")
    parser.add_argument(
        "--algo",
        choices=["ppo", "a2c"],
        default="ppo",
        help="ppo only: the tmaze preset's PPO (default) or the paper's A2C at L=120",
    )
    parser.add_argument(
        "--models",
        default=None,
        help=f"ppo only: comma-separated models (default {','.join(ppo.MODELS)}; also {','.join(ppo.MEMAX_MODELS)})",
    )
    parser.add_argument(
        "--memory-length",
        type=int,
        default=None,
        help="ppo only: bsuite MemoryChain at this memory length instead of T-Maze, each model "
        "in its `sweep --task memorychain` setting (default models: the sweep's nine)",
    )
    parser.add_argument(
        "--lengths",
        default=None,
        help="training only: comma-separated sequence lengths (default 128,1024; --quick 128)",
    )
    args = parser.parse_args(argv)
    lengths_arg = None
    if args.lengths is not None:
        try:
            lengths_arg = tuple(int(v) for v in args.lengths.split(","))
        except ValueError:
            parser.error(f"--lengths must be comma-separated integers; got {args.lengths!r}")
        if not lengths_arg or min(lengths_arg) <= 0:
            parser.error(f"--lengths must be positive integers; got {args.lengths!r}")
    models: tuple[str, ...] = ppo.MODELS
    if args.memory_length is not None:
        from ..rl.memorychain import MC_MODELS

        if args.which != "ppo" or args.algo != "ppo":
            parser.error("--memory-length is for `bench ppo` with --algo ppo")
        if args.memory_length < 1:
            parser.error(f"--memory-length must be positive; got {args.memory_length}")
        models = MC_MODELS
    if args.models is not None:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        choices = ppo.MODELS + ppo.MEMAX_MODELS
        unknown = [m for m in models if m not in choices]
        if unknown or not models:
            parser.error(f"--models: unknown {unknown}; choices: {', '.join(choices)}")
    if args.memory_length is not None:
        from ..rl.memorychain import MC_SIZES

        unsized = [m for m in models if m not in MC_SIZES]
        if unsized:
            parser.error(
                f"--memory-length: no MemoryChain size for {unsized}; models: {', '.join(MC_SIZES)}"
            )
    if args.which == "forms":
        if args.tiny:
            forms.run(
                lengths=(20,), batch=2, heads=2, d=4, n=8, chunk_size=8, repeats=2, out=args.out
            )
        else:
            lengths = (128, 1024) if args.quick else (128, 1024, 4096)
            forms.run(lengths=lengths, repeats=3 if args.quick else 5, out=args.out)
    elif args.which == "inference":
        inference.run(
            configs=inference.QUICK if (args.quick or args.tiny) else inference.FULL,
            batches=(1, 4) if args.tiny else (1, 64) if args.quick else (1, 16, 64, 256),
            repeats=3 if args.tiny else 21,
            overrides=TINY if args.tiny else None,
            out=args.out,
        )
    elif args.which == "ppo":
        ppo.run(
            models=models,
            algo=args.algo,
            memory_length=args.memory_length,
            updates=1 if (args.quick or args.tiny) else 2,
            repeats=2 if args.tiny else 3 if args.quick else 5,
            overrides=TINY if args.tiny else None,
            out=args.out,
        )
    else:
        training.run(
            configs=training.SMOKE if args.tiny else training.FULL,
            lengths=lengths_arg or ((12,) if args.tiny else (128,) if args.quick else (128, 1024)),
            batch=2 if args.tiny else 16,
            repeats=2 if args.tiny else 5,
            overrides={**TINY, "chunk_size": 4} if args.tiny else None,
            out=args.out,
        )
    return 0
