"""A user's memory model built on relit_eqx without editing it.

Importing this package registers three things through the public registration functions:

- the kernel `softplus`: `φ(x) = log(1 + eˣ)`, positive and smooth;
- the update rule `gla`: gated linear attention (Yang et al. 2023), a key-side decay only,
  `C_t = (1 ⊗ (1-γ_t)) ⊙ C_{t-1} + v_t ⊗ φ(k_t)`, `s_t = (1-γ_t) ⊙ s_{t-1} + φ(k_t)`,
  `out_t = C_t φ(q_t) / (s_tᵀ φ(q_t) + ε)`;
- the model `custom_gla`: one head of that attention on projections of the input.
"""

from .kernel import SOFTPLUS
from .model import GatedLinearAttention
from .rule import GLA, gla_step_numpy

__all__ = ["SOFTPLUS", "GLA", "gla_step_numpy", "GatedLinearAttention"]
