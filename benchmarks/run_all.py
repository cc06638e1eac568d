"""Run the benchmark suite in one process and write every table to OUT.

    python benchmarks/run_all.py OUT [--quick]

Used for the figures in docs/performance.md. On a GPU machine JAX places everything
on the GPU; to measure the CPU, set `JAX_PLATFORMS=cpu` (and pin cores with `taskset`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from relit_eqx.bench import forms, inference, training


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true", help="fewer models, sizes and repeats")
    parser.add_argument("--only", nargs="*", default=["inference", "training", "forms"])
    args = parser.parse_args()
    t0 = time.perf_counter()
    if "inference" in args.only:
        configs = inference.QUICK if args.quick else inference.FULL
        batches = (1, 64) if args.quick else (1, 16, 64, 256)
        inference.run(configs=configs, batches=batches, repeats=11, out=args.out)
        print(f"[inference done at {time.perf_counter() - t0:.0f}s]", flush=True)
    if "training" in args.only:
        lengths = (128,) if args.quick else (128, 1024)
        training.run(lengths=lengths, batch=16, repeats=5, out=args.out)
        print(f"[training done at {time.perf_counter() - t0:.0f}s]", flush=True)
    if "forms" in args.only:
        lengths = (128, 1024) if args.quick else (128, 1024, 4096)
        forms.run(lengths=lengths, repeats=3, out=args.out)
        print(f"[forms done at {time.perf_counter() - t0:.0f}s]", flush=True)


if __name__ == "__main__":
    main()
