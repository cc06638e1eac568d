"""Benchmarks: timings of compiled functions after warm-up, medians of interleaved repeats.

Run them with `relit-eqx bench forms|inference|training|ppo`. Each writes JSON, a markdown
table and (where it helps) a PNG plot to `--out`. Models are compared only inside one run,
as ratios. Nothing here is a unit test: tests only smoke-run the benchmarks at tiny sizes.
"""

from .timing import Timing, time_interleaved

__all__ = ["Timing", "time_interleaved"]
