"""Timing discipline shared by every benchmark."""

from __future__ import annotations

import dataclasses
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock times (seconds) of one compiled function over interleaved repeats."""

    name: str
    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def time_interleaved(
    fns: dict[str, tuple[Callable[..., Any], Sequence[Any]]],
    *,
    repeats: int = 7,
    warmup: int = 2,
) -> dict[str, Timing]:
    """Time each `fn(*args)` after `warmup` calls (compilation included there).

    Repeats are interleaved round-robin (the order rotates each round) so that drifts of
    the machine hit every candidate alike. Each call ends with `jax.block_until_ready`.
    """
    for fn, args in fns.values():
        for _ in range(warmup):
            jax.block_until_ready(fn(*args))
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            fn, args = fns[name]
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t0)
    return {n: Timing(n, tuple(ts)) for n, ts in times.items()}


def build_model(name: str, d_in: int, key: Any, **kwargs: Any) -> Any:
    """Construct registered model `name`, dropping keyword arguments it does not take
    (so one set of size overrides serves every model)."""
    import inspect

    from ..models import get_model

    ctor = get_model(name)
    params = inspect.signature(ctor).parameters
    return ctor(d_in, key=key, **{k: v for k, v in kwargs.items() if k in params})


def device_label() -> str:
    """The device the benchmark ran on, e.g. `cpu (x86_64, 2 cores)` or the GPU's name."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        import os

        return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
    return f"{dev.platform}: {dev.device_kind}"


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a markdown table with the given columns."""

    def fmt(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.4g}"
        return str(x)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_results(out: Path | None, name: str, payload: dict[str, Any], table: str) -> None:
    """Write `name.json` and `name.md` into `out` (created if missing), and print the table."""
    print(table)
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    payload = {"device": device_label(), "jax": jax.__version__, **payload}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (out / f"{name}.md").write_text(
        f"Device: {payload['device']}, jax {jax.__version__}\n\n{table}\n"
    )


def loglog_plot(
    rows: list[dict[str, Any]],
    x: str,
    y: str,
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    label_x: bool = False,
) -> None:
    """`rows[y]` against `rows[x]` on log-log axes, one line per `rows["model"]`, saved to
    `path`; `label_x` labels every measured `x` instead of the default ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in dict.fromkeys(r["model"] for r in rows):
        pts = [(r[x], r[y]) for r in rows if r["model"] == label]
        ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    if label_x:
        xs = sorted({r[x] for r in rows})
        ax.set_xticks(xs, [str(v) for v in xs])
        ax.minorticks_off()
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
