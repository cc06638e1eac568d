"""An analytic cost model of one inference step, beside the measurements.

FLOPs count a multiply-add as 2. Per layer and step (H heads of width d, n = eta·d):

- ReLiT attention: `H·(5·d·n + 5·n)` for the state update and readout, `O(d·n)` per head;
- AReLiT attention: `H·(3·r·d + 5·r·n + 2·r·d + 5·n)`, i.e. `O(r·eta·d)` per head, independent
  of the history length;
- GTrXL attention: `H·(6·(M+1)·d + 5·(M+1))` over the `M` cached keys/values, `O(M·d)`;

plus what every transformer layer shares (the fused projections, two GRU gates, the FFN).
Memory traffic per step is dominated by reading the weights and reading + writing the state.
"""

from __future__ import annotations

from typing import Any

__all__ = ["step_cost"]


def _shared_layer(d_model: int, d_ffn: int) -> int:
    gates = 2 * 6 * 2 * d_model * d_model  # two GRU gates, six dense maps each
    ffn = 2 * 2 * d_model * d_ffn
    return gates + ffn + 20 * d_model  # layer norms, activations


def step_cost(name: str, d_in: int = 16, **kw: Any) -> dict[str, float]:
    """FLOPs, state floats and weight floats of one inference step of model `name`
    (`"relit"`, `"arelit"`, `"gtrxl"`, `"gru"`, `"lstm"`) at the given sizes (paper defaults)."""
    d_model = kw.get("d_model", 128)
    L = kw.get("n_layers", 4 if name in ("relit", "arelit", "gtrxl") else 1)
    H, d, d_ffn = kw.get("n_heads", 4), kw.get("d_head", 64), kw.get("d_ffn", 128)
    eta, r, M = kw.get("eta", 4), kw.get("r", 2), kw.get("memory_length", 128)
    n = eta * d
    if name in ("gru", "lstm"):
        g = 3 if name == "gru" else 4
        weights = sum(g * (i + d_model + 1) * d_model for i in [d_in] + [d_model] * (L - 1))
        state = L * d_model * (1 if name == "gru" else 2)
        return {"flops": 2.0 * weights, "state_floats": state, "weight_floats": weights}
    shared = _shared_layer(d_model, d_ffn)
    shared_weights = 12 * d_model * d_model + 2 * d_model * d_ffn
    if name in ("relit", "arelit"):
        proj_out = H * (5 * d + 3 * eta)
        proj = 2 * d_model * proj_out + 2 * H * d * d_model + 4 * H * n  # + feature maps
        if name == "relit":
            mix = H * (5 * d * n + 5 * n)
            state = H * (d * n + n)
        else:
            mix = H * (5 * r * d + 5 * r * n + 5 * n)
            state = H * (r * d + r * n + n)
        weights = d_model * proj_out + H * d * d_model
    elif name == "gtrxl":
        proj = 2 * d_model * 3 * H * d + 2 * H * d * d_model
        mix = H * (6 * (M + 1) * d + 5 * (M + 1))
        state = 2 * M * H * d
        weights = 4 * d_model * H * d
    else:
        raise ValueError(f"no cost model for model {name!r}")
    flops = 2 * d_in * d_model + L * (shared + proj + mix)
    return {
        "flops": float(flops),
        "state_floats": L * state,
        "weight_floats": d_in * d_model + L * (shared_weights + weights),
    }
