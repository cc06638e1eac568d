"""How often a freshly initialised agent reaches the T-Maze junction: the authors' agents and ours.

    pip install flax pyyaml     # only for the authors' agents; never a dependency of relit_eqx
    python benchmarks/initial_policy.py --authors-repo /path/to/agalite \\
        [--models arelit relit gtrxl gru lstm] [--impl authors ours] \\
        [--inits 20] [--episodes 64] [--corridor 120] [--out benchmarks/results/initial_policy.json]
    python benchmarks/initial_policy.py --table benchmarks/results/initial_policy.json

On a corridor of 120 cells a uniform random walk essentially never reaches the junction
within the 1000-step limit, so whether training ever sees the end of the corridor depends
on the policy the agent starts with. For each model, `--inits` agents are initialised
with independent keys (weights of the memory model and of both heads), and each acts
(sampling its categorical policy) in `--episodes` T-Mazes for the time limit, from the
first step of an episode. Reported: the fraction of the episodes in which the agent
reached the junction (cell `L-1`), over all initialisations, and how that fraction is
distributed over the initialisations.

- **ours**: `relit_eqx.rl.agent.Agent` with the paper's T-Maze model settings
  (`MODEL_SIZES` updated by `PAPER_TMAZE_SIZES`, as `relit-eqx sweep --algo a2c`) and
  heads (`paper_agent()`: 128 tanh units, orthogonal gain √2).
- **authors**: their Flax `ActorCriticModel` built from their `src/` (flatten → sequence
  model → 128-unit tanh actor and critic), each sequence model configured from their
  `config/tmaze/<model>.yaml` (`arelit`, `relit`, `gtrxl128`, `gru`, `lstm`),
  initialised by their `init`, batched over environments with `nn.vmap` as their agent.

Both act in this package's `TMaze` (the authors' `tmazev2`: cue, 8-bit Gray position,
six distractor bits). Each model writes its row to `--out` (JSON) as soon as it is done.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from relit_eqx.envs.tmaze import TMaze
from relit_eqx.envs.wrappers import Discrete
from relit_eqx.models import get_model
from relit_eqx.rl.agent import Agent
from relit_eqx.rl.presets import MODEL_SIZES, PAPER_TMAZE_SIZES, paper_agent

MODELS = ("arelit", "relit", "gtrxl", "gru", "lstm")
AUTHORS_CONFIG = {
    "arelit": "arelit",
    "relit": "relit",
    "gtrxl": "gtrxl128",
    "gru": "gru",
    "lstm": "lstm",
}
N_OBS, N_ACTIONS = 16, 4

# policy(params, obs [E, 16], reset [E], memory, key) -> (logits [E, 4], memory)
Policy = Callable[[Any, jax.Array, jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


def ours(model: str, n_envs: int) -> tuple[Callable[[jax.Array], tuple[Any, Any]], Policy]:
    """`init(key) -> (agent, memory)` and the policy of our agent for `model`."""
    kwargs = {**MODEL_SIZES[model], **PAPER_TMAZE_SIZES.get(model, {})}
    heads = paper_agent()

    def build(key):
        k_model, k_heads = jax.random.split(key)
        net = get_model(model)(N_OBS, **kwargs, key=k_model)
        return Agent(
            net, Discrete(N_ACTIONS), hidden=heads.head_hidden, activation=heads.activation,
            policy_gain=heads.policy_gain, value_gain=heads.value_gain, key=k_heads,
        )  # fmt: skip

    def is_leaf(x):
        return isinstance(x, (jax.Array, jax.ShapeDtypeStruct))

    static = eqx.partition(eqx.filter_eval_shape(build, jax.random.PRNGKey(0)), is_leaf)[1]

    def init(key):
        agent = build(key)
        memory = jax.vmap(lambda _: agent.init_state())(jnp.arange(n_envs))
        return eqx.partition(agent, is_leaf)[0], memory

    def policy(params, obs, reset, memory, key):
        agent = eqx.combine(params, static)
        dist, _, memory = jax.vmap(agent.step)(obs, reset, memory)
        return dist.logits, memory

    return init, policy


def authors(repo: Path, model: str, n_envs: int) -> tuple[Callable, Policy]:
    """`init(key) -> (params, memory)` and the policy of the authors' agent for `model`."""
    import flax.linen as nn
    import yaml

    if not hasattr(jax, "tree_map"):  # their code calls jax.tree_map, removed in jax 0.6
        jax.tree_map = jax.tree_util.tree_map  # type: ignore[attr-defined]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from src.model_fns import achead_fns, repr_fns, seq_fns  # type: ignore[import-not-found]
    from src.models.actor_critic import ActorCriticModel  # type: ignore[import-not-found]

    cfg = yaml.safe_load((repo / "config" / "tmaze" / f"{AUTHORS_CONFIG[model]}.yaml").read_text())
    trainer = cfg["trainer"]
    seq = trainer["seq_model"]
    if seq["name"] == "gru" and "features" in nn.GRUCell.__dataclass_fields__:
        # their GRU builds `nn.GRUCell()` without `features` (Flax < 0.7); newer Flax needs it
        nn.GRUCell = functools.partial(nn.GRUCell, features=seq["d_model"])  # type: ignore[misc]
    seq_fn, seq_init = getattr(seq_fns, f"seq_model_{seq['name']}")(**seq)
    ac = nn.vmap(ActorCriticModel, variable_axes={"params": None}, split_rngs={"params": False})(
        repr_fns.flatten_repr_model(), seq_fn,
        achead_fns.actor_model_discete(trainer["d_actor"], N_ACTIONS),
        achead_fns.critic_model(trainer["d_critic"]),
    )  # fmt: skip
    memory0 = jax.tree_util.tree_map(
        lambda x: jnp.repeat(jnp.expand_dims(x, 0), n_envs, axis=0), seq_init()
    )
    obs0 = jnp.zeros((n_envs, 1, N_OBS))
    term0 = jnp.zeros((n_envs, 1), bool)

    def init(key):
        k_params, k_random = jax.random.split(key)
        params = ac.init({"params": k_params, "random": k_random}, obs0, term0, memory0)
        return params, memory0

    def policy(params, obs, reset, memory, key):
        logits, _, memory = ac.apply(
            params, obs[:, None], reset[:, None], memory, rngs={"random": key}
        )
        return logits[:, 0], memory

    return init, policy


def reach_rates(
    init: Callable,
    policy: Policy,
    *,
    inits: int,
    episodes: int,
    corridor: int,
    steps: int,
    seed: int,
) -> np.ndarray:
    """`[inits]`: the fraction of `episodes` T-Maze episodes in which each freshly
    initialised agent reached the junction within `steps` steps."""
    env = TMaze(corridor)
    last = corridor - 1

    def rollout(params, memory, k_env, k_run):
        obs, states = jax.vmap(env.reset)(jax.random.split(k_env, episodes))

        def step(carry, t):
            obs, states, memory, reached, key = carry
            key, k_act, k_pol, k_env = jax.random.split(key, 4)
            reset = jnp.full((episodes,), t == 0)
            logits, memory = policy(params, obs, reset, memory, k_pol)
            actions = jax.random.categorical(k_act, logits)
            obs, states, _, _, _ = jax.vmap(env.step)(
                jax.random.split(k_env, episodes), states, actions
            )
            reached = reached | (states.position == last)
            return (obs, states, memory, reached, key), None

        carry = (obs, states, memory, jnp.zeros((episodes,), bool), k_run)
        carry, _ = jax.lax.scan(step, carry, jnp.arange(steps))
        return jnp.mean(carry[3].astype(jnp.float32))

    # One compiled rollout, run once per initialisation (a vmap over initialisations
    # multiplies the memory of the transformers' states by `inits`). The agent is
    # initialised outside it, op by op: with jaxlib 0.10 on this 2-core CPU, the
    # authors' GaLiTe initialised inside a compiled program never returns (its
    # orthogonal initialiser, vmapped over heads, is a batched QR whose threads wait on
    # each other in LAPACK's ParallelBatchMap).
    run = jax.jit(rollout)
    keys = jax.random.split(jax.random.PRNGKey(seed), inits)
    rates = []
    for i, k in enumerate(keys):
        t0 = time.perf_counter()
        k_init, k_env, k_run = jax.random.split(k, 3)
        params, memory = init(k_init)
        rates.append(float(run(params, memory, k_env, k_run)))
        print(f"  init {i + 1}/{inits}: reach {rates[-1]:.3f} ({time.perf_counter() - t0:.0f} s)",
              flush=True)  # fmt: skip
    return np.asarray(rates)


def markdown(rows: list[dict]) -> str:
    """The rows as a table: model × (authors, ours)."""
    by = {(r["model"], r["impl"]): r for r in rows}
    lines = [
        "| model | authors: reach rate | authors: inits reaching | ours: reach rate "
        "| ours: inits reaching |",
        "|---|---|---|---|---|",
    ]
    for model in MODELS:
        cells = []
        for impl in ("authors", "ours"):
            r = by.get((model, impl))
            if r is None:
                cells += ["not run", ""]
                continue
            rates = np.asarray(r["per_init"])
            se = math.sqrt(rates.var() / len(rates))
            n = r["inits"] * r["episodes"]
            cells += [
                f"{r['reach_rate']:.3f} ± {se:.3f} ({n} episodes)",
                f"{r['inits_reaching']}/{r['inits']}",
            ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", nargs="+", type=Path, help="print the table of these JSON files")
    p.add_argument("--authors-repo", type=Path)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--impl", nargs="+", default=["authors", "ours"], choices=("authors", "ours"))
    p.add_argument("--inits", type=int, default=20)
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--corridor", type=int, default=120)
    p.add_argument("--steps", type=int, default=1000, help="the time limit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/initial_policy.json"))
    args = p.parse_args()
    if args.table:
        print(markdown([r for f in args.table for r in json.loads(f.read_text())]), end="")
        return
    if "authors" in args.impl and args.authors_repo is None:
        p.error("--impl authors needs --authors-repo (a checkout of the authors' code)")
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    for model in args.models:
        for impl in args.impl:
            start = time.perf_counter()
            try:
                if impl == "ours":
                    init, policy = ours(model, args.episodes)
                else:
                    init, policy = authors(args.authors_repo, model, args.episodes)
                rates = reach_rates(
                    init, policy, inits=args.inits, episodes=args.episodes,
                    corridor=args.corridor, steps=args.steps, seed=args.seed,
                )  # fmt: skip
            except Exception as e:  # report and go on with the next model
                print(f"{model:7s} {impl:7s} failed: {type(e).__name__}: {e}", flush=True)
                continue
            row = {
                "model": model, "impl": impl, "corridor": args.corridor, "steps": args.steps,
                "inits": args.inits, "episodes": args.episodes, "seed": args.seed,
                "reach_rate": float(rates.mean()),
                "inits_reaching": int((rates > 0).sum()),
                "per_init": [float(r) for r in rates],
                "seconds": round(time.perf_counter() - start, 1),
            }  # fmt: skip
            rows = [r for r in rows if (r["model"], r["impl"]) != (model, impl)] + [row]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=1) + "\n")
            se = math.sqrt(max(rates.var(), 0.0) / len(rates))
            print(f"{model:7s} {impl:7s} reach {row['reach_rate']:.3f} ± {se:.3f} (s.e. over "
                  f"inits); inits reaching at least once {row['inits_reaching']}/{args.inits}; "
                  f"max per init {rates.max():.2f}; {row['seconds']:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
