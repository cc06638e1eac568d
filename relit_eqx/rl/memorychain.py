"""The memory-length experiment on bsuite's MemoryChain (`relit-eqx sweep --task memorychain`).

gymnax's `MemoryChain-bsuite` with memory length M: the first observation shows a
context bit (±1), the one at step M − 1 a query, and the episode ends after M + 1 steps
with reward +1 if the last action names the context and −1 otherwise (0 elsewhere).
The episode return is ±1, so a mean return R means a fraction `(1 + R) / 2` of episodes
answered right ("success"); chance is R = 0.

Every cell `(model, M, seed)` trains with one PPO setting (`MC_ALGO`, the `tmaze-*`
presets' PPO) at one size per model (`MC_SIZES`: 0.23 to 0.57 M parameters). The rollout
is a whole number of episodes (`num_steps = k (M + 1) >= 64`); every episode lasts M + 1
steps and all environments start together, so each rollout starts at an episode's start
and the truncated backpropagation through the rollout reaches the cue from the answer.

A run's budget grows with M (`budget_steps`, the same for every model); it stops early
once the mean return of the episodes of its last `stretch_steps(M)` env steps is at
least `SOLVED_RETURN`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from .config import AgentConfig, ConfigError, EnvConfig, ModelConfig, TrainConfig
from .presets import PRESETS
from .run_dir import CONFIG_FILE, METRICS_FILE, load_config, read_metrics
from .sweep import first_held

__all__ = [
    "MC_ENV",
    "MC_LENGTHS",
    "MC_MODELS",
    "MC_SIZES",
    "MC_ALGO",
    "MC_CSV_COLUMNS",
    "SOLVED_RETURN",
    "budget_steps",
    "stretch_steps",
    "rollout_steps",
    "memorychain_config",
    "solved_at",
    "aggregate_memorychain",
    "summary_table",
]

MC_ENV = "gymnax:MemoryChain-bsuite"
#: Memory lengths M of the experiment.
MC_LENGTHS = (10, 30, 100, 300, 1000)
#: Models of the experiment: ours and four of memax's (`pip install 'relit_eqx[memax]'`).
MC_MODELS = (
    "arelit",
    "relit",
    "gtrxl",
    "gru",
    "lstm",
    "memax-lru",
    "memax-ffm",
    "memax-s6",
    "memax-gdn",
)
_SMALL_TRANSFORMER = {"d_model": 128, "n_layers": 2, "n_heads": 2, "d_head": 32, "d_ffn": 128}
#: One size per model, parameter counts 0.23–0.57 M (the memory model without heads, d_in 3):
#: AReLiT/ReLiT 566k, GTrXL 543k (2 layers × memory 128: reach 256 steps), GRU-384 447k,
#: LSTM-320 414k, memax LRU-192 408k, FFM-192 337k, S6-192 335k, GDN-256 233k (2 layers).
MC_SIZES: dict[str, dict[str, Any]] = {
    "arelit": {**_SMALL_TRANSFORMER, "eta": 4, "r": 2},
    "relit": {**_SMALL_TRANSFORMER, "eta": 4},
    "gtrxl": {**_SMALL_TRANSFORMER, "memory_length": 128},
    "gru": {"d_model": 384, "n_layers": 1},
    "lstm": {"d_model": 320, "n_layers": 1},
    "memax-lru": {"d_model": 192, "n_layers": 2},
    "memax-ffm": {"d_model": 192, "n_layers": 2},
    "memax-s6": {"d_model": 192, "n_layers": 2},
    "memax-gdn": {"d_model": 256, "n_layers": 2},
}
#: The shared PPO setting: the `tmaze-*` presets' (16 envs, 4 epochs of 4 minibatches,
#: step size 1e-3 annealed); `num_steps` is set per memory length by `rollout_steps`.
MC_ALGO = PRESETS["tmaze-arelit"].algo
#: A run counts as solved once its mean return over a stretch is at least this.
SOLVED_RETURN = 0.9
_BUDGETS = {10: 100_000, 30: 150_000, 100: 300_000, 300: 800_000, 1000: 2_000_000}
#: Columns of `memorychain.csv`, one row per run: final return and success over the last
#: tenth of the updates, `solved_at` empty if never, `status` (`solved`, `budget spent`, or
#: `partial`: stopped before either, resumable), `wall_seconds` over all segments
#: (compilation included), `env_steps_per_s` of execution (the last segment's,
#: compilation excluded), the memory model's state floats and parameters.
MC_CSV_COLUMNS = (
    "model",
    "memory_length",
    "seed",
    "final_return",
    "final_success",
    "solved_at",
    "status",
    "env_steps",
    "budget_steps",
    "wall_seconds",
    "env_steps_per_s",
    "state_floats",
    "parameters",
)


def budget_steps(memory_length: int) -> int:
    """Env steps a run may take at memory length M: 100k at M = 10, 150k at 30, 300k at
    100, 800k at 300, 2M at 1000 (in between: the next listed length's)."""
    for m, b in sorted(_BUDGETS.items()):
        if memory_length <= m:
            return b
    return _BUDGETS[max(_BUDGETS)]


def stretch_steps(memory_length: int) -> int:
    """The stretch a solved run holds `SOLVED_RETURN`: a tenth of the budget."""
    return budget_steps(memory_length) // 10


def rollout_steps(memory_length: int, minimum: int = 64) -> int:
    """`k (M + 1)`, the smallest whole number of episodes of at least `minimum` steps."""
    episode = memory_length + 1
    return episode * max(1, math.ceil(minimum / episode))


def memorychain_config(
    model: str,
    memory_length: int,
    seed: int,
    *,
    total_steps: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    algo_kwargs: dict[str, Any] | None = None,
) -> TrainConfig:
    """The run `(model, memory_length, seed)`: `MC_ALGO` with `rollout_steps(M)` steps per
    rollout, the `tmaze-*` presets' heads, the model at `MC_SIZES[model]` (the entries of
    `model_kwargs` its constructor takes override those), `budget_steps(M)` env steps
    unless `total_steps`."""
    if model not in MC_SIZES:
        raise ConfigError(f"unknown model {model!r}; choices: {', '.join(MC_SIZES)}")
    if isinstance(memory_length, bool) or not isinstance(memory_length, int) or memory_length < 1:
        raise ConfigError(f"memory_length must be a positive integer; got {memory_length!r}")
    from .sweep import _takes, with_algo_kwargs

    algo = dataclasses.replace(MC_ALGO, num_steps=rollout_steps(memory_length))
    if algo_kwargs:
        algo = with_algo_kwargs(algo, algo_kwargs)
    takes = _takes(model)
    kwargs = {**MC_SIZES[model], **{k: v for k, v in (model_kwargs or {}).items() if k in takes}}
    return TrainConfig(
        env=EnvConfig(
            name=MC_ENV,
            params={"memory_length": memory_length},
            max_steps_in_episode=memory_length + 1,
        ),
        model=ModelConfig(name=model, kwargs=kwargs),
        agent=AgentConfig(head_hidden=(64,), activation="tanh"),
        algo=algo,
        total_steps=budget_steps(memory_length) if total_steps is None else total_steps,
        seed=seed,
        log_interval=1,
    )


def solved_at(metrics: dict[str, np.ndarray], stretch: int) -> int | None:
    """The first env step at which the episodes that ended in the last `stretch` env steps
    (whole updates, rounded up) had a mean return of at least `SOLVED_RETURN`
    ([`first_held`][relit_eqx.rl.sweep.first_held]); None if never.

    The mean is over the stretch, not per update: at M = 100 an update holds 16 episodes,
    so one wrong answer puts that update at 0.875, and asking every update for 0.9 would
    call a policy right 99% of the time unsolved."""
    return first_held(metrics, "mean_return", SOLVED_RETURN, stretch)


def _model_facts(cfg: TrainConfig) -> tuple[int, int]:
    """(state floats, parameters) of the run's memory model, from shapes only."""
    import equinox as eqx
    import jax

    from ..models import get_model

    d_in = 3  # MemoryChain's observation: time left, query, one context bit
    build = get_model(cfg.model.name)
    model = eqx.filter_eval_shape(
        lambda k: build(d_in, key=k, **cfg.model.kwargs), jax.random.key(0)
    )
    leaves = jax.tree.leaves(eqx.filter(model, lambda x: isinstance(x, jax.ShapeDtypeStruct)))
    return int(model.state_size), int(sum(math.prod(x.shape) for x in leaves))


def aggregate_memorychain(out: Path, results: Path | None = None) -> tuple[Path, Path]:
    """Write `memorychain.csv` (one row per run under `out`, `MC_CSV_COLUMNS`),
    `memorychain.md` (`summary_table`) and `memorychain.png` (final success against
    memory length, one line per model: the mean over seeds with a min–max band) into
    `results` (default `out`); returns the CSV's and the figure's paths. Final figures
    are `sweep.final_rates`' (the last tenth of the updates) and `solved_at` is `solved_at`
    on the run's metrics; `wall_seconds` and the execution rate come from its
    `sweep.json`."""
    from .plotting import plot_memorychain
    from .sweep import _read_state, final_rates, write_csv

    out = Path(out)
    results = Path(results) if results is not None else out
    results.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    facts: dict[tuple[str, str], tuple[int, int]] = {}
    for d in sorted(out.iterdir()) if out.exists() else []:
        if not (d / CONFIG_FILE).exists() or not (d / METRICS_FILE).exists():
            continue
        cfg = load_config(d)
        if cfg.env.name != MC_ENV:
            continue
        m = read_metrics(d / METRICS_FILE)
        state = _read_state(d)
        key = (cfg.model.name, repr(sorted(cfg.model.kwargs.items())))
        if key not in facts:
            facts[key] = _model_facts(cfg)
        ret = final_rates(m)[1]
        # The criterion applied to the run's metrics: a run may have been stopped by an
        # older, stricter one (every update at 0.9), which implies this one.
        solved = solved_at(m, stretch_steps(int(cfg.env.params["memory_length"])))
        steps = int(m["env_steps"][-1]) if len(m["env_steps"]) else 0
        wall = float(state.get("wall_seconds", math.nan))
        rows.append(
            {
                "model": cfg.model.name,
                "memory_length": int(cfg.env.params["memory_length"]),
                "seed": cfg.seed,
                "final_return": ret,
                "final_success": (1 + ret) / 2,
                "solved_at": "" if solved is None else solved,
                "status": (
                    "solved"
                    if solved is not None
                    else "budget spent"
                    if state.get("complete")
                    else "partial"
                ),
                "env_steps": steps,
                "budget_steps": cfg.total_steps,
                "wall_seconds": wall,
                "env_steps_per_s": float(state.get("env_steps_per_s", math.nan)),
                "state_floats": facts[key][0],
                "parameters": facts[key][1],
            }
        )
    order = {m: i for i, m in enumerate(MC_MODELS)}
    rows.sort(
        key=lambda r: (order.get(str(r["model"]), 99), r["model"], r["memory_length"], r["seed"])
    )
    csv_path = results / "memorychain.csv"
    formats = {
        "final_return": ".4f",
        "final_success": ".4f",
        "wall_seconds": ".1f",
        "env_steps_per_s": ".0f",
    }
    write_csv(csv_path, MC_CSV_COLUMNS, rows, formats)
    (results / "memorychain.md").write_text(summary_table(rows))
    return csv_path, plot_memorychain(rows, results / "memorychain.png")


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Per model (markdown): the longest memory length solved by every seed run there
    (solved: `SOLVED_RETURN` held over the stretch), the final success per length (mean
    over seeds, with the number of seeds; † where a run is partial), the median
    env-steps/s, state floats and parameters."""
    lengths = sorted({int(r["memory_length"]) for r in rows})
    head = ["model", "longest solved", *(f"M={m}" for m in lengths)]
    head += ["env-steps/s", "state floats", "parameters"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    models = list(dict.fromkeys(r["model"] for r in rows))
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        solved = [
            m
            for m in lengths
            if (at := [r for r in mine if r["memory_length"] == m])
            and all(r["solved_at"] != "" for r in at)
        ]
        cells = [model, f"{max(solved)}" if solved else "none"]
        for m in lengths:
            at = [r for r in mine if r["memory_length"] == m]
            if not at:
                cells.append("not run")
                continue
            mean = sum(float(r["final_success"]) for r in at) / len(at)
            partial = "†" if any(r["status"] == "partial" for r in at) else ""
            cells.append(f"{mean:.2f} ({len(at)}){partial}")
        rates = sorted(float(r["env_steps_per_s"]) for r in mine)
        cells += [f"{rates[len(rates) // 2]:,.0f}", f"{mine[0]['state_floats']:,}"]
        cells.append(f"{mine[0]['parameters']:,}")
        lines.append("| " + " | ".join(cells) + " |")
    if any(r["status"] == "partial" for r in rows):
        lines += ["", "† a run stopped before it was solved or spent its budget (resumable)."]
    return "\n".join(lines) + "\n"
