"""The progress bar of a run."""

from __future__ import annotations

import math
import sys

__all__ = ["Progress"]


class Progress:
    """A tqdm bar over environment steps showing env-steps/s, mean return and success
    rate; a plain line per chunk when stderr is not a terminal (or tqdm is missing)."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True):
        self.total = total
        self.enabled = enabled
        self._bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True
                )
            except ImportError:
                pass

    def update(self, steps: int, done: int, mean_return: float, success: float, sps: float) -> None:
        if not self.enabled:
            return
        ret = "nan" if math.isnan(mean_return) else f"{mean_return:.2f}"
        # A return without a success rate: the environment reports none; say nothing.
        no_success = math.isnan(success) and not math.isnan(mean_return)
        succ = (
            ""
            if no_success
            else ", success " + ("nan" if math.isnan(success) else f"{success:.0%}")
        )
        if self._bar is not None:
            self._bar.set_postfix_str(f"return {ret}{succ}", refresh=False)
            self._bar.update(steps)
        else:
            print(
                f"step {done}/{self.total}  {sps:,.0f} steps/s  return {ret}{succ}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
